"""TimeDistributed over any stateless single-output layer or nested model: what the format
replays (test_formats.py), fused-against-unfused runs (test_executor.py), summaries
(test_models.py) and pickling (test_ecosystem.py) of the td_* cases do not show. Bad configs are
Keras-written fixture configs with one entry changed, or small hand-written configs; mask
semantics are checked on the layer, against the Keras rules it reproduces (the td_mask_* cases
hold Keras's own outputs)."""
import copy
import json

import h5py
import keras_fixtures as kf
import numpy as np
import pytest

import fastlstm
from fastlstm.layers.base import LoadContext
from fastlstm.layers.registry import build_layer

FLAVOURS = ["keras2", "keras3"]
VERSIONS = {"keras2": (2, 13), "keras3": (3, 0)}
# What the recorded cases wrap, in both versions.
WRAPPED_CLASSES = {
    "Conv1D", "MaxPooling1D", "AveragePooling1D", "Flatten", "BatchNormalization", "Dropout",
    "GlobalAveragePooling1D", "Dense", "LSTM", "GRU", "Bidirectional", "Sequential",
    "Functional", "Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
    "Embedding"}


def config_of(flavour, name):
    with open(kf.path(kf.case(flavour, name)["files"]["json"])) as f:
        return json.load(f)


def layers_of(config):
    """Every layer dict of a model config: nested models' and wrapped layers included."""
    for layer in config["config"]["layers"]:
        yield from _with_inner(layer)


def _with_inner(layer):
    yield layer
    if layer["class_name"] in ("Sequential", "Functional", "Model"):
        yield from layers_of(layer)
    inner = layer["config"].get("layer") if isinstance(layer["config"], dict) else None
    if isinstance(inner, dict):
        yield from _with_inner(inner)


def first_td(config):
    return next(l for l in layers_of(config) if l["class_name"] == "TimeDistributed")


def _layer(class_name, **config):
    return {"class_name": class_name, "config": config}


def _td(name, inner):
    return _layer("TimeDistributed", name=name, layer=inner)


def sequential(batch_shape, *layers):
    """A Keras 3 style Sequential config."""
    return json.dumps({"class_name": "Sequential", "config": {"name": "m", "layers": [
        _layer("InputLayer", name="in", batch_shape=list(batch_shape))] + list(layers)}})


def built_td(inner, input_shape, flavour="keras3", **config):
    """A TimeDistributed layer over ``inner`` built for ``input_shape``, weights random."""
    layer = build_layer(_layer("TimeDistributed", name="td", layer=inner, **config),
                        LoadContext(VERSIONS[flavour]))
    layer.build([input_shape])
    rng = np.random.default_rng(0)
    layer.set_weights([rng.uniform(-0.5, 0.5, s).astype(np.float32)
                       for s in layer.weight_shapes()])
    return layer


def test_fixtures_wrap_every_class_in_both_flavours():
    for flavour in FLAVOURS:
        found = {inner["config"]["layer"]["class_name"]
                 for c in kf.cases(flavour) if c["name"].startswith("td_")
                 for inner in layers_of(config_of(flavour, c["name"]))
                 if inner["class_name"] == "TimeDistributed"}
        assert WRAPPED_CLASSES <= found, (flavour, WRAPPED_CLASSES - found)


# -- fusing ----------------------------------------------------------------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
def test_time_distributed_dense_on_3d_input_still_joins_the_fused_stack(flavour):
    case_ = kf.case(flavour, "many_to_many_td")
    model = kf.load(case_, "h5")
    assert model._compiled().whole is not None  # LSTM -> TimeDistributed(Dense): one C call
    kf.replay(model, case_)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_time_distributed_on_4d_input_runs_as_its_own_node(flavour):
    case_ = kf.case(flavour, "td_conv1d_pooling")
    model = kf.load(case_, "h5")
    executor = model._compiled()
    fused = {key[0] for table in executor.fused.values() for s in table.values()
             for key in s.keys}
    wrappers = [l.name for l in model.sublayers() if l.keras_class == "TimeDistributed"]
    assert len(wrappers) == 4 and not fused & set(wrappers)
    assert executor.whole is None
    kf.replay(model, case_)


# -- bad configs -----------------------------------------------------------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("inner,error,pattern", [
    (None, fastlstm.ModelFormatError, r"'layer' must be the config dict of the wrapped layer"),
    ([1, 2], fastlstm.ModelFormatError, r"'layer' must be the config dict.*got 'list'"),
    ({"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [None, 3]}},
     fastlstm.ModelFormatError, r"got 'InputLayer'"),
    ({"class_name": "Lambda", "config": {"name": "code"}}, fastlstm.UnsupportedConfigError,
     r"\(TimeDistributed\(Lambda\)\)"),
])
def test_bad_wrapped_layer_is_refused_by_name(flavour, inner, error, pattern):
    config = config_of(flavour, "td_conv1d_pooling")
    first_td(config)["config"]["layer"] = inner
    with pytest.raises(error, match=pattern):
        fastlstm.model_from_json(json.dumps(config))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_unsupported_layer_inside_a_wrapped_model_is_listed(flavour):
    config = config_of(flavour, "td_nested_sequential")
    inner = first_td(config)["config"]["layer"]
    conv = next(l for l in inner["config"]["layers"] if l["class_name"] == "Conv1D")
    conv["class_name"] = "LocallyConnected1D"
    with pytest.raises(fastlstm.UnsupportedConfigError,
                       match=r"'time_distributed/conv1d' \(TimeDistributed\(LocallyConnected1D"
                             r"\)\)"):
        fastlstm.model_from_json(json.dumps(config))


def test_input_of_rank_2_is_refused():
    text = sequential([None, 5], _td("td", _layer("Dense", name="d", units=2)))
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'td' \(TimeDistributed\) needs input of rank >= 3 \(batch, "
                             r"timesteps, \.\.\.\), got shape \(None, 5\)"):
        fastlstm.model_from_json(text)


def test_stateful_wrapped_layer_is_refused():
    text = sequential([2, 3, 4, 5], _td("td", _layer("LSTM", name="lstm", units=3,
                                                      stateful=True)))
    with pytest.raises(fastlstm.UnsupportedConfigError,
                       match=r"'td': TimeDistributed over stateful layers \['lstm'\]"):
        fastlstm.model_from_json(text)


def test_stateful_layer_inside_a_wrapped_model_is_refused():
    inner = {"class_name": "Sequential", "config": {"name": "inner", "layers": [
        _layer("InputLayer", name="i", batch_shape=[2, 4, 5]),
        _layer("GRU", name="gru", units=3, stateful=True)]}}
    with pytest.raises(fastlstm.UnsupportedConfigError, match=r"stateful layers \['gru'\]"):
        fastlstm.model_from_json(sequential([2, 3, 4, 5], _td("td", inner)))


def test_wrapped_layer_with_several_outputs_is_refused():
    text = sequential([None, 3, 4, 5], _td("td", _layer("LSTM", name="lstm", units=3,
                                                         return_state=True)))
    with pytest.raises(fastlstm.UnsupportedConfigError,
                       match=r"wraps LSTM 'lstm', which gives 3 outputs"):
        fastlstm.model_from_json(text)


def test_what_the_wrapped_layer_computes_is_bounded_for_every_timestep():
    # Each step's (1000, 8192) convolution is small and so is the pooled output; all 10000
    # steps of it are not.
    inner = {"class_name": "Sequential", "config": {"name": "inner", "layers": [
        _layer("InputLayer", name="i", batch_shape=[None, 1000, 1]),
        _layer("Conv1D", name="conv", filters=8192, kernel_size=1),
        _layer("GlobalMaxPooling1D", name="pool")]}}
    text = sequential([None, 10000, 1000, 1], _td("td", inner))
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"the outputs of one call would take .* largest is layer 'td' "
                             r"\(TimeDistributed\): an output of shape \(None, 10000, 1000, "
                             r"8192\)"):
        fastlstm.model_from_json(text)


# -- weights ---------------------------------------------------------------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
def test_nested_model_weights_follow_the_files_order(flavour):
    """The wrapper lists a nested model's trainable weights, then its BatchNormalization's
    moving statistics, as the Keras-written HDF5 group does."""
    case_ = kf.case(flavour, "td_nested_sequential")
    model = kf.load(case_, "h5")
    td = next(l for l in model.sublayers() if l.keras_class == "TimeDistributed")
    with h5py.File(kf.path(case_["files"]["h5"])) as f:
        group = f["model_weights"][td.name]
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
        shapes = [group[n].shape for n in names]
    assert [n.split("/")[-1].split(":")[0] for n in names] == [
        "kernel", "bias", "gamma", "beta", "kernel", "bias", "moving_mean", "moving_variance"]
    assert td.weight_shapes() == shapes
    assert td.n_trainable_weights() == 6
    kf.replay(model, case_)


@pytest.mark.parametrize("trainable,expected", [(True, 2), (False, 0)])
def test_batch_normalization_moving_statistics_are_not_trainable(trainable, expected):
    td = built_td(_layer("BatchNormalization", name="bn"), (None, 3, 4), trainable=trainable)
    assert td.weight_shapes() == [(4,)] * 4
    assert td.n_trainable_weights() == expected


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_weights_reload_into_a_json_model_of_a_nested_wrapper(flavour):
    case_ = kf.case(flavour, "td_lrcn_global_pooling2d")
    with open(kf.path(case_["files"]["json"])) as f:
        model = fastlstm.model_from_json(f.read())
    with pytest.raises(ValueError, match="has no weights"):
        model.predict(kf.data(case_)[case_["protocol"][0]["inputs"][0]])
    model.load_weights(kf.path(case_["files"]["keras" if flavour == "keras3" else "h5"]))
    kf.replay(model, case_)


def test_wrapped_recurrent_layers_take_no_state_slot():
    """TimeDistributed(LSTM) runs each (sample, step) from zero states; a state handle holds
    only the model's own LSTM over the steps."""
    case_ = kf.case("keras3", "td_nested_functional_recurrent")
    model = kf.load(case_, "keras")
    wrappers = [l for l in model.sublayers() if l.keras_class == "TimeDistributed"]
    inner = [r for w in wrappers for r in w.inner.recurrent_layers()]
    assert len(inner) == 3  # TimeDistributed(LSTM), and Bidirectional(GRU)'s two directions
    assert [l.keras_class for l in model.recurrent_layers()] == ["LSTM"]
    assert not set(model.recurrent_layers()) & set(inner)
    d = kf.data(case_)
    op = case_["protocol"][1]
    x = d[op["inputs"][0]]
    handle = model.new_state(x.shape[0])
    got = model.predict(x, state=handle)
    for j, g in enumerate(got):
        kf.assert_close(g, d[op["outputs"][j]], f"output {j}")
        assert np.array_equal(g, model.predict(x)[j])


# -- masks -----------------------------------------------------------------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
def test_dense_keeps_the_timestep_mask(flavour):
    td = built_td(_layer("Dense", name="d", units=2), (None, 4, 3), flavour)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 4, 3)).astype(np.float32)
    mask = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], bool)
    (y,), (out_mask,) = td.run_node([x], None, [mask], 1)
    assert np.array_equal(out_mask, mask)
    assert np.array_equal(y, td.inner.call([x.reshape(8, 3)])[0].reshape(2, 4, 2))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_wrapped_lstm_gets_each_steps_mask(flavour):
    td = built_td(_layer("LSTM", name="lstm", units=3), (None, 2, 4, 5), flavour)
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (3, 2, 4, 5)).astype(np.float32)
    mask = rng.uniform(size=(3, 2, 4)) < 0.6
    mask[0, 1] = False  # a step with every word masked
    (y,), (out_mask,) = td.run_node([x], None, [mask], 1)
    want = td.inner.call([x.reshape(6, 4, 5)], mask=mask.reshape(6, 4))[0].reshape(3, 2, 3)
    assert np.array_equal(y, want)
    assert not np.array_equal(y, td.run_node([x], None, [None], 1)[0][0])
    assert np.array_equal(y[0, 1], np.zeros(3, np.float32))
    if flavour == "keras3":
        assert np.array_equal(out_mask, mask)   # Layer.compute_mask: the input's
    else:
        assert np.array_equal(out_mask, mask.any(axis=-1))   # reduced to (batch, timesteps)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_wrapped_embedding_mask(flavour):
    """tf_keras folds the wrapped layer's own mask back; Keras 3 keeps the input's (none)."""
    td = built_td(_layer("Embedding", name="e", input_dim=5, output_dim=2, mask_zero=True),
                  (None, 2, 3), flavour)
    ids = np.array([[[1, 2, 0], [0, 0, 0]], [[4, 0, 0], [3, 3, 1]]], np.float32)
    (y,), (out_mask,) = td.run_node([ids], None, [None], 1)
    assert np.array_equal(y, td.inner.embeddings[ids.astype(int)])
    if flavour == "keras3":
        assert out_mask is None
    else:
        assert np.array_equal(out_mask, ids != 0)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_one_mask_value_per_row_is_refused_for_a_masked_wrapped_layer(flavour):
    td = built_td(_layer("GlobalAveragePooling1D", name="pool"), (None, 2, 4, 3), flavour)
    x = np.ones((1, 2, 4, 3), np.float32)
    with pytest.raises(fastlstm.UnsupportedConfigError,
                       match=r"'td': TimeDistributed passes a \(batch, timesteps\) mask to "
                             r"GlobalAveragePooling1D 'pool'"):
        td.run_node([x], None, [np.ones((1, 2), bool)], 1)


def test_mask_of_another_shape_is_refused():
    td = built_td(_layer("Dense", name="d", units=2), (None, 4, 3))
    with pytest.raises(ValueError, match=r"mask of shape \(2, 3\) for input of shape "
                                         r"\(2, 4, 3\)"):
        td.run_node([np.zeros((2, 4, 3), np.float32)], None, [np.ones((2, 3), bool)], 1)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_mask_through_time_distributed_reaches_the_lstm(flavour):
    """The recorded outputs differ from the same model without the mask: the mask counts."""
    case_ = kf.case(flavour, "td_mask_embedding")
    masked = kf.load(case_, "h5")
    config = copy.deepcopy(masked.keras_config)
    next(l for l in layers_of(config) if l["class_name"] == "Embedding")["config"][
        "mask_zero"] = False
    unmasked = fastlstm.model_from_json(json.dumps(config))
    unmasked.load_weights(kf.path(case_["files"]["h5"]))
    d = kf.data(case_)
    op = case_["protocol"][0]
    x, want = d[op["inputs"][0]], d[op["outputs"][0]]
    kf.assert_close(masked.predict(x), want)
    assert not np.allclose(unmasked.predict(x), want, atol=1e-3)


def test_wrapped_embedding_checks_the_callers_ids():
    case_ = kf.case("keras2", "td_wrapped_embedding")
    model = kf.load(case_, "h5")
    ids = np.ones((1, 3, 5), np.int64)
    ids[0, 2, 1] = 2 ** 24 + 1  # would round to 2**24 as float32
    with pytest.raises(ValueError, match=r"\(Embedding\) takes indices in \[0, 10\); the input "
                                         r"has 16777217 at position \(0, 2, 1\)"):
        model.predict(ids)


def test_a_per_position_mask_reaching_an_lstm_is_refused_by_name():
    # td_mask_per_step read with Keras 3 semantics: the wrapped Embedding's (batch, T, words)
    # mask is passed unchanged to the LSTM after it, which Keras 3 cannot run either.
    case = kf.case("keras2", "td_mask_per_step")
    model = fastlstm.load_model(kf.path(case["files"]["h5"]), keras_version="3")
    x = kf.data(case)[case["protocol"][0]["inputs"][0]]
    with pytest.raises(ValueError, match=r"'lstm_1' \(LSTM\) takes a \(batch, timesteps\) "
                                         r"mask, got one of shape \(2, 3, 5\)"):
        model.predict(x)
