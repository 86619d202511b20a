"""Conv1D, pooling, BatchNormalization, LayerNormalization, merge layers and Permute: what the
format replays (test_formats.py) and summaries (test_models.py) do not show. Bad configs are
Keras-written fixture configs with one entry changed; expected values are Keras's recordings."""
import copy
import json
import shutil

import h5py
import numpy as np
import pytest

import fastlstm
import keras_fixtures as kf

FLAVOURS = ["keras2", "keras3"]
AROUND_CLASSES = {
    "Conv1D", "MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D",
    "GlobalMaxPooling1D", "BatchNormalization", "LayerNormalization", "Concatenate", "Add",
    "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Permute"}


def config_of(flavour, name):
    with open(kf.path(kf.case(flavour, name)["files"]["json"])) as f:
        return json.load(f)


def layers_of(config):
    """Every layer dict of a model config, nested models' layers included."""
    for layer in config["config"]["layers"]:
        yield layer
        if layer["class_name"] in ("Sequential", "Functional", "Model"):
            yield from layers_of(layer)


def layer_config(config, name):
    return next(l for l in layers_of(config) if l["config"].get("name") == name)


def build_changed(flavour, case_name, layer_name, **changes):
    """model_from_json of the case's Keras config with some entries of one layer changed."""
    config = copy.deepcopy(config_of(flavour, case_name))
    layer_config(config, layer_name)["config"].update(changes)
    return fastlstm.model_from_json(json.dumps(config))


def test_fixtures_cover_every_layer_in_both_flavours():
    for flavour in FLAVOURS:
        found = {l["class_name"] for c in kf.cases(flavour) if "json" in c["files"]
                 for l in layers_of(config_of(flavour, c["name"]))}
        assert AROUND_CLASSES <= found, (flavour, AROUND_CLASSES - found)


# -- bad configs -----------------------------------------------------------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("changes,error,pattern", [
    ({"padding": "full"}, fastlstm.UnsupportedConfigError,
     r"'conv1d' \(Conv1D\): padding must be one of \['valid', 'same', 'causal'\], got 'full'"),
    ({"kernel_size": [3, 3]}, fastlstm.ModelFormatError, r"kernel_size must be one integer"),
    ({"kernel_size": 0}, fastlstm.ModelFormatError, r"kernel_size=0 is outside"),
    ({"filters": 10 ** 9}, fastlstm.ModelFormatError, r"filters=1000000000 is outside"),
    ({"strides": 2}, fastlstm.ModelFormatError, r"strides=2 with dilation_rate=2"),
    ({"groups": 4}, fastlstm.ModelFormatError, r"filters=6 is not divisible by groups=4"),
    ({"groups": 2}, fastlstm.ModelFormatError, r"3 input channels are not divisible by groups=2"),
    ({"data_format": "channels_middle"}, fastlstm.UnsupportedConfigError, r"data_format must be"),
    ({"lora_rank": 4}, fastlstm.UnsupportedConfigError, r"lora_rank"),
])
def test_conv1d_bad_configs(flavour, changes, error, pattern):
    with pytest.raises(error, match=pattern):
        build_changed(flavour, "conv1d_causal_dilated", "conv1d", **changes)


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("changes,pattern", [
    ({"padding": "causal"}, r"'max_pooling1d' \(MaxPooling1D\): padding must be one of "
                            r"\['valid', 'same'\], got 'causal'"),
    ({"pool_size": [20]}, r"'max_pooling1d' \(MaxPooling1D\): 12 steps are fewer than "
                          r"pool_size=20"),
    ({"strides": [0]}, r"strides=0 is outside"),
])
def test_pooling_bad_configs(flavour, changes, pattern):
    with pytest.raises(ValueError, match=pattern):
        build_changed(flavour, "conv1d_causal_dilated", "max_pooling1d", **changes)


def test_kernel_of_the_wrong_shape_in_the_weights_file(tmp_path):
    """The file's kernel disagrees with kernel_size: refused with the layer and both shapes."""
    for flavour, member in (("keras2", "conv1d/conv1d/kernel:0"),
                            ("keras3", "layers/conv1d/vars/0")):
        case = kf.case(flavour, "conv1d_causal_dilated")
        weights = tmp_path / f"{flavour}-{case['files']['weights'].rsplit('/', 1)[-1]}"
        shutil.copy(kf.path(case["files"]["weights"]), weights)
        with h5py.File(weights, "r+") as f:
            assert f[member].shape == (3, 3, 6)
            del f[member]
            f[member] = np.zeros((2, 3, 6), np.float32)
        with open(kf.path(case["files"]["json"])) as f:
            model = fastlstm.model_from_json(f.read())
        with pytest.raises(fastlstm.ModelFormatError,
                           match=r"'conv1d'.*\(2, 3, 6\).*expected \(3, 3, 6\)"):
            model.load_weights(weights)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_normalization_axis_errors(flavour):
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'batch_normalization' \(BatchNormalization\): axis 3 is out of "
                             r"range for input shape \(None, 7, 6\)"):
        build_changed(flavour, "norm_stack", "batch_normalization", axis=3)
    with pytest.raises(fastlstm.ModelFormatError, match=r"repeated axis in \[1, -2\]"):
        build_changed(flavour, "norm_stack", "layer_normalization", axis=[1, -2])
    with pytest.raises(fastlstm.ModelFormatError, match=r"axis must be an integer or"):
        build_changed(flavour, "norm_stack", "layer_normalization", axis="last")
    with pytest.raises(fastlstm.ModelFormatError, match=r"epsilon must be a non-negative"):
        build_changed(flavour, "norm_stack", "batch_normalization", epsilon="small")
    with pytest.raises(fastlstm.UnsupportedConfigError, match=r"virtual_batch_size"):
        build_changed(flavour, "norm_stack", "batch_normalization", virtual_batch_size=2)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_normalizing_an_axis_of_unknown_size_is_refused(flavour):
    config = copy.deepcopy(config_of(flavour, "norm_stack"))
    layer_config(config, "layer_normalization")["config"]["axis"] = 1
    for layer in layers_of(config):
        if layer["class_name"] == "InputLayer":
            key = "batch_shape" if "batch_shape" in layer["config"] else "batch_input_shape"
            layer["config"][key] = [None, None, 3]
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'layer_normalization'.*axis 1 of input shape \(None, None, 6\) "
                             r"must be known"):
        fastlstm.model_from_json(json.dumps(config))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_merges_of_incompatible_shapes_are_refused(flavour):
    config = copy.deepcopy(config_of(flavour, "merge_unknown_dims"))
    g = layer_config(config, "g")["config"]
    key = "batch_shape" if "batch_shape" in g else "batch_input_shape"
    g[key] = [None, 6, 2]
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'multiply' \(Multiply\): inputs of shapes \[\(None, 6, 2\), "
                             r"\(None, None, 4\)\] cannot be combined element-wise"):
        fastlstm.model_from_json(json.dumps(config))
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'concatenate_1' \(Concatenate\) needs inputs equal on every axis "
                             r"but axis 1"):
        build_changed(flavour, "merge_unknown_dims", "concatenate_1", axis=1)
    with pytest.raises(fastlstm.ModelFormatError, match=r"axis=3 needs inputs of one rank"):
        build_changed(flavour, "merge_unknown_dims", "concatenate", axis=3)
    with pytest.raises(fastlstm.UnsupportedConfigError, match=r"batch axis \(axis=0\)"):
        build_changed(flavour, "merge_unknown_dims", "concatenate", axis=0)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_subtract_takes_exactly_two_inputs(flavour):
    config = copy.deepcopy(config_of(flavour, "merge_branches"))
    node = layer_config(config, "subtract")["inbound_nodes"][0]
    if isinstance(node, dict):          # Keras 3: {"args": [[a, b]], "kwargs": {}}
        node["args"][0].append(node["args"][0][0])
    else:                               # Keras 2: [[a, 0, 0, {}], [b, 0, 0, {}]]
        node.append(node[0])
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'subtract' \(Subtract\) takes exactly 2 inputs, got 3"):
        fastlstm.model_from_json(json.dumps(config))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_permute_bad_dims(flavour):
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'permute' \(Permute\): dims must be a permutation of 1..n"):
        build_changed(flavour, "permute_keepdims", "permute", dims=[1, 3])
    with pytest.raises(fastlstm.ModelFormatError, match=r"needs input of rank 4"):
        build_changed(flavour, "permute_keepdims", "permute", dims=[3, 1, 2])


def test_too_few_steps_at_run_time():
    """A variable-length model fed fewer steps than a valid window needs: a ValueError naming
    the layer (Keras fails too), not a crash or an empty output."""
    model = kf.load(kf.case("keras3", "conv1d_valid_pooling"), "keras")
    with pytest.raises(ValueError, match=r"'conv1d' \(Conv1D\).*too few steps"):
        model.predict(np.zeros((1, 1, 3), np.float32))


# -- behaviour -------------------------------------------------------------------------------

def test_merge_output_shapes_follow_each_keras():
    """An axis known in one input only (a (None,4) + b (6,4)): Keras 3's compute_output_shape
    records it unknown, tf_keras's traced TensorFlow op known; fastlstm builds each file as its
    Keras did (test_models checks every layer, this names the difference)."""
    shapes = {}
    for flavour in FLAVOURS:
        case = kf.case(flavour, "merge_unknown_dims")
        rows = {r["name"]: r["output_shapes"][0] for r in kf.load(case, "h5").summary_rows()}
        shapes[flavour] = (rows["add"], rows["multiply"], rows["concatenate"])
    assert shapes["keras3"] == ((None, None, 4), (None, None, 4), (None, None, 8))
    assert shapes["keras2"] == ((None, 6, 4), (None, 6, 4), (None, 6, 8))


def test_keras3_h5_that_keras3_cannot_reload():
    """Keras 3.15 cannot load its own model.h5 of LayerNormalization(axis=[1, 2]) (it builds a
    (6,) gamma for the saved (5, 6) one); fastlstm reads it and reproduces the predictions Keras
    made before saving."""
    case = kf.case("keras3", "layernorm_axes")
    with h5py.File(kf.path(case["files"]["h5"])) as f:
        group = f["model_weights/layer_normalization"]
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
        assert group[names[0]].shape == (5, 6)
    kf.replay(kf.load(case, "h5"), case)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_frozen_layers_order_nested_weights(flavour):
    """A frozen nested model lists its weights layer by layer, all non-trainable; a frozen
    BatchNormalization inside a trainable one moves gamma/beta behind the trainable weights."""
    case = kf.case(flavour, "nested_frozen")
    model = kf.load(case, "h5")
    assert model.layers["frozen_base"].n_trainable_weights() == 0
    partly = model.layers["partly_frozen"]
    assert partly.n_trainable_weights() == 2 + 3   # Dense kernel/bias, LSTM's three
    kf.replay(model, case)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_batchnorm_renorm_and_partial_affine_weights(flavour):
    """renorm adds three non-trainable weights; center/scale off drop beta/gamma."""
    model = kf.load(kf.case(flavour, "batchnorm_options"), "h5")
    counts = {name: (layer.n_trainable_weights(), len(layer.weight_shapes()))
              for name, layer in model.layers.items()
              if type(layer).__name__ == "BatchNormalization"}
    assert sorted(counts.values()) == [(0, 2), (1, 3), (1, 6), (2, 4)]
