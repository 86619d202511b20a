"""Attention, AdditiveAttention, Dot and MultiHeadAttention: what the format replays
(test_formats.py) do not show. Bad configs are Keras-written fixture configs with one entry
changed; mask paths no fixture reaches are checked against the same layer on the unmasked,
shortened sequences (a masked position must change nothing)."""
import copy
import json

import keras_fixtures as kf
import numpy as np
import pytest

import fastlstm
from fastlstm.config import CALL_OPTIONS_KEY
from fastlstm.layers.base import LoadContext
from fastlstm.layers.registry import build_layer

FLAVOURS = ["keras2", "keras3"]
ATTENTION_CLASSES = {"Attention", "AdditiveAttention", "Dot", "MultiHeadAttention"}


def config_of(flavour, name):
    with open(kf.path(kf.case(flavour, name)["files"]["json"])) as f:
        return json.load(f)


def layer_dict(config, name):
    return next(l for l in config["config"]["layers"] if l["config"].get("name") == name)


def build_changed(flavour, case_name, layer_name, **changes):
    config = copy.deepcopy(config_of(flavour, case_name))
    layer_dict(config, layer_name)["config"].update(changes)
    return fastlstm.model_from_json(json.dumps(config))


def test_fixtures_cover_every_attention_layer_in_both_flavours():
    for flavour in FLAVOURS:
        found = {l["class_name"] for c in kf.cases(flavour) if "json" in c["files"]
                 for l in config_of(flavour, c["name"])["config"].get("layers", [])
                 if isinstance(l, dict)}
        assert ATTENTION_CLASSES <= found, (flavour, ATTENTION_CLASSES - found)


# -- bad configs -----------------------------------------------------------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("changes,error,pattern", [
    ({"num_heads": 0}, fastlstm.ModelFormatError, r"num_heads=0 is outside the supported range"),
    ({"key_dim": 10 ** 9}, fastlstm.ModelFormatError, r"key_dim=1000000000 is outside"),
    ({"num_heads": 4096, "key_dim": 4096}, fastlstm.ModelFormatError,
     r"num_heads \* key_dim = 16777216 is above fastlstm's limit"),
    ({"value_dim": -3}, fastlstm.ModelFormatError, r"value_dim=-3 is outside"),
    ({"attention_axes": [2]}, fastlstm.UnsupportedConfigError,
     r"attention_axes=\[2\]; fastlstm supports attention over the timesteps"),
    ({"output_shape": "wide"}, fastlstm.ModelFormatError, r"output_shape must be an integer"),
    ({"dropout": 1.5}, fastlstm.ModelFormatError, r"dropout=1.5 is outside \[0, 1\]"),
])
def test_multi_head_attention_bad_configs(flavour, changes, error, pattern):
    with pytest.raises(error, match=pattern):
        build_changed(flavour, "mha_lstm_transformer", "multi_head_attention", **changes)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_attention_and_dot_bad_configs(flavour):
    with pytest.raises(fastlstm.UnsupportedConfigError,
                       match=r"'attention' \(Attention\): score_mode must be 'dot' or 'concat', "
                             r"got 'general'"):
        build_changed(flavour, "attention_dot_cross", "attention", score_mode="general")
    with pytest.raises(fastlstm.ModelFormatError, match=r"dropout must be a non-negative"):
        build_changed(flavour, "attention_dot_cross", "attention", dropout="some")
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'dot' \(Dot\): axes must be an integer or a pair"):
        build_changed(flavour, "dot_hand_attention", "dot", axes=[1, 2, 2])
    with pytest.raises(fastlstm.UnsupportedConfigError, match=r"the batch axis \(0\)"):
        build_changed(flavour, "dot_hand_attention", "dot", axes=0)
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'dot' \(Dot\): axis 1 of \(None, 1, 4\) and axis 2 of "
                             r"\(None, 7, 4\) differ in size \(1 != 4\)"):
        build_changed(flavour, "dot_hand_attention", "dot", axes=[1, 2])
    with pytest.raises(fastlstm.ModelFormatError, match=r"axis 5 is out of range"):
        build_changed(flavour, "dot_hand_attention", "dot", axes=5)


def test_causal_config_key_is_tf_keras_only():
    with pytest.raises(fastlstm.UnsupportedConfigError, match=r"'causal' is tf_keras's"):
        build_changed("keras3", "attention_dot_cross", "attention", causal=True)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_mismatched_query_and_key_features(flavour):
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'attention' \(Attention\): the query and key features differ "
                             r"between its inputs: \[4, 3\]"):
        build_changed(flavour, "attention_scaled_key_scores", "dense", units=3)


def _mha_node_kwargs(config, flavour):
    node = layer_dict(config, "multi_head_attention")["inbound_nodes"][0]
    return node["kwargs"] if flavour == "keras3" else node[0][3]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_key_of_other_timesteps_than_value_is_refused(flavour):
    """mha_options calls MHA(q, v, key=k) with v of 6 steps; a key of the query's 4 steps."""
    config = copy.deepcopy(config_of(flavour, "mha_options"))
    kwargs = _mha_node_kwargs(config, flavour)
    if flavour == "keras3":
        kwargs["key"]["config"]["keras_history"] = ["lstm", 0, 0]
    else:
        kwargs["key"] = ["lstm", 0, 0]
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"the value and key timesteps differ between its inputs: \[6, 4\]"):
        fastlstm.model_from_json(json.dumps(config))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_call_options_must_be_booleans(flavour):
    config = copy.deepcopy(config_of(flavour, "mha_options"))
    _mha_node_kwargs(config, flavour)["return_attention_scores"] = "yes"
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"return_attention_scores='yes' is not a boolean"):
        fastlstm.model_from_json(json.dumps(config))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_recorded_call_options_reach_the_layer(flavour):
    """The node's return_attention_scores makes the scores a second output: the softmax
    weights, (batch, Tq, Tv), each row summing to 1."""
    case = kf.case(flavour, "attention_scaled_key_scores")
    model = kf.load(case, "json")
    outs = model.predict(kf.data(case)["call0_in0"])
    assert [o.shape for o in outs] == [(2, 6, 5), (2, 6, 6)]
    assert np.allclose(outs[1].sum(axis=-1), 1, atol=1e-6)


# -- mask paths ------------------------------------------------------------------------------

def _layer(class_name, keras_major, input_shapes, weights=(), options=None, **config):
    config = dict(config, name=class_name.lower())
    if options is not None:
        config[CALL_OPTIONS_KEY] = options
    layer = build_layer({"class_name": class_name, "config": config},
                        LoadContext((keras_major, 0)))
    layer.build(input_shapes)
    layer.set_weights([np.asarray(w, np.float32) for w in weights])
    return layer


@pytest.mark.parametrize("keras_major", [2, 3])
@pytest.mark.parametrize("class_name,config,weights", [
    ("Attention", {"use_scale": True}, [0.7]),
    ("Attention", {"score_mode": "concat"}, [1.3]),
    ("AdditiveAttention", {"use_scale": True}, [[0.5, -0.4, 0.9]]),
])
def test_value_mask_equals_attention_on_the_kept_steps(keras_major, class_name, config, weights):
    rng = np.random.default_rng(3)
    q = rng.uniform(-1, 1, (2, 4, 3)).astype(np.float32)
    v = rng.uniform(-1, 1, (2, 6, 3)).astype(np.float32)
    kept = [6, 2]
    v_mask = np.arange(6)[None, :] < np.array(kept)[:, None]
    layer = _layer(class_name, keras_major, [q.shape, v.shape], weights, **config)
    (out,), (out_mask,) = layer.run_node([q, v], None, [None, v_mask], 1)
    assert out_mask is None
    for row, n in enumerate(kept):
        (alone,), _ = layer.run_node([q[row:row + 1], v[row:row + 1, :n]], None, [None, None], 1)
        np.testing.assert_allclose(out[row], alone[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("keras_major", [2, 3])
def test_attention_query_mask_zeroes_and_passes_on(keras_major):
    rng = np.random.default_rng(4)
    q = rng.uniform(-1, 1, (2, 4, 3)).astype(np.float32)
    q_mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    layer = _layer("Attention", keras_major, [q.shape, q.shape])
    (out,), (out_mask,) = layer.run_node([q, q], None, [q_mask, None], 1)
    (unmasked,), _ = layer.run_node([q, q], None, [None, None], 1)
    assert (out_mask == q_mask).all()
    assert (out[0, 2:] == 0).all()
    np.testing.assert_array_equal(out[q_mask], unmasked[q_mask])


def _mha_weights(rng, d, n, h, out):
    return [rng.uniform(-0.6, 0.6, s).astype(np.float32) for s in
            ((d, n, h), (n, h), (d, n, h), (n, h), (d, n, h), (n, h), (n, h, out), (out,))]


@pytest.mark.parametrize("keras_major", [2, 3])
def test_mha_key_mask_equals_attention_on_the_kept_steps(keras_major):
    """A key with a mask of its own (query, value, key all given): masked key steps change
    nothing, as if value and key were cut there."""
    rng = np.random.default_rng(5)
    q = rng.uniform(-1, 1, (2, 3, 4)).astype(np.float32)
    v = rng.uniform(-1, 1, (2, 5, 4)).astype(np.float32)
    k = rng.uniform(-1, 1, (2, 5, 4)).astype(np.float32)
    kept = [5, 3]
    k_mask = np.arange(5)[None, :] < np.array(kept)[:, None]
    layer = _layer("MultiHeadAttention", keras_major, [q.shape, v.shape, k.shape],
                   _mha_weights(rng, 4, 2, 3, 4),
                   options={"tensor_args": ["query", "value", "key"]}, num_heads=2, key_dim=3)
    (out,), _ = layer.run_node([q, v, k], None, [None, None, k_mask], 1)
    for row, n in enumerate(kept):
        (alone,), _ = layer.run_node([q[row:row + 1], v[row:row + 1, :n], k[row:row + 1, :n]],
                                     None, [None, None, None], 1)
        np.testing.assert_allclose(out[row], alone[0], rtol=1e-5, atol=1e-6)


def test_dot_normalize_of_a_zero_vector_is_zero_in_both_versions():
    x = np.zeros((1, 3), np.float32)
    y = np.ones((1, 3), np.float32)
    for keras_major in (2, 3):
        layer = _layer("Dot", keras_major, [x.shape, y.shape], axes=1, normalize=True)
        (out,) = layer.call([x, y])
        assert out.shape == (1, 1) and out[0, 0] == 0


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_explicit_mask_arguments_are_refused(flavour):
    """The layers read their inputs' masks; a mask passed by hand in the call is refused."""
    config = copy.deepcopy(config_of(flavour, "mha_options"))
    kwargs = _mha_node_kwargs(config, flavour)
    kwargs["value_mask"] = copy.deepcopy(kwargs["key"])
    with pytest.raises(fastlstm.UnsupportedConfigError,
                       match=r"explicit mask arguments \['value_mask'\] are not supported"):
        fastlstm.model_from_json(json.dumps(config))
    config = copy.deepcopy(config_of(flavour, "attention_dot_cross"))
    node = layer_dict(config, "attention")["inbound_nodes"][0]
    if flavour == "keras3":
        node["kwargs"]["mask"] = copy.deepcopy(node["args"][0])
    else:
        node[0][3]["mask"] = [node[0][:3], node[1][:3]]
    with pytest.raises(fastlstm.UnsupportedConfigError,
                       match=r"an explicit mask argument is not supported"):
        fastlstm.model_from_json(json.dumps(config))


def test_tf_keras_causal_config_key_is_use_causal_mask():
    """TF 2.x Keras wrote Attention(causal=True) into the config (tf_keras
    base_dense_attention.py still pops it): with the node's use_causal_mask moved into that
    key, the model gives Keras's recorded outputs."""
    case = kf.case("keras2", "attention_concat_causal")
    config = copy.deepcopy(config_of("keras2", "attention_concat_causal"))
    layer = layer_dict(config, "attention")
    for entry in layer["inbound_nodes"][0]:
        assert entry[3].pop("use_causal_mask") is True
    layer["config"]["causal"] = True

    def loaded():
        model = fastlstm.model_from_json(json.dumps(config))
        model.load_weights(kf.path(case["files"]["weights"]))
        return model

    kf.replay(loaded(), case)
    del layer["config"]["causal"]
    with pytest.raises(AssertionError, match="values differ from Keras"):
        kf.replay(loaded(), case)


# -- Keras 3's run order and the masks MultiHeadAttention clears -----------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("case_name,first,then", [
    # Two MHAs on the same masked tensors, both outputs (depth 0): Keras 3 runs the one
    # map_graph touched first walking its post-order backwards, the second.
    ("mha_two_readers_masked", "multi_head_attention_1", "multi_head_attention"),
    # The MHA under a Dense is one deeper than the Attention listed before it: it runs first.
    ("mha_clears_before_attention", "multi_head_attention", "attention"),
])
def test_masks_cleared_in_keras3_run_order(flavour, case_name, first, then):
    """Which reader of a masked tensor sees its mask depends on whether it runs before the
    Keras 3 MultiHeadAttention that clears it: Keras's recorded outputs (each format)."""
    case = kf.case(flavour, case_name)
    for fmt in ("keras", "json", "h5"):
        model = kf.load(case, fmt)
        kf.replay(model, case, label=fmt)
    if flavour == "keras3":
        names = [key[0] for key in model.graph.order]
        assert names.index(first) < names.index(then)


def test_keras3_cleared_mask_reader_equals_the_unmasked_layer():
    """In mha_two_readers_masked the first MHA runs after the second cleared the masks: its
    output is the same layer's on the embeddings without masks (the equivalence Keras's
    recording shows), and differs from the masked call."""
    case = kf.case("keras3", "mha_two_readers_masked")
    model = kf.load(case, "keras")
    ids = [kf.data(case)["call0_in0"], kf.data(case)["call0_in1"]]
    outs = model.predict(ids)
    embedded = [model.layers[n].call([x])[0] for n, x in zip(("embedding", "embedding_1"), ids)]
    masks = [x != 0 for x in ids]
    mha = model.layers["multi_head_attention"]
    (unmasked,), _ = mha.run_node(embedded, None, [None, None], 1)
    (masked,), _ = mha.run_node(embedded, None, masks, 1)
    np.testing.assert_allclose(outs[0], unmasked, rtol=1e-6, atol=1e-6)
    assert not np.allclose(outs[0], masked, atol=1e-3)


@pytest.mark.parametrize("name,first", [("mha_third_reader_positional", "multi_head_attention"),
                                         ("mha_third_reader_keyword", "attention")])
def test_keras3_runs_a_call_by_keyword_in_its_flattened_order(name, first):
    """The same graph with the third MHA called positionally or by keyword: Keras 3 flattens
    keyword tensors by sorted name (key, query, value), so the Attention runs before the first
    MHA clears the Embedding's mask only in the keyword model; both replay Keras's outputs."""
    case = kf.case("keras3", name)
    model = kf.load(case, "keras")
    order = [key[0] for key in model.graph.order]
    assert order.index(first) < order.index({"attention": "multi_head_attention",
                                             "multi_head_attention": "attention"}[first])
    kf.replay(model, case, label=name)


# -- shapes only known at run time -----------------------------------------------------------

@pytest.mark.parametrize("keras_major", [2, 3])
@pytest.mark.parametrize("class_name", ["Attention", "AdditiveAttention", "MultiHeadAttention"])
def test_value_and_key_of_other_timesteps_at_run_time(keras_major, class_name):
    """Timesteps unknown at build time: a key of 7 steps for a value of 6 is a ValueError
    naming the layer and the shapes, not numpy's matmul error."""
    rng = np.random.default_rng(6)
    shapes = [(None, None, 4)] * 3
    if class_name == "MultiHeadAttention":
        layer = _layer(class_name, keras_major, shapes, _mha_weights(rng, 4, 2, 3, 4),
                       options={"tensor_args": ["query", "value", "key"]}, num_heads=2,
                       key_dim=3)
    else:
        weights = [rng.uniform(-1, 1, 4)] if class_name == "AdditiveAttention" else []
        layer = _layer(class_name, keras_major, shapes, weights)
    q, v, k = (rng.uniform(-1, 1, (2, t, 4)).astype(np.float32) for t in (5, 6, 7))
    with pytest.raises(ValueError, match=rf"layer '{class_name.lower()}' \({class_name}\) "
                                         r"expects the value's timesteps equal to the key's; "
                                         r"got query \(2, 5, 4\), value \(2, 6, 4\), key "
                                         r"\(2, 7, 4\)"):
        layer.run_node([q, v, k], None, [None, None, None], 1)


@pytest.mark.parametrize("keras_major", [2, 3])
def test_attention_query_and_key_features_at_run_time(keras_major):
    layer = _layer("Attention", keras_major, [(None, None, None)] * 2)
    q = np.ones((1, 3, 4), np.float32)
    v = np.ones((1, 5, 2), np.float32)
    with pytest.raises(ValueError, match=r"'attention' \(Attention\) expects the query's "
                                         r"features equal to the key's; got query \(1, 3, 4\)"):
        layer.call([q, v])


def test_mha_attention_mask_of_the_wrong_shape_at_run_time():
    rng = np.random.default_rng(7)
    layer = _layer("MultiHeadAttention", 3, [(None, None, 4), (None, None, 4), (None, None, None)],
                   _mha_weights(rng, 4, 2, 3, 4),
                   options={"tensor_args": ["query", "value", "attention_mask"]}, num_heads=2,
                   key_dim=3)
    q = np.ones((2, 3, 4), np.float32)
    v = np.ones((2, 5, 4), np.float32)
    with pytest.raises(ValueError, match=r"attention_mask must be of shape \(2, 3, 5\) \(or 1 "
                                         r"on any axis\), got \(2, 3, 4\)"):
        layer.call([q, v, np.ones((2, 3, 4), np.float32)])


@pytest.mark.parametrize("keras_major", [2, 3])
def test_dot_summed_axes_of_other_sizes_at_run_time(keras_major):
    layer = _layer("Dot", keras_major, [(None, None, None)] * 2, axes=2)
    x = np.ones((1, 5, 4), np.float32)
    y = np.ones((1, 5, 3), np.float32)
    with pytest.raises(ValueError, match=r"'dot' \(Dot\): axis 2 of the first input and axis 2 "
                                         r"of the second, and their batch sizes, must agree; got "
                                         r"shapes \(1, 5, 4\) and \(1, 5, 3\)"):
        layer.call([x, y])
    with pytest.raises(ValueError, match=r"got shapes \(2, 5, 4\) and \(1, 5, 4\)"):
        layer.call([np.ones((2, 5, 4), np.float32), np.ones((1, 5, 4), np.float32)])


# -- one masked softmax ----------------------------------------------------------------------

@pytest.mark.parametrize("keras_major,robust", [(2, False), (2, True), (3, False)])
def test_mha_scores_are_its_softmax_layer_on_the_masked_logits(keras_major, robust):
    """MultiHeadAttention's _masked_softmax is its Softmax layer (both Kerases): the returned
    scores equal fastlstm's Softmax layer on the scaled logits with the same mask, fully
    masked query rows included."""
    rng = np.random.default_rng(8)
    weights = _mha_weights(rng, 4, 2, 3, 4)
    options = {"tensor_args": ["query", "value"], "return_attention_scores": True}
    config = {"softmax_robust_masking": True} if robust else {}
    layer = _layer("MultiHeadAttention", keras_major, [(2, 3, 4), (2, 5, 4)], weights,
                   options=options, num_heads=2, key_dim=3, **config)
    q = rng.uniform(-1, 1, (2, 3, 4)).astype(np.float32)
    v = rng.uniform(-1, 1, (2, 5, 4)).astype(np.float32)
    q_mask = np.array([[1, 1, 0], [1, 1, 1]], bool)
    v_mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    (_, scores), _ = layer.run_node([q, v], None, [q_mask, v_mask], 1)
    qh = np.einsum("btd,dnh->bnth", q, weights[0]) + weights[1][None, :, None, :]
    kh = np.einsum("bsd,dnh->bnsh", v, weights[2]) + weights[3][None, :, None, :]
    logits = np.matmul(qh * np.float32(1 / np.sqrt(3)), np.swapaxes(kh, -1, -2))
    softmax_config = {"axis": -1, "robust_masking": True} if robust else {"axis": -1}
    softmax = _layer("Softmax", keras_major, [logits.shape], **softmax_config)
    allowed = (q_mask[:, :, None] & v_mask[:, None, :])[:, None]
    (expected,) = softmax.call([logits], mask=allowed)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
