"""Normalization, Rescaling and the training-only layers (SpatialDropout1D/2D/3D, GaussianNoise,
GaussianDropout, AlphaDropout, ActivityRegularization): what the format replays of
test_formats.py do not show. Bad configs are Keras-written fixture configs with one entry
changed; expected values are Keras's recordings."""
import copy
import json

import numpy as np
import pytest

import fastlstm
import keras_fixtures as kf
from fastlstm.layers import unsupported_advice

FLAVOURS = ["keras2", "keras3"]
TRAINING_ONLY = {"SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
                 "GaussianDropout", "AlphaDropout", "ActivityRegularization"}
PREPROCESSING = {"Normalization", "Rescaling"}


def config_of(flavour, name):
    with open(kf.path(kf.case(flavour, name)["files"]["json"])) as f:
        return json.load(f)


def layer_config(config, name):
    return next(l for l in config["config"]["layers"] if l["config"].get("name") == name)


def build_changed(flavour, case_name, layer_name, drop=(), **changes):
    """model_from_json of the case's Keras config with some entries of one layer changed."""
    config = copy.deepcopy(config_of(flavour, case_name))
    entry = layer_config(config, layer_name)["config"]
    entry.update(changes)
    for key in drop:
        entry.pop(key, None)
    return fastlstm.model_from_json(json.dumps(config))


def test_fixtures_cover_every_layer_in_both_flavours():
    for flavour in FLAVOURS:
        found = {l["class_name"] for c in kf.cases(flavour) if "json" in c["files"]
                 for l in config_of(flavour, c["name"])["config"]["layers"]}
        assert TRAINING_ONLY | PREPROCESSING <= found, (flavour, (TRAINING_ONLY | PREPROCESSING)
                                                       - found)


# -- training-only layers ----------------------------------------------------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
def test_training_only_layers_pass_the_embedding_mask_to_the_lstm(flavour):
    """Keras's recorded outputs for zero-padded rows are those of a masked LSTM (the mask went
    through all five layers); fastlstm reproduces them, each layer passing the mask on."""
    case = kf.case(flavour, "training_only_text_masked")
    model = kf.load(case, "json")
    kf.replay(model, case)
    mask = np.array([[True, False]])
    for layer in model.layers.values():
        if layer.keras_class in TRAINING_ONLY:
            assert layer.compute_mask([np.zeros((1, 2, 6))], [mask], [None])[0] is mask


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_training_only_layers_fuse_into_one_chain(flavour):
    case = kf.case(flavour, "training_only_sequence_chain")
    model = kf.load(case, "json")
    kf.replay(model, case)
    assert model._compiled().whole is not None   # the whole model is one compiled stack


@pytest.mark.parametrize("flavour,layer,changes,pattern", [
    ("keras3", "spatial_dropout1d", {"rate": 1.5}, r"rate must be between 0 and 1"),
    ("keras2", "spatial_dropout1d", {"rate": -0.1}, r"rate must be between 0 and 1"),
    ("keras3", "gaussian_noise", {"stddev": 2.0}, r"stddev must be between 0 and 1"),
    ("keras3", "gaussian_dropout", {"rate": 1.01}, r"rate must be between 0 and 1"),
    ("keras3", "alpha_dropout", {"rate": -1}, r"rate must be between 0 and 1"),
    ("keras2", "gaussian_noise", {"stddev": "big"}, r"stddev must be a finite number"),
    ("keras3", "gaussian_noise", {"stddev": None}, r"stddev must be a finite number"),
    ("keras3", "spatial_dropout1d", {"seed": "x"}, r"seed must be an integer or null"),
    ("keras3", "alpha_dropout", {"noise_shape": [1, "a", 6]}, r"noise_shape must be null or"),
    ("keras3", "alpha_dropout", {"noise_shape": [1, 6]}, r"noise_shape \[1, 6\] does not have "
                                                         r"the rank of input shape"),
    ("keras3", "activity_regularization", {"l1": -0.5}, r"l1 must be a non-negative finite"),
    ("keras2", "activity_regularization", {"l2": float("nan")}, r"l2 must be a non-negative"),
])
def test_training_only_bad_configs(flavour, layer, changes, pattern):
    with pytest.raises(fastlstm.ModelFormatError, match=rf"'{layer}' \(\w+\): {pattern}"):
        build_changed(flavour, "training_only_text_masked", layer, **changes)


def test_keras2_takes_the_numbers_keras2_does_not_validate():
    """tf_keras GaussianNoise/GaussianDropout/AlphaDropout take any number (they are the identity
    at inference whatever it is); Keras 3 refuses values outside [0, 1]."""
    case = kf.case("keras2", "training_only_text_masked")
    model = build_changed("keras2", "training_only_text_masked", "gaussian_noise", stddev=3.0)
    model.load_weights(kf.path(case["files"]["weights"]))
    kf.replay(model, case)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_spatial_dropout_rank_and_data_format(flavour):
    with pytest.raises(fastlstm.UnsupportedConfigError, match=r"'spatial_dropout2d' "
                       r"\(SpatialDropout2D\): data_format must be"):
        build_changed(flavour, "spatial_dropout_2d_3d", "spatial_dropout2d", data_format="nhwc")
    config = copy.deepcopy(config_of(flavour, "spatial_dropout_2d_3d"))
    layer_config(config, "spatial_dropout2d")["class_name"] = "SpatialDropout3D"
    with pytest.raises(fastlstm.ModelFormatError, match=r"'spatial_dropout2d' "
                       r"\(SpatialDropout3D\) needs 5-D input \(batch included\), got shape "
                       r"\(None, 4, 5, 3\)"):
        fastlstm.model_from_json(json.dumps(config))


# -- Normalization -------------------------------------------------------------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
def test_normalization_weights_and_layout(flavour):
    """Adapted: mean, variance (kept dims) and count, all non-trainable; in a Keras 3 weights
    file vars/0..2. Config-given statistics: no weights at all."""
    model = kf.load(kf.case(flavour, "normalization_axes_invert"), "keras")
    shapes = {l.name: l.weight_shapes() for l in model.layers.values()
              if l.keras_class == "Normalization"}
    assert shapes == {"norm_all": [(), (), ()], "norm_steps_features": [(6, 4), (6, 4), ()],
                      "denorm": [(2,), (2,), ()]}
    assert all(l.n_trainable_weights() == 0 for l in model.layers.values()
               if l.keras_class == "Normalization")
    given = kf.load(kf.case(flavour, "normalization_given_stats"), "keras")
    assert [l.weight_shapes() for l in given.layers.values()
            if l.keras_class == "Normalization"] == [[], [], []]


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("layer,changes,error,pattern", [
    ("normalization", {"variance": None}, fastlstm.ModelFormatError,
     r"the config gives only one of mean and variance"),
    ("normalization", {"variance": [1.0, 2.0]}, fastlstm.ModelFormatError,
     r"mean has shape \(3,\) and variance \(2,\); Keras requires the same shape"),
    ("normalization", {"mean": [[1.0]], "variance": [[1.0]]}, fastlstm.ModelFormatError,
     r"mean of rank 2 for axis .*at most the number of axes \(1\)"),
    ("normalization_2", {"mean": [1.0, 2.0, 3.0, 4.0], "variance": [1.0, 1.0, 1.0, 1.0]},
     fastlstm.ModelFormatError, r"mean/variance of shape \(4,\) do not broadcast onto the kept "
                                r"dims \(5, 3\)"),
    ("normalization", {"mean": [1.0, "x", 2.0]}, fastlstm.ModelFormatError,
     r"mean must be a number or a rectangular list of numbers"),
    ("normalization", {"mean": [1.0, float("nan"), 2.0]}, fastlstm.ModelFormatError,
     r"mean must be finite numbers"),
    ("normalization", {"axis": 3}, fastlstm.ModelFormatError, r"axis 3 is out of range"),
    ("normalization", {"axis": [2, -1]}, fastlstm.ModelFormatError, r"repeated axis"),
    ("normalization", {"axis": "last"}, fastlstm.ModelFormatError,
     r"axis must be an integer or a non-empty list"),
    ("normalization", {"invert": "yes"}, fastlstm.ModelFormatError,
     r"invert must be true or false"),
])
def test_normalization_bad_configs(flavour, layer, changes, error, pattern):
    with pytest.raises(error, match=rf"'{layer}' \(Normalization\): {pattern}"):
        build_changed(flavour, "normalization_given_stats", layer, **changes)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_normalization_of_an_axis_of_unknown_size_is_refused(flavour):
    config = copy.deepcopy(config_of(flavour, "normalization_given_stats"))
    inp = config["config"]["layers"][0]["config"]
    key = "batch_shape" if "batch_shape" in inp else "batch_input_shape"
    inp[key] = [None, 5, None]
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'normalization(_2)?' \(Normalization\): kept axis 2 of input shape "
                             r"\(None, 5, None\) must be known"):
        fastlstm.model_from_json(json.dumps(config))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_normalization_adapted_weights_of_the_wrong_shape(flavour, tmp_path):
    import h5py
    import shutil
    case = kf.case(flavour, "normalization_forecaster")
    path = tmp_path / "w.h5"
    shutil.copy(kf.path(case["files"]["h5"]), path)
    with h5py.File(path, "r+") as f:
        found = []
        f["model_weights"].visititems(
            lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) and "mean" in n else None)
        del f["model_weights"][found[0]]
        f["model_weights"][found[0]] = np.zeros(4, np.float32)
    with pytest.raises(fastlstm.ModelFormatError, match=r"'norm' \(Normalization\) weight 0 has "
                       r"shape \(4,\) in the file, expected \(3,\)"):
        fastlstm.load_model(path)


@pytest.mark.parametrize("flavour,passes", [("keras2", False), ("keras3", True)])
def test_preprocessing_masks_follow_each_keras(flavour, passes):
    """Keras 3 Normalization and Rescaling set supports_masking; tf_keras's do not."""
    for name in ("normalization_forecaster", "rescaling_chain"):
        model = kf.load(kf.case(flavour, name), "json")
        layer = next(l for l in model.layers.values() if l.keras_class in PREPROCESSING)
        mask = np.array([[True]])
        assert (layer.compute_mask([None], [mask], [None])[0] is mask) == passes


# -- Rescaling -----------------------------------------------------------------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("changes,drop,pattern", [
    ({}, ("scale",), r"the config has no scale"),
    ({"scale": "0.5"}, (), r"scale must be a number or a rectangular list of numbers"),
    ({"scale": [[1.0], [1.0, 2.0]]}, (), r"scale must be a number or a rectangular list"),
    ({"scale": [1.0, 2.0]}, (), r"scale of shape \(2,\) does not broadcast onto input shape "
                                r"\(None, 8, 3\)"),
    ({"offset": {"class_name": "Thing", "config": {}}}, (),
     r"offset must be a number, a list of numbers or a serialized numpy array"),
    ({"offset": float("inf")}, (), r"offset must be finite numbers"),
    ({"scale": True}, (), r"scale must be numbers"),
])
def test_rescaling_bad_configs(flavour, changes, drop, pattern):
    with pytest.raises(fastlstm.ModelFormatError, match=rf"'rescaling' \(Rescaling\): {pattern}"):
        build_changed(flavour, "rescaling_chain", "rescaling", drop=drop, **changes)


@pytest.mark.parametrize("keras_major", [2, 3])
def test_rescaling_array_onto_features_unknown_until_run_time(keras_major):
    """An input declared (None, None, None) passes the build-time check; a scale of 2 values
    on 3 features is a ValueError naming the layer and both shapes at call time."""
    from fastlstm.layers.base import LoadContext
    from fastlstm.layers.registry import build_layer

    for key, config, shape in (("scale", {"scale": [1.0, 2.0]}, r"\(2,\)"),
                               ("offset", {"scale": 2.0, "offset": [[1.0, 2.0]]}, r"\(1, 2\)")):
        layer = build_layer({"class_name": "Rescaling", "config": dict(config, name="resc")},
                            LoadContext((keras_major, 0)))
        layer.build([(None, None, None)])
        pattern = (rf"layer 'resc' \(Rescaling\): {key} of shape {shape} does not broadcast "
                   r"onto the input of shape \(1, 4, 3\) \(each of its axes, from the last, "
                   r"must be 1 or the input's\)")
        with pytest.raises(ValueError, match=pattern):
            layer.call([np.zeros((1, 4, 3), np.float32)])
        (out,) = layer.call([np.ones((1, 4, 2), np.float32)])
        assert out.shape == (1, 4, 2)


def test_rescaling_arrays_from_keras3_configs():
    config = config_of("keras3", "rescaling_arrays")
    scales = [l["config"]["scale"] for l in config["config"]["layers"]
              if l["class_name"] == "Rescaling"]
    assert scales[0] == [0.5, 2.0, -1.0] and scales[1]["class_name"] == "__numpy__"
    case = kf.case("keras3", "rescaling_arrays")
    kf.replay(kf.load(case, "keras"), case)


# -- the unsupported-layer message ---------------------------------------------------------------

def _with_classes(classes, module=None, registered=None):
    config = copy.deepcopy(config_of("keras3", "rescaling_chain"))
    layers = config["config"]["layers"]
    for i, cls in zip((1, 3), classes):
        layers[i]["class_name"] = cls
        if module is not None:
            layers[i]["module"] = module
            layers[i]["registered_name"] = registered
    return json.dumps(config)


def test_unsupported_message_names_an_alternative_per_class():
    with pytest.raises(fastlstm.UnsupportedConfigError) as info:
        fastlstm.model_from_json(_with_classes(["Lambda", "RandomFlip"]))
    message = str(info.value)
    assert "'rescaling' (Lambda), 'rescaling_1' (RandomFlip)" in message
    assert "never runs" in message
    assert ("What you could do instead: Lambda: rewrite the Lambda as built-in layers "
            "(Reshape, Permute") in message
    assert "RandomFlip: it only acts while training: build the inference model without it" \
        in message
    assert "Supported: " in message and "Normalization" in message


def test_unsupported_message_for_custom_and_unknown_layers():
    with pytest.raises(fastlstm.UnsupportedConfigError) as info:
        fastlstm.model_from_json(_with_classes(["MyScaler", "MyScaler"], module="my_project",
                                               registered="my_project>MyScaler"))
    message = str(info.value)
    assert message.count("MyScaler: a custom layer: its code is not in the file") == 1
    with pytest.raises(fastlstm.UnsupportedConfigError) as info:
        fastlstm.model_from_json(_with_classes(["Conv3DTranspose", "StringLookup"]))
    message = str(info.value)
    assert "Conv3DTranspose: re-save the model without it" in message
    assert "StringLookup: look the strings up outside the model" in message


def test_advice_names_wrapped_classes_by_the_inner_class():
    assert unsupported_advice.advice(["TimeDistributed(Lambda)"], set()) == [
        "TimeDistributed(Lambda): " + unsupported_advice.LAMBDA]


def test_config_statistics_are_not_expanded_to_the_input_size():
    """Scalar statistics over huge kept axes stay scalars (broadcast at call time): the model
    is refused by the allocation budget, naming the sizes, before anything that large exists."""
    config = copy.deepcopy(config_of("keras3", "normalization_given_stats"))
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, 1 << 20, 1 << 16]
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "Normalization":
            layer["config"].update(axis=[1, 2], mean=1.0, variance=2.0)
    with pytest.raises(fastlstm.ModelFormatError, match=r"the outputs of one call would take "
                       r"1,649,267,441,688 bytes"):
        fastlstm.model_from_json(json.dumps(config))
