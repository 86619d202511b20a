"""Model structure as Keras sees it: the summary's layers, output shapes and parameter counts,
for every architecture in the fixtures (Sequential, Functional with several inputs/outputs,
return_state, initial_state, shared layers, nested encoder/decoder models)."""
import numpy as np
import pytest

import fastlstm
import keras_fixtures as kf

CASES = [pytest.param(c, id=f"{c['flavour']}-{c['name']}") for c in kf.cases()]


def keras_shape(shape):
    return tuple(shape)


@pytest.mark.parametrize("case", CASES)
def test_summary_matches_keras(case, capsys):
    expected = case["summary"]
    fmt = "keras" if "keras" in case["files"] else "h5"
    model = kf.load(case, fmt)
    rows = model.summary_rows()
    assert [(r["name"], r["class"]) for r in rows] == [(e["name"], e["class"])
                                                        for e in expected["layers"]]
    for row, exp in zip(rows, expected["layers"]):
        assert row["params"] == exp["params"], row["name"]
        if exp["name"].endswith("_glu"):
            # Keras's symbolic shape ignores that glu halves the last axis; its predictions
            # (checked in test_layers) have the halved width, and so does fastlstm's summary.
            exp_shape = exp["output_shapes"][0]
            assert row["output_shapes"] == [tuple(exp_shape[:-1]) + (exp_shape[-1] // 2,)]
        elif exp["output_shapes"] is not None:
            assert row["output_shapes"] == [keras_shape(s) for s in exp["output_shapes"]], \
                row["name"]
    assert model.count_params() == expected["total_params"]
    model.summary()
    printed = capsys.readouterr().out
    assert f"Total params: {expected['total_params']:,}" in printed
    for exp in expected["layers"]:
        assert f"{exp['name']} ({exp['class']})" in printed


def test_nested_models_run_as_layers():
    """The seq2seq autoencoder: encoder and decoder models used as layers of a third model."""
    for flavour in ("keras2", "keras3"):
        case = kf.case(flavour, "autoencoder_functional")
        model = kf.load(case, "h5")
        assert isinstance(model.layers["encoder"], fastlstm.Model)
        assert isinstance(model.layers["decoder"], fastlstm.Model)
        kf.replay(model, case)


def test_several_inputs_by_list_and_dict():
    case = kf.case("keras3", "encoder_decoder_state")
    model = kf.load(case, "keras")
    d = kf.data(case)
    op = next(op for op in case["protocol"] if op["op"] == "predict")
    xs = [d[k] for k in op["inputs"]]
    names = [layer.name for layer in model.input_layers]
    by_list = model.predict(xs)
    by_dict = model.predict(dict(zip(names, xs)))
    kf.assert_close(by_list, d[op["outputs"][0]], "list")
    assert np.array_equal(by_list, by_dict)


def test_return_state_outputs_are_a_list():
    case = kf.case("keras2", "return_state")
    model = kf.load(case, "h5")
    d = kf.data(case)
    op = next(op for op in case["protocol"] if op["op"] == "predict")
    out = model.predict(d[op["inputs"][0]])
    assert isinstance(out, list) and len(out) == 3
    for got, key in zip(out, op["outputs"]):
        kf.assert_close(got, d[key], key)


def test_predict_is_the_models_own_method_with_its_signature_and_docstring():
    """predict stays a method of Model (never replaced on the instance), so help(), inspect
    and a bound method held before the first call all see the one documented predict, and the
    held method runs the fused stack like any later lookup."""
    import inspect

    model = kf.load(kf.case("keras3", "many_to_one"), "keras")
    predict = model.predict
    x = np.random.default_rng(0).uniform(-1, 1, (1, 10, 4)).astype(np.float32)
    first = predict(x)
    assert "predict" not in vars(model)
    assert predict.__func__ is fastlstm.Model.predict and model.predict.__func__ is predict.__func__
    assert list(inspect.signature(model.predict).parameters) == ["x", "batch_size", "state"]
    assert model.predict.__doc__.startswith("Keras ``model.predict``")
    assert model._compiled().whole is not None
    assert np.array_equal(predict(x), first) and np.array_equal(model.predict(x), first)
    reference = kf.load(kf.case("keras3", "many_to_one"), "keras", fuse=False)
    assert reference._compiled().whole is None
    assert np.array_equal(reference.predict(x), first)


@pytest.mark.parametrize("flavour", ["keras2", "keras3"])
@pytest.mark.parametrize("name", ["long_chain", "long_chain_stateful"])
def test_chains_of_any_length_compile_and_match_keras(flavour, name):
    """LSTM + 70 Dense: more layers than compiled stacks once held (64). The compiled stack
    runs it, with the same bits as the layer-by-layer path, and both give Keras's outputs."""
    case_ = kf.case(flavour, name)
    d = kf.data(case_)
    compiled, general = kf.load(case_, "h5"), kf.load(case_, "h5", fuse=False)
    assert compiled._compiled().whole is not None
    for i, op in enumerate(case_["protocol"]):
        if op["op"] == "reset":
            compiled.reset_states()
            general.reset_states()
            continue
        x = d[op["inputs"][0]]
        got, slow = compiled.predict(x), general.predict([x])
        assert np.array_equal(got, slow), f"call {i}: fused and layer-by-layer runs differ"
        kf.assert_close(got, d[op["outputs"][0]], f"{flavour}/{name} call {i}")
