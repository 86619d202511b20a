"""Bad files and bad inputs raise clear Python exceptions naming what was expected."""
import json

import numpy as np
import pytest

import fastlstm
import keras_fixtures as kf


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.h5"
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        fastlstm.load_model(missing)


def test_not_a_model_file(tmp_path):
    p = tmp_path / "model.h5"
    p.write_bytes(b"hello, this is text")
    with pytest.raises(fastlstm.ModelFormatError, match="neither HDF5 nor a zip"):
        fastlstm.load_model(p)
    empty = tmp_path / "empty.keras"
    empty.write_bytes(b"")
    with pytest.raises(fastlstm.ModelFormatError, match="empty"):
        fastlstm.load_model(empty)


@pytest.fixture
def stacked():
    case = kf.case("keras3", "many_to_one")
    return kf.load(case, "keras")


def test_wrong_feature_size(stacked):
    with pytest.raises(ValueError, match=r"expects shape \(None, 10, 4\).*features|axis 2: "
                                         r"expected 4, got 5"):
        stacked.predict(np.zeros((2, 10, 5)))


def test_wrong_timesteps_for_fixed_length_model(stacked):
    with pytest.raises(ValueError, match="timesteps: expected 10, got 7"):
        stacked.predict(np.zeros((2, 7, 4)))


def test_wrong_rank(stacked):
    with pytest.raises(ValueError, match=r"expects 3-D data.*got shape \(10, 4\)"):
        stacked.predict(np.zeros((10, 4)))


def test_non_numeric_input(stacked):
    with pytest.raises(TypeError, match="numeric"):
        stacked.predict(np.full((1, 10, 4), "a"))


def test_wrong_number_of_inputs():
    case = kf.case("keras3", "encoder_decoder_state")
    model = kf.load(case, "keras")
    with pytest.raises(ValueError, match="takes 2 inputs"):
        model.predict(np.zeros((1, 3, 4)))


def _rewrite_config(case, tmp_path, edit):
    with open(kf.path(case["files"]["json"])) as f:
        config = json.load(f)
    edit(config)
    return json.dumps(config)


def test_unsupported_layers_are_listed_together(tmp_path):
    case = kf.case("keras2", "stacked")

    def edit(config):
        layers = config["config"]["layers"]
        layers[1]["class_name"] = "Lambda"
        layers[2]["class_name"] = "Conv3DTranspose"

    text = _rewrite_config(case, tmp_path, edit)
    with pytest.raises(fastlstm.UnsupportedConfigError) as info:
        fastlstm.model_from_json(text)
    message = str(info.value)
    assert "(Lambda)" in message and "(Conv3DTranspose)" in message
    assert "never runs" in message


def test_unsupported_layers_inside_wrappers_are_named_through_them(tmp_path):
    case = kf.case("keras2", "stacked")

    def edit(config):
        layers = config["config"]["layers"]
        lstm = layers[1]
        layers[1] = {"class_name": "Bidirectional",
                     "config": {"name": "bidi", "layer": dict(lstm, class_name="MyCellRNN")}}
        layers[2] = {"class_name": "TimeDistributed",
                     "config": {"name": "td", "layer": {"class_name": "Lambda",
                                                        "config": {"name": "fn"}}}}

    with pytest.raises(fastlstm.UnsupportedConfigError) as info:
        fastlstm.model_from_json(_rewrite_config(case, tmp_path, edit))
    message = str(info.value)
    assert "2 unsupported layer(s)" in message
    assert "'bidi/lstm' (Bidirectional(MyCellRNN))" in message
    assert "'td/fn' (TimeDistributed(Lambda))" in message
    assert "Lambda layers hold Python code" in message


def test_absurd_units_fail_before_allocation(tmp_path):
    case = kf.case("keras2", "stacked")

    def edit(config):
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "LSTM":
                layer["config"]["units"] = 10 ** 9

    with pytest.raises(fastlstm.ModelFormatError, match="units=1000000000 is outside"):
        fastlstm.model_from_json(_rewrite_config(case, tmp_path, edit))


def test_weights_that_disagree_with_the_config(tmp_path):
    case = kf.case("keras2", "stacked")

    def edit(config):
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "LSTM":
                layer["config"]["units"] += 1
                break

    model = fastlstm.model_from_json(_rewrite_config(case, tmp_path, edit))
    with pytest.raises(fastlstm.ModelFormatError, match=r"layer 'lstm.*\(LSTM\) weight 0 has "
                                                        r"shape .* expected"):
        model.load_weights(kf.path(case["files"]["weights"]))


def test_predict_before_any_weights_names_the_layers_without_them():
    import json

    layers = [{"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [None, None, 3]}},
              {"class_name": "LSTM", "config": {"name": "lstm", "units": 4}},
              {"class_name": "Dense", "config": {"name": "dense", "units": 2}}]
    model = fastlstm.model_from_json(json.dumps(
        {"module": "keras", "class_name": "Sequential", "config": {"name": "t", "layers": layers}}))
    with pytest.raises(ValueError, match=r"no weights for layers \['lstm', 'dense'\] yet; load "
                                         r"them with model.load_weights"):
        model.predict(np.zeros((1, 2, 3), np.float32))


@pytest.mark.parametrize("class_name", [[1], {"a": 1}, 5, None])
@pytest.mark.parametrize("wrapped", [False, True])
def test_a_class_name_that_is_no_string_is_an_unsupported_layer(class_name, wrapped):
    """A hostile config may put anything where a class name goes, also inside a wrapper."""
    import json

    layer = {"class_name": class_name, "config": {"name": "q", "units": 2}}
    if wrapped:
        layer = {"class_name": "Bidirectional", "config": {"name": "bi", "layer": layer}}
    config = {"class_name": "Sequential", "config": {"name": "m", "layers": [
        {"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [None, 2, 3]}}, layer]}}
    with pytest.raises(fastlstm.UnsupportedConfigError, match=r"unsupported|wraps"):
        fastlstm.model_from_json(json.dumps(config))
