"""The activation layers with parameters (LeakyReLU, ELU, ReLU, ThresholdedReLU, PReLU, Softmax):
what the format replays (test_formats.py) do not show. The element-wise ones join compiled
chains, ``fastlstm info`` says why a layer runs on its own, and bad configs are refused with
the layer and key named. Expected values are Keras's recordings; bad configs are Keras-written
fixture configs with one entry changed."""
import copy
import json
import math

import keras_fixtures as kf
import numpy as np
import pytest

import fastlstm
from fastlstm import _kernels
from fastlstm.cli import main

FLAVOURS = ["keras2", "keras3"]
LAYER_CLASSES = {"LeakyReLU", "ELU", "ReLU", "PReLU", "Softmax"}


def config_of(flavour, name):
    with open(kf.path(kf.case(flavour, name)["files"]["json"])) as f:
        return json.load(f)


def build_changed(flavour, case_name, layer_name, **changes):
    """The case's model (Keras config and weights) with some config entries of one layer
    changed."""
    config = copy.deepcopy(config_of(flavour, case_name))
    layer = next(l for l in config["config"]["layers"] if l["config"].get("name") == layer_name)
    layer["config"].update(changes)
    model = fastlstm.model_from_json(json.dumps(config))
    model.load_weights(kf.path(kf.case(flavour, case_name)["files"]["weights"]))
    return model


def recorded(flavour, name):
    """The first recorded call of a case: its input and Keras's output."""
    case = kf.case(flavour, name)
    d = kf.data(case)
    op = case["protocol"][0]
    return d[op["inputs"][0]], d[op["outputs"][0]]


def info_of(path, capsys) -> str:
    assert main(["info", path]) == 0
    return capsys.readouterr().out


def test_fixtures_cover_every_layer_in_both_flavours():
    for flavour in FLAVOURS:
        found = {l["class_name"] for c in kf.cases(flavour) if "json" in c["files"]
                 for l in config_of(flavour, c["name"])["config"]["layers"]}
        expected = LAYER_CLASSES | ({"ThresholdedReLU"} if flavour == "keras2" else set())
        assert expected <= found, (flavour, expected - found)


# -- compiled chains and what info says ------------------------------------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
def test_lstm_dense_leaky_relu_dense_is_one_compiled_chain(flavour, capsys):
    """Sequential LSTM -> Dense -> LeakyReLU(0.1) -> Dense: one C call, the same bits as layer
    by layer, both Keras's values; Keras 2 names the slope alpha, Keras 3 negative_slope."""
    case = kf.case(flavour, "leaky_relu_layer_slope")
    key = "negative_slope" if flavour == "keras3" else "alpha"
    layer_config = next(l for l in config_of(flavour, case["name"])["config"]["layers"]
                        if l["class_name"] == "LeakyReLU")["config"]
    assert layer_config[key] == pytest.approx(0.1)
    model = kf.load(case, "keras")
    assert model._compiled().whole is not None
    kf.replay(model, case)
    layer_by_layer = kf.load(case, "keras", fuse=False)
    kf.replay(layer_by_layer, case)
    x, _ = recorded(flavour, case["name"])
    assert np.array_equal(model.predict(x), layer_by_layer.predict(x))
    assert "runs one C call for the whole stack" in info_of(kf.path(case["files"]["keras"]),
                                                            capsys)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_relu_leaky_relu_elu_softmax_head_is_one_compiled_chain(flavour):
    case = kf.case(flavour, "relu_layer_fused_head")
    model = kf.load(case, "h5")
    assert model._compiled().whole is not None
    kf.replay(model, case)


def test_info_says_why_each_layer_is_not_fused(capsys):
    out = info_of(kf.path(kf.case("keras3", "softmax_layer_axes")["files"]["keras"]), capsys)
    assert "3 fused chain(s) of 4 layer(s)" in out
    assert "'softmax_1' (Softmax): axis=1 is not the last axis alone, run by numpy" in out
    assert "'softmax_3' (Softmax): axis=[-2] is not the last axis alone, run by numpy" in out
    assert "'concatenate' (Concatenate): takes 4 inputs" in out
    assert "'softmax_2'" not in out.split("runs ")[1]  # axis=[2], the last one: fused
    out = info_of(kf.path(kf.case("keras2", "prelu_layer")["files"]["h5"]), capsys)
    assert ("'p_re_lu' (PReLU): alpha is a weight of shape (6, 5) (a slope per position or "
            "channel), run by numpy") in out
    assert "'p_re_lu_2' (PReLU): alpha is a weight of shape (1, 1), run by numpy" in out
    out = info_of(kf.path(kf.case("keras3", "softmax_layer_mask")["files"]["keras"]), capsys)
    assert "'masking' (Masking): no compiled stack op for this layer" in out
    out = info_of(kf.path(kf.case("keras3", "autoencoder_functional")["files"]["keras"]), capsys)
    assert "'decoder' (Functional): a nested model, run as its own call" in out
    assert "'decoder/repeat_vector' (RepeatVector): its input (None, 6) is not a" in out


# -- semantics beyond the recordings ------------------------------------------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
def test_relu_max_value_infinity_is_no_clip(flavour):
    """max_value=Infinity (JSON) clips nothing, as Keras clips to +inf: re_lu_1's block equals
    the plain ReLU's block Keras recorded."""
    model = build_changed(flavour, "relu_layer_variants", "re_lu_1", max_value=math.inf)
    x, want = recorded(flavour, "relu_layer_variants")
    got = model.predict(x)
    kf.assert_close(got[..., 4:8], want[..., 0:4], "re_lu_1 with max_value=inf")
    kf.assert_close(got[..., 8:], want[..., 8:], "the other branches")


def test_keras3_leaky_relu_takes_the_legacy_alpha():
    """Keras 3's LeakyReLU pops a legacy ``alpha`` kwarg over negative_slope
    (keras/src/layers/activations/leaky_relu.py): alpha=0.1 gives the recorded 0.1 model even
    with another negative_slope beside it."""
    model = build_changed("keras3", "leaky_relu_layer_slope", "leaky_re_lu", alpha=0.1,
                          negative_slope=0.7)
    x, want = recorded("keras3", "leaky_relu_layer_slope")
    kf.assert_close(model.predict(x), want, "alpha over negative_slope")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_leaky_relu_default_slope_is_0_3_in_both_versions(flavour):
    """The layer's default is 0.3 in both (the leaky_relu function's is 0.2 in Keras 3): the
    recorded LeakyReLU() model, with the key removed from its config, still matches."""
    key = "negative_slope" if flavour == "keras3" else "alpha"
    config = copy.deepcopy(config_of(flavour, "leaky_relu_layer_default"))
    layer = next(l for l in config["config"]["layers"] if l["class_name"] == "LeakyReLU")
    assert layer["config"].pop(key) == pytest.approx(0.3)
    model = fastlstm.model_from_json(json.dumps(config))
    model.load_weights(kf.path(kf.case(flavour, "leaky_relu_layer_default")["files"]["weights"]))
    kf.replay(model, kf.case(flavour, "leaky_relu_layer_default"))


# -- bad configs --------------------------------------------------------------------------------

BAD_CONFIGS = [
    ("keras2", "leaky_relu_layer_slope", "leaky_re_lu", {"alpha": "0.1"},
     fastlstm.ModelFormatError,
     r"'leaky_re_lu' \(LeakyReLU\): alpha must be a finite number, got '0.1'"),
    ("keras2", "leaky_relu_layer_slope", "leaky_re_lu", {"alpha": None},
     fastlstm.ModelFormatError, r"alpha must be a finite number, got None"),
    ("keras2", "leaky_relu_layer_slope", "leaky_re_lu", {"negative_slope": 0.1},
     fastlstm.UnsupportedConfigError, r"Keras 2 takes alpha, not negative_slope"),
    ("keras3", "leaky_relu_layer_slope", "leaky_re_lu", {"negative_slope": -0.1},
     fastlstm.ModelFormatError,
     r"negative_slope must be a non-negative finite number, got -0.1"),
    ("keras3", "leaky_relu_layer_slope", "leaky_re_lu", {"negative_slope": 10 ** 400},
     fastlstm.ModelFormatError, r"negative_slope=.* is too large for a float"),
    ("keras3", "leaky_relu_layer_slope", "leaky_re_lu", {"negative_slope": 1e39},
     fastlstm.ModelFormatError, r"negative_slope=1e\+39 is beyond the float32 range"),
    ("keras3", "leaky_relu_layer_slope", "leaky_re_lu", {"negative_slope": math.nan},
     fastlstm.ModelFormatError, r"negative_slope must be a non-negative finite number, got nan"),
    ("keras3", "leaky_relu_layer_slope", "leaky_re_lu", {"negative_slope": True},
     fastlstm.ModelFormatError, r"negative_slope must be a non-negative finite number, got True"),
    ("keras2", "elu_layer", "elu_1", {"alpha": [0.4]}, fastlstm.ModelFormatError,
     r"'elu_1' \(ELU\): alpha must be a finite number, got \[0.4\]"),
    ("keras3", "elu_layer", "elu", {"alpha": math.inf}, fastlstm.ModelFormatError,
     r"'elu' \(ELU\): alpha must be a finite number, got inf"),
    ("keras2", "relu_layer_variants", "re_lu_1", {"max_value": -1.0}, fastlstm.ModelFormatError,
     r"'re_lu_1' \(ReLU\): max_value must be a non-negative number, got -1.0"),
    ("keras3", "relu_layer_variants", "re_lu_1", {"max_value": "6"}, fastlstm.ModelFormatError,
     r"max_value must be a non-negative number, got '6'"),
    ("keras3", "relu_layer_variants", "re_lu", {"negative_slope": None},
     fastlstm.ModelFormatError, r"'re_lu' \(ReLU\): negative_slope must be a non-negative"),
    ("keras2", "relu_layer_variants", "re_lu", {"threshold": -0.5}, fastlstm.ModelFormatError,
     r"threshold must be a non-negative finite number, got -0.5"),
    ("keras2", "thresholded_relu_layer", "thresholded_re_lu", {"theta": -1},
     fastlstm.ModelFormatError,
     r"'thresholded_re_lu' \(ThresholdedReLU\): theta must be a non-negative finite number"),
    ("keras3", "softmax_layer_axes", "softmax_1", {"axis": 3}, fastlstm.ModelFormatError,
     r"'softmax_1' \(Softmax\): axis 3 is out of range for input shape \(None, None, 4\)"),
    ("keras2", "softmax_layer_axes", "softmax_1", {"axis": -4}, fastlstm.ModelFormatError,
     r"axis -4 is out of range"),
    ("keras3", "softmax_layer_axes", "softmax_1", {"axis": []}, fastlstm.ModelFormatError,
     r"axis must be an integer or a non-empty list of integers, got \[\]"),
    ("keras2", "softmax_layer_axes", "softmax_1", {"axis": [1, 1]}, fastlstm.ModelFormatError,
     r"repeated axis"),
    ("keras3", "softmax_layer_axes", "softmax", {"robust_masking": True},
     fastlstm.UnsupportedConfigError, r"robust_masking is a Keras 2 key"),
    ("keras2", "softmax_layer_axes", "softmax", {"robust_masking": "yes"},
     fastlstm.ModelFormatError, r"robust_masking must be true or false, got 'yes'"),
    ("keras3", "prelu_layer", "p_re_lu_1", {"shared_axes": [3]}, fastlstm.ModelFormatError,
     r"'p_re_lu_1' \(PReLU\): shared axis 3 is out of range for input shape \(None, 6, 5\)"),
    ("keras2", "prelu_layer", "p_re_lu_1", {"shared_axes": ["1"]}, fastlstm.ModelFormatError,
     r"shared_axes must be None, an integer or a list of integers, got \['1'\]"),
]


@pytest.mark.parametrize("flavour,case_name,layer,changes,error,pattern", BAD_CONFIGS,
                         ids=[f"{b[0]}-{b[2]}-{next(iter(b[3]))}" for b in BAD_CONFIGS])
def test_bad_configs(flavour, case_name, layer, changes, error, pattern):
    with pytest.raises(error, match=pattern):
        build_changed(flavour, case_name, layer, **changes)


def test_prelu_needs_the_axes_it_has_weights_for():
    """alpha (T, C) needs T known: a model declaring (None, None, 3) cannot size it."""
    config = copy.deepcopy(config_of("keras3", "prelu_layer"))
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, None, 3]
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'p_re_lu' \(PReLU\): alpha has shape \(None, 5\) from input shape "
                             r"\(None, None, 5\); every axis that is not shared must be known"):
        fastlstm.model_from_json(json.dumps(config))


def test_softmax_mask_that_does_not_broadcast_is_refused():
    """A (2, 4) timestep mask against a (2, 4, 4) sequence broadcasts in neither Keras (mask
    axes align from the last one); Keras 3 raises, and so does fastlstm, naming both shapes."""
    case = kf.case("keras3", "softmax_layer_mask")
    model = kf.load(case, "keras")
    x = np.random.default_rng(0).uniform(-1, 1, (2, 4, 3)).astype(np.float32)
    x[:, 1] = 0.0
    with pytest.raises(ValueError, match=r"'softmax' \(Softmax\): the mask of shape \(2, 4\) "
                                         r"does not broadcast to the input \(2, 4, 4\)"):
        model.predict(x)


@pytest.mark.parametrize("flavour", ["keras2", "keras3"])
def test_special_values_go_through_each_layer_as_in_keras(flavour):
    """NaN, +-inf, +-0 and values at the thresholds, each activation layer built from the
    config Keras wrote, on every ISA: the values Keras computed (NaN where Keras gives NaN)."""
    from fastlstm.layers.base import LoadContext
    from fastlstm.layers.registry import build_layer

    case = kf.case(flavour, "activation_layer_specials")
    with np.load(kf.path(case["files"]["specials"])) as f:
        recorded = {k: f[k] for k in f.files}
    x = recorded["x"]
    ctx = LoadContext((3, 0) if flavour == "keras3" else (2, 21))
    keys = [k for k in recorded if k != "x" and "__" not in k]
    assert len(keys) >= 14
    before = _kernels.get_isa()
    for isa in _kernels.supported_isas():
        _kernels.set_isa(isa)
        try:
            for key in keys:
                layer = build_layer({"class_name": str(recorded[key + "__class"]),
                                     "config": json.loads(str(recorded[key + "__config"]))},
                                    ctx)
                layer.build([x.shape])
                got, expected = layer.call([x])[0], recorded[key]
                what = f"{flavour} {key} on {isa}"
                np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=what)
                # atol: ELU near 0 is expm1 here, exp(x) - 1 in TensorFlow (which rounds -1e-8 to 0).
                np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-7, err_msg=what)
        finally:
            _kernels.set_isa(before)
