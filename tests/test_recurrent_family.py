"""GRU, SimpleRNN, Bidirectional, Embedding and Masking beyond replaying Keras's predictions
(test_formats.py does that for every fixture): their states through the state API, handles and
generation, and clear errors for what they cannot take."""
import json

import numpy as np
import pytest

import fastlstm
import keras_fixtures as kf
from fastlstm.errors import ModelFormatError, UnsupportedConfigError


def _protocol_inputs(case_, d):
    return [(op, d[op["inputs"][0]]) for op in case_["protocol"] if op["op"] == "predict"]


@pytest.mark.parametrize("flavour", ["keras2", "keras3"])
def test_gru_and_simple_rnn_states_are_h_only_and_round_trip(tmp_path, flavour):
    """simple_rnn_stateful: SimpleRNN(5, stateful) -> GRU(4, stateful), batch 3. States are
    [h] per layer; saved after the first Keras call and loaded into a fresh instance, the second
    call gives Keras's second output."""
    case_ = kf.case(flavour, "simple_rnn_stateful")
    d = kf.data(case_)
    calls = _protocol_inputs(case_, d)
    model = kf.load(case_, "h5")
    model.predict(calls[0][1])
    states = model.get_states()
    assert sorted(states) == ["gru", "simple_rnn"]
    assert [s.shape for s in states["gru"]] == [(3, 4)]
    assert [s.shape for s in states["simple_rnn"]] == [(3, 5)]
    model.save_states(tmp_path / "s.h5")
    fresh = kf.load(case_, "json")
    fresh.load_states(tmp_path / "s.h5")
    kf.assert_close(fresh.predict(calls[1][1]), d[calls[1][0]["outputs"][0]], "after load_states")
    other = kf.load(case_, "h5")
    other.set_states(states)
    kf.assert_close(other.predict(calls[1][1]), d[calls[1][0]["outputs"][0]], "after set_states")
    with pytest.raises(ValueError, match=r"states\['gru'\] must be \[h\] \(GRU\), got list of 2"):
        other.set_states({"gru": [states["gru"][0], states["gru"][0]]})


@pytest.mark.parametrize("flavour", ["keras2", "keras3"])
def test_gru_handles_advance_like_the_model(flavour):
    """A handle on a stateful GRU model follows Keras's recorded calls as the model does."""
    case_ = kf.case(flavour, "simple_rnn_stateful")
    d = kf.data(case_)
    model = kf.load(case_, "keras" if flavour == "keras3" else "h5")
    handle = model.new_state(3)
    assert list(handle.as_dict()) == ["simple_rnn", "gru"]
    for op, x in _protocol_inputs(case_, d)[:3]:
        kf.assert_close(model.predict(x, state=handle), d[op["outputs"][0]], "handle")


@pytest.mark.parametrize("flavour", ["keras2", "keras3"])
def test_gru_generation_follows_the_keras_feedback_protocol(flavour):
    """gru_stateful_generation: 6 warm-up calls, then 12 calls feeding the output back; generate
    from the 6th call's state reproduces the 12 recorded outputs."""
    case_ = kf.case(flavour, "gru_stateful_generation")
    d = kf.data(case_)
    calls = _protocol_inputs(case_, d)
    model = kf.load(case_, "h5")
    for _, x in calls[:5]:
        model.predict(x)
    got = model.generate(calls[5][1], 13)
    expected = np.concatenate([d[op["outputs"][0]] for op, _ in calls[5:18]], axis=1)
    kf.assert_close(got, expected, "generate")


@pytest.mark.parametrize("flavour", ["keras2", "keras3"])
def test_bidirectional_stateful_states_are_named_after_both_directions(flavour):
    case_ = kf.case(flavour, "bidirectional_stateful")
    model = kf.load(case_, "h5")
    d = kf.data(case_)
    model.predict(_protocol_inputs(case_, d)[0][1])
    states = model.get_states()
    assert sorted(states) == ["backward_gru", "backward_lstm", "forward_gru", "forward_lstm"]
    assert len(states["forward_lstm"]) == 2 and len(states["backward_gru"]) == 1


def _embedding_model(**embedding):
    return fastlstm.model_from_json(json.dumps({"class_name": "Sequential", "config": {
        "name": "text", "layers": [
            {"class_name": "InputLayer", "config": {"name": "ids", "batch_shape": [None, 4]}},
            {"class_name": "Embedding", "config": {"name": "emb", "input_dim": 10,
                                                   "output_dim": 3, **embedding}},
            {"class_name": "GRU", "config": {"name": "gru", "units": 2}}]}}))


def test_embedding_refuses_indices_outside_its_table():
    model = _embedding_model(mask_zero=True)
    with pytest.raises(ValueError, match=r"layer 'emb' \(Embedding\) takes indices in \[0, 10\); "
                                         r"the input has 10 at position \(1, 2\)"):
        model.predict(np.array([[1, 2, 3, 0], [1, 2, 10, 0]]))
    with pytest.raises(ValueError, match=r"has -1 at position \(0, 0\)"):
        model.predict(np.array([[-1, 2, 3, 0]]))
    with pytest.raises(ValueError, match=r"has 10\.0 at position \(0, 1\)"):
        model.predict(np.array([[1.0, 10.0, 3.0, 0.0]]))
    with pytest.raises(ValueError, match="holds NaN or infinity"):
        model.predict(np.array([[np.nan, 2, 3, 0]]))


@pytest.mark.parametrize("dtype", [np.int64, np.uint64, np.float64])
def test_embedding_reports_the_id_the_user_passed(dtype):
    """16777217 has no float32 of its own (it rounds to 16777216): the error names the value
    as given, in any dtype that holds it, nested models included."""
    ids = np.array([[1, 2, 16777217, 0]], dtype=dtype)
    for model in (_embedding_model(), _nested(_embedding_model())):
        with pytest.raises(ValueError, match=r"the input has 16777217(\.0)? at position \(0, 2\)"):
            model.predict(ids)


def _nested(inner):
    """Sequential([Input((4,)), inner]) from inner's config."""
    return fastlstm.model_from_json(json.dumps({"class_name": "Sequential", "config": {
        "name": "outer", "layers": [
            {"class_name": "InputLayer", "config": {"name": "outer_ids", "batch_shape": [None, 4]}},
            {"class_name": "Sequential", "config": inner.keras_config["config"]}]}}))


def test_embedding_vocabulary_is_bounded_before_allocation():
    with pytest.raises(ModelFormatError, match=r"input_dim=100000000 is outside the supported"):
        _embedding_model(input_dim=10 ** 8)


def _wrapped(inner_class, **bidirectional):
    return json.dumps({"class_name": "Sequential", "config": {"name": "m", "layers": [
        {"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [None, 5, 2]}},
        {"class_name": "Bidirectional", "config": {
            "name": "bi", "layer": {"class_name": inner_class,
                                    "config": {"name": "inner", "units": 3}},
            **bidirectional}}]}})


def test_bidirectional_refuses_what_it_cannot_wrap():
    with pytest.raises(UnsupportedConfigError, match="Bidirectional wraps 'Dense'; fastlstm "
                                                     "supports Bidirectional over LSTM, GRU"):
        fastlstm.model_from_json(_wrapped("Dense"))
    with pytest.raises(ModelFormatError, match=r"merge_mode 'max' is not one of"):
        fastlstm.model_from_json(_wrapped("LSTM", merge_mode="max"))


def test_gru_bias_shape_follows_reset_after():
    model = fastlstm.model_from_json(json.dumps({"class_name": "Sequential", "config": {
        "name": "m", "layers": [
            {"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [None, 5, 2]}},
            {"class_name": "GRU", "config": {"name": "gru", "units": 3, "reset_after": True}}]}}))
    gru = model.layers["gru"]
    with pytest.raises(ModelFormatError, match=r"layer 'gru' \(GRU\) weight 2 has shape \(9,\) "
                                               r"in the file, expected \(2, 9\)"):
        gru.set_weights([np.zeros((2, 9), np.float32), np.zeros((3, 9), np.float32),
                         np.zeros(9, np.float32)])


def test_keras3_weights_missing_one_direction_name_it(tmp_path):
    import h5py
    import shutil

    case_ = kf.case("keras3", "bidirectional_sequential")
    path = tmp_path / "w.weights.h5"
    shutil.copy(kf.path(case_["files"]["weights"]), path)
    with h5py.File(path, "a") as f:
        del f["layers/bidirectional/backward_layer"]
    model = kf.load(case_, "json")
    with pytest.raises(ModelFormatError, match=r"bidirectional/backward_layer: missing \(weights "
                                               r"of layer 'backward_lstm'\)"):
        model.load_weights(path)
