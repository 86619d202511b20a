"""Every Keras-recorded case, loaded from every format Keras wrote it in, replays Keras's
predictions; formats are recognised by content, not by extension."""
import json
import shutil

import h5py
import numpy as np
import pytest

import fastlstm
import keras_fixtures as kf


@pytest.mark.parametrize("case,fmt", kf.format_params())
def test_every_format_reproduces_keras(case, fmt):
    model = kf.load(case, fmt)
    kf.replay(model, case, label=fmt)


def test_fixture_coverage():
    """The fixture set holds every format of issue #2 for both Keras versions."""
    formats = {(c["flavour"], f) for c in kf.cases() for f in c["files"]}
    for needed in [("keras3", "keras"), ("keras3", "h5"), ("keras3", "json"),
                   ("keras2", "h5"), ("keras2", "json"), ("keras2", "legacy")]:
        assert needed in formats, needed
    assert len(kf.cases("keras2")) >= 15 and len(kf.cases("keras3")) >= 15


# Classes one Keras version does not have, or writes only in files of another layout.
ONLY_IN = {
    "keras2": {"Any": "a Keras 3 op", "NotEqual": "a Keras 3 op",
               "ConvertToTensor": "a Keras 3 op",
               "CuDNNLSTM": "in the cudnn files", "CuDNNGRU": "in the cudnn files"},
    "keras3": {"ThresholdedReLU": "removed in Keras 3", "CuDNNLSTM": "Keras 2 only",
               "CuDNNGRU": "Keras 2 only"},
}


def _classes_in(layer):
    yield layer["class_name"]
    config = layer.get("config")
    inner = config if isinstance(config, list) else (config or {}).get("layers")
    for sub in inner if isinstance(inner, list) else []:
        yield from _classes_in(sub)
    for key in ("layer", "backward_layer"):
        if isinstance(config, dict) and isinstance(config.get(key), dict):
            yield from _classes_in(config[key])


def test_every_layer_class_is_recorded_by_each_keras_that_has_it():
    from fastlstm.layers import LAYER_CLASSES

    for flavour, exceptions in ONLY_IN.items():
        found = set()
        for c in kf.cases(flavour):
            for key in ("json", "keras1_json"):
                if key in c["files"]:
                    with open(kf.path(c["files"][key])) as f:
                        found.update(_classes_in(json.load(f)))
        missing = set(LAYER_CLASSES) - found - set(exceptions)
        assert not missing, (flavour, sorted(missing))
    assert any("cudnn" in c["files"] for c in kf.cases("keras2"))


def test_file_versions_are_recorded_as_written():
    with h5py.File(kf.path(kf.case("keras2", "stacked")["files"]["h5"])) as f:
        assert str(f.attrs["keras_version"]).startswith("2.")
    with h5py.File(kf.path(kf.case("keras2", "stacked")["files"]["legacy"])) as f:
        assert f.attrs["keras_version"] in (b"2.1.6", "2.1.6")
        assert "time_major" not in f.attrs["model_config"].decode()


@pytest.mark.parametrize("flavour,src,dst", [
    ("keras2", "h5", "model.keras"),      # tf.keras HDF5 files are often named .keras
    ("keras3", "keras", "model.h5"),      # a zip with the wrong extension
    ("keras3", "h5", "model.bin"),
])
def test_format_detected_from_content(tmp_path, flavour, src, dst):
    case = kf.case(flavour, "many_to_many_td")
    target = tmp_path / dst
    shutil.copy(kf.path(case["files"][src]), target)
    model = fastlstm.load_model(target)
    kf.replay(model, case)


def test_keras2_lstm_file_that_keras3_refuses_loads():
    """Keras 3 cannot load Keras 2 LSTM .h5 files (their config has `time_major`)."""
    case = kf.case("keras2", "stacked")
    with h5py.File(kf.path(case["files"]["h5"])) as f:
        config = f.attrs["model_config"]
    assert "time_major" in (config.decode() if isinstance(config, bytes) else config)
    kf.replay(kf.load(case, "h5"), case)


def test_load_weights_accepts_full_model_files():
    """load_weights also takes the weights out of a full .h5 or .keras file, as Keras does."""
    for flavour, fmt in (("keras2", "h5"), ("keras3", "keras"), ("keras3", "h5")):
        case = kf.case(flavour, "stacked")
        with open(kf.path(case["files"]["json"])) as f:
            model = fastlstm.model_from_json(f.read())
        model.load_weights(kf.path(case["files"][fmt]))
        kf.replay(model, case)


def test_weights_only_file_given_to_load_model_says_what_to_do():
    case = kf.case("keras2", "stacked")
    with pytest.raises(fastlstm.ModelFormatError, match="model_from_json"):
        fastlstm.load_model(kf.path(case["files"]["weights"]))


def test_version_override_changes_hard_sigmoid():
    """A Keras 2 file read with Keras 3 semantics no longer matches Keras 2 (hard_sigmoid)."""
    case = kf.case("keras2", "activations_lstm")
    branch = next(b for b in case["branches"] if b["recurrent_activation"] == "hard_sigmoid")
    index = case["branches"].index(branch)
    d = kf.data(case)
    op = next(op for op in case["protocol"] if op["op"] == "predict")
    x, expected = d[op["inputs"][0]], d[op["outputs"][index]]
    native = kf.load(case, "h5").predict(x)[index]
    kf.assert_close(native, expected, "keras 2 semantics")
    overridden = kf.load(case, "h5", keras_version="3").predict(x)[index]
    assert np.abs(overridden - expected).max() > 1e-3
