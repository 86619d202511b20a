"""The one executor: chains of stack layers inside any graph run as single C stack ops
(fused), and give the same bits as the same model called layer by layer (fuse=False), which
itself replays Keras's recordings."""
import numpy as np
import pytest

import fastlstm
import keras_fixtures as kf
from small_models import chain_model, set_random_weights

CASES = [pytest.param(c, id=f"{c['flavour']}-{c['name']}") for c in kf.cases()]


def _fmt(case_):
    return "keras" if "keras" in case_["files"] else "h5"


def _fused_layers(model):
    executor = model._compiled()
    return sum(len(s.keys) for table in (executor.fused or {}).values() for s in table.values())


@pytest.mark.parametrize("case_", CASES)
def test_fused_and_layer_by_layer_runs_give_the_same_bits(case_):
    fused = kf.load(case_, _fmt(case_))
    reference = kf.load(case_, _fmt(case_), fuse=False)
    d = kf.data(case_)
    for i, op in enumerate(case_["protocol"]):
        if op["op"] == "reset":
            fused.reset_states()
            reference.reset_states()
            continue
        xs = [d[k] for k in op["inputs"]]
        feed = xs if len(xs) > 1 else xs[0]
        got = fused.predict(feed, batch_size=op.get("batch_size"))
        want = reference.predict(feed, batch_size=op.get("batch_size"))
        got, want = (got, want) if isinstance(got, list) else ([got], [want])
        for j, (g, w) in enumerate(zip(got, want)):
            assert np.array_equal(g, w), f"call {i} output {j}: fused and layer-by-layer differ"
            kf.assert_close(g, d[op["outputs"][j]], f"call {i} output {j}")
    assert _fused_layers(reference) == 0
    assert fused.get_states().keys() == reference.get_states().keys()
    for name, arrays in fused.get_states().items():
        for a, b in zip(arrays, reference.get_states()[name]):
            assert np.array_equal(a, b), name


def test_graphs_with_branches_fuse_their_chains():
    """A model that is no single chain still runs its chains as stack ops: an encoder/decoder,
    merges of branches, a nested model."""
    partly = 0
    for case_ in kf.cases("keras3"):
        model = kf.load(case_, _fmt(case_))
        if model._compiled().whole is None and _fused_layers(model) > 0:
            partly += 1
    assert partly >= 5


def test_state_handles_run_fused_chains_of_graph_models():
    """Handles through a model with branches: fused chains and per-layer calls both advance
    the handle's store, with the same bits as unfused runs."""
    case_ = kf.case("keras3", "encoder_decoder_state")
    fused = kf.load(case_, _fmt(case_))
    reference = kf.load(case_, _fmt(case_), fuse=False)
    xs = [np.random.default_rng(i).uniform(-1, 1, (3,) + tuple(d or 5 for d in l.batch_shape[1:]))
          .astype(np.float32) for i, l in enumerate(fused.input_layers)]
    a, b = fused.new_state(3), reference.new_state(3)
    for _ in range(3):
        got = fused.predict(xs if len(xs) > 1 else xs[0], state=a)
        want = reference.predict(xs if len(xs) > 1 else xs[0], state=b)
        for g, w in zip(got if isinstance(got, list) else [got],
                        want if isinstance(want, list) else [want]):
            assert np.array_equal(g, w)
    for name, arrays in a.as_dict().items():
        for x, y in zip(arrays, b.as_dict()[name]):
            assert np.array_equal(x, y)


@pytest.mark.parametrize("cell", ["GRU", "SimpleRNN"])
def test_gru_and_simple_rnn_states_hold_h_only(cell):
    """One store holds each layer's states: a GRU or SimpleRNN has h alone (no unused c), in
    the model's own state, in handles, and in what generation advances."""
    model = chain_model((2, None, 3), 6, 3, stateful=True, cell=cell, lstm_layers=2)
    assert [len(v) for v in model.get_states().values()] == [1, 1]
    handle = model.new_state(4)
    assert [len(v) for v in handle.as_dict().values()] == [1, 1]
    assert handle._store.data.size == 4 * 6 * 2
    x = np.random.default_rng(1).uniform(-1, 1, (2, 5, 3)).astype(np.float32)
    reference = chain_model((2, None, 3), 6, 3, stateful=True, cell=cell, lstm_layers=2,
                            fuse=False)
    assert np.array_equal(model.generate(x, 7), reference.generate(x, 7))
    for name, arrays in model.get_states().items():
        assert np.array_equal(arrays[0], reference.get_states()[name][0])


def test_fuse_survives_pickling():
    import pickle

    model = kf.load(kf.case("keras3", "many_to_one"), "keras", fuse=False)
    again = pickle.loads(pickle.dumps(model))
    assert again.fuse is False and again._compiled().whole is None
    x = np.zeros((2, 10, 4), np.float32)
    assert np.array_equal(again.predict(x), model.predict(x))
    assert fastlstm.load_model(kf.path(kf.case("keras3", "many_to_one")["files"]["keras"])).fuse


def test_load_weights_after_a_fused_call_reaches_the_same_plan():
    """Weights are assigned in place: a second load_weights (other values, same model) reaches
    the executor compiled at the first call, without recompiling it."""
    case_ = kf.case("keras3", "stacked")
    files = case_["files"]
    with open(kf.path(files["json"])) as f:
        text = f.read()
    model = fastlstm.model_from_json(text)
    model.load_weights(kf.path(files["h5"]))
    d = kf.data(case_)
    op = next(op for op in case_["protocol"] if op["op"] == "predict")
    x = d[op["inputs"][0]]
    kf.assert_close(model.predict(x), d[op["outputs"][0]], "first weights")
    plan = model._compiled().whole
    for layer in model.weighted_layers():
        layer.set_weights([w * 0.5 for w in layer.weights])
    assert not np.allclose(model.predict(x), d[op["outputs"][0]])
    model.load_weights(kf.path(files["h5"]))
    assert model._compiled().whole is plan
    kf.assert_close(model.predict(x), d[op["outputs"][0]], "weights loaded again")


def _functional(name, layers, inputs, outputs):
    return {"class_name": "Functional", "config": {
        "name": name, "layers": layers, "input_layers": [[i, 0, 0] for i in inputs],
        "output_layers": [[o, 0, 0] for o in outputs]}}


def _layer(cls, name, inbound=None, **config):
    d = {"class_name": cls, "name": name, "config": dict(config, name=name)}
    if inbound is not None:
        d["inbound_nodes"] = [[[ref, node, 0, {}] for ref, node in refs] for refs in inbound]
    return d


def _with_weights(text, fuse):
    return set_random_weights(fastlstm.model_from_json(text, "2.15.0", fuse=fuse))


@pytest.mark.parametrize("inner_timesteps,b_timesteps", [(None, 7), (5, None)])
def test_a_nested_model_shared_by_inputs_of_two_lengths(inner_timesteps, b_timesteps):
    """A nested model called on inputs of 5 and 7 timesteps (a shared encoder; or one that
    declares 5 and is fed an outer input of any length) runs its fused chain on both: only the
    outer model's inputs fix the timesteps a plan accepts."""
    import json

    inner = {"class_name": "Sequential", "name": "inner", "config": {"name": "inner", "layers": [
        _layer("InputLayer", "ix", batch_input_shape=[None, inner_timesteps, 4]),
        _layer("LSTM", "il", units=3), _layer("Dense", "idense", units=4)]}}
    inner["inbound_nodes"] = [[["a", 0, 0, {}]], [["b", 0, 0, {}]]]
    layers = [_layer("InputLayer", "a", batch_input_shape=[None, 5, 4]),
              _layer("InputLayer", "b", batch_input_shape=[None, b_timesteps, 4]), inner,
              _layer("Add", "add", inbound=[[("inner", 0), ("inner", 1)]])]
    text = json.dumps(_functional("outer", layers, ["a", "b"], ["add"]))
    fused, reference = _with_weights(text, True), _with_weights(text, False)
    rng = np.random.default_rng(3)
    xs = [rng.uniform(-1, 1, (2, t, 4)).astype(np.float32) for t in (5, 7)]
    assert _fused_layers(fused) == 2
    assert np.array_equal(fused.predict(xs), reference.predict(xs))
