"""Keras 1 files and Keras 2 CuDNN layers beyond the replays of test_formats.py (which runs every
keras1/keras1_json/cudnn/cudnn_legacy/cudnn_weights file against Keras 2's recorded outputs):
clear errors for damaged Keras 1 weights and configs, the conversions in both directions Keras
performs, and structure as Keras reports it."""
import json
import pickle
import shutil

import h5py
import numpy as np
import pytest

import fastlstm
import keras_fixtures as kf
from fastlstm.io import cudnn_weights, keras1_config
from fastlstm.layers import LAYER_CLASSES

LEGACY_CASES = [c for c in kf.cases("keras2") if "keras1" in c["files"] or "cudnn" in c["files"]]


def _copy(case, key, tmp_path):
    target = tmp_path / f"{case['name']}-{key}.h5"
    shutil.copy(kf.path(case["files"][key]), target)
    return target


def _keras1_lstm_group(f):
    g = f["model_weights"]["lstm_1"]
    return g, [n.decode() for n in g.attrs["weight_names"]]


def _set_weight_names(g, names):
    g.attrs["weight_names"] = np.array([n.encode() for n in names],
                                       dtype=f"S{max(map(len, names))}")


def _edit_config(path, edit):
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        edit(config)
        f.attrs["model_config"] = np.bytes_(json.dumps(config))


# -- Keras 1: damaged weights --------------------------------------------------------------------

def test_keras1_file_missing_a_per_gate_dataset_names_layer_and_gate(tmp_path):
    path = _copy(kf.case("keras2", "keras1_lstm"), "keras1", tmp_path)
    with h5py.File(path, "r+") as f:
        g, names = _keras1_lstm_group(f)
        assert len(names) == 12 and names[7] == "lstm_1_U_f"
        del g["lstm_1_U_f"]
        _set_weight_names(g, names[:7] + names[8:])
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'lstm_1' \(LSTM\) in a Keras 1 file: expected .*12 arrays.*"
                             r"3 arrays \[W, U, b\].*the file has 11.*missing: U_f"):
        fastlstm.load_model(path)


def test_keras1_weight_listed_but_absent_names_layer_and_weight(tmp_path):
    path = _copy(kf.case("keras2", "keras1_lstm"), "keras1", tmp_path)
    with h5py.File(path, "r+") as f:
        del f["model_weights"]["lstm_1"]["lstm_1_b_o"]
    with pytest.raises(fastlstm.ModelFormatError, match="'lstm_1' lists weight 'lstm_1_b_o'"):
        fastlstm.load_model(path)


@pytest.mark.parametrize("name,fmt,group,dataset,data,message", [
    ("keras1_lstm", "keras1", "lstm_1", "lstm_1_W_c", np.zeros((3, 4), np.float32),
     r"'lstm_1' \(LSTM\) in a Keras 1 file: per-gate weight 'lstm_1_W_c' \(W_c\) has shape "
     r"\(3, 4\), expected \(3, 5\)"),
    ("keras1_gru_simplernn", "keras1", "gru_1", "gru_1_U_h:0", np.zeros((6, 5), np.float32),
     r"'gru_1' \(GRU\).*'gru_1_U_h:0' \(U_h\) has shape \(6, 5\), expected \(6, 6\)"),
    ("keras1_lstm", "keras1", "lstm_1", "lstm_1_b_f", np.zeros(5, np.complex64),
     r"'lstm_1_b_f' of layer 'lstm_1' has dtype complex64 and shape \(5,\); expected a numeric "
     r"weight array"),
    ("cudnn_lstm", "cudnn", "cu_dnnlstm/cu_dnnlstm", "bias:0", np.zeros(30, np.float32),
     r"'cu_dnnlstm' \(CuDNNLSTM\) weight 2 has shape \(30,\) in the file, expected \(40,\)"),
], ids=["keras1-inconsistent-gate", "keras1-gru-gate", "keras1-complex-gate", "cudnn-bias"])
def test_bad_weight_array_names_layer_weight_and_expectation(tmp_path, name, fmt, group, dataset,
                                                              data, message):
    path = _copy(kf.case("keras2", name), fmt, tmp_path)
    with h5py.File(path, "r+") as f:
        g = f["model_weights"][group]
        assert g[dataset].shape != data.shape or g[dataset].dtype != data.dtype
        del g[dataset]
        g.create_dataset(dataset, data=data)
    with pytest.raises(fastlstm.ModelFormatError, match=message):
        fastlstm.load_model(path)


def test_keras1_weights_file_for_json_model_is_checked_too(tmp_path):
    case = kf.case("keras2", "keras1_lstm")
    path = _copy(case, "keras1_weights", tmp_path)
    with h5py.File(path, "r+") as f:
        g = f["lstm_1"]
        names = [n.decode() for n in g.attrs["weight_names"]]
        _set_weight_names(g, names[:-1])
    with open(kf.path(case["files"]["keras1_json"])) as f:
        model = fastlstm.model_from_json(f.read())
    with pytest.raises(fastlstm.ModelFormatError, match=r"the file has 11.*missing: b_o$"):
        model.load_weights(path)


# -- Keras 1: configs ----------------------------------------------------------------------------

@pytest.mark.parametrize("edit,message", [
    ({"consume_less": "fast"}, r"'lstm_1': consume_less='fast' is not a Keras 1 mode; expected "
                               r"one of \['cpu', 'gpu', 'mem'\]"),
    ({"units": 5}, r"'lstm_1' \(LSTM\) has both the Keras 1 key 'output_dim' and the Keras 2 "
                   r"key 'units'"),
], ids=["unknown-consume_less", "old-and-new-key"])
def test_bad_keras1_config_is_refused(tmp_path, edit, message):
    path = _copy(kf.case("keras2", "keras1_lstm"), "keras1", tmp_path)
    _edit_config(path, lambda c: c["config"][0]["config"].update(edit))
    with pytest.raises(fastlstm.ModelFormatError, match=message):
        fastlstm.load_model(path)


def test_keras1_file_without_any_version_loads(tmp_path):
    """Keras 2 reads a file without keras_version as Keras 1 (hdf5_format: "1")."""
    case = kf.case("keras2", "keras1_stateful")
    path = _copy(case, "keras1", tmp_path)
    with h5py.File(path, "r+") as f:
        del f.attrs["keras_version"]
    model = fastlstm.load_model(path)
    assert model.ctx.keras_major == 1
    kf.replay(model, case)


def test_keras1_configs_become_keras2_ones():
    converted = keras1_config.convert_layer_config("LSTM", {
        "name": "lstm_1", "output_dim": 4, "inner_activation": "hard_sigmoid",
        "consume_less": "gpu", "forget_bias_init": "one", "input_dim": 3, "input_length": 7,
        "dropout_W": 0.1, "dropout_U": 0.2, "init": "glorot_uniform", "input_dtype": "float32"},
        LAYER_CLASSES)
    assert converted == {"name": "lstm_1", "units": 4, "recurrent_activation": "hard_sigmoid",
                         "implementation": 2, "unit_forget_bias": True,
                         "batch_input_shape": [None, 7, 3], "dropout": 0.1,
                         "recurrent_dropout": 0.2, "kernel_initializer": "glorot_uniform",
                         "dtype": "float32"}
    gru = keras1_config.convert_layer_config("GRU", {"name": "g", "output_dim": 2}, LAYER_CLASSES)
    assert gru == {"name": "g", "units": 2, "reset_after": False}
    dense = keras1_config.convert_layer_config("Dense", {"name": "d", "output_dim": 2,
                                                         "bias": False, "input_dim": 5},
                                               LAYER_CLASSES)
    assert dense == {"name": "d", "units": 2, "use_bias": False, "batch_input_shape": [None, 5]}
    assert keras1_config.convert_layer_config("Dropout", {"name": "x", "p": 0.5},
                                              LAYER_CLASSES) == \
        {"name": "x", "rate": 0.5}
    embedding = keras1_config.convert_layer_config("Embedding", {
        "name": "e", "input_dim": 10, "output_dim": 3, "init": "uniform", "dropout": 0.0,
        "batch_input_shape": [None, 7]}, LAYER_CLASSES)
    assert embedding == {"name": "e", "input_dim": 10, "output_dim": 3,
                         "embeddings_initializer": "uniform", "batch_input_shape": [None, 7]}


@pytest.mark.parametrize("case", [pytest.param(c, id=c["name"]) for c in kf.cases("keras2")])
def test_keras2_configs_pass_the_keras1_conversion_unchanged(case):
    with h5py.File(kf.path(case["files"]["h5"])) as f:
        config = json.loads(f.attrs["model_config"])
    assert keras1_config.convert_model_config(config, LAYER_CLASSES) == config


@pytest.mark.parametrize("name", [c["name"] for c in LEGACY_CASES if "keras1" in c["files"]])
def test_keras1_models_have_keras_parameter_counts(name):
    case = kf.case("keras2", name)
    model = kf.load(case, "keras1")
    assert model.count_params() == case["summary"]["total_params"]
    assert [r["params"] for r in model.summary_rows() if r["class"] != "InputLayer"] == \
        [e["params"] for e in case["summary"]["layers"] if e["class"] != "InputLayer"]


# -- CuDNN ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [c["name"] for c in LEGACY_CASES if "cudnn" in c["files"]])
def test_cudnn_summary_matches_keras(name):
    """Classes, names, output shapes and parameter counts (the 8u / 6u biases) as tf_keras
    summarised the CuDNN model."""
    case = kf.case("keras2", name)
    expected = case["cudnn_summary"]
    model = kf.load(case, "cudnn")
    rows = model.summary_rows()
    assert [(r["name"], r["class"], r["params"]) for r in rows] == \
        [(e["name"], e["class"], e["params"]) for e in expected["layers"]]
    for row, exp in zip(rows, expected["layers"]):
        assert row["output_shapes"] == [tuple(s) for s in exp["output_shapes"]]
    assert model.count_params() == expected["total_params"]


@pytest.mark.parametrize("name", [c["name"] for c in LEGACY_CASES if "cudnn" in c["files"]])
def test_plain_weights_load_into_cudnn_model(name):
    """The other direction of tf_keras's _convert_rnn_weights: LSTM/GRU(reset_after=True)
    weights into the CuDNN model (weights.h5 of the Keras 2 model)."""
    case = kf.case("keras2", name)
    with h5py.File(kf.path(case["files"]["cudnn"])) as f:
        config = f.attrs["model_config"]
    model = fastlstm.model_from_json(config)
    model.load_weights(kf.path(case["files"]["weights"]))
    kf.replay(model, case)


def test_cudnn_gru_weights_do_not_fit_reset_before_gru():
    case = kf.case("keras2", "cudnn_gru")
    with open(kf.path(case["files"]["json"])) as f:
        config = json.load(f)
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "GRU":
            layer["config"]["reset_after"] = False
    model = fastlstm.model_from_json(json.dumps(config))
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"\(GRU\(reset_after=False\)\): the file holds CuDNNGRU weights "
                             r"\(bias shape \(30,\)\), which do not fit"):
        model.load_weights(kf.path(case["files"]["cudnn_weights"]))


def test_cudnn_layouts_convert_back_and_forth():
    case = kf.case("keras2", "cudnn_functional")
    model = kf.load(case, "cudnn")
    for layer, to_keras, to_cudnn in (
            (model.layers["cu_dnnlstm"], cudnn_weights.lstm_from_cudnn,
             cudnn_weights.lstm_to_cudnn),
            (model.layers["cu_dnngru"], cudnn_weights.gru_from_cudnn,
             cudnn_weights.gru_to_cudnn)):
        cudnn = layer.weights
        keras = to_keras(cudnn)
        back = to_cudnn(keras)
        for a, b in zip(back[:2], cudnn[:2]):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(to_keras(back)[2], keras[2])


@pytest.mark.parametrize("name,fmt", [("cudnn_lstm_stateful", "cudnn"),
                                      ("keras1_stateful", "keras1"), ("cudnn_gru", "cudnn_legacy")])
def test_legacy_models_pickle(name, fmt):
    case = kf.case("keras2", name)
    model = kf.load(case, fmt)
    kf.replay(pickle.loads(pickle.dumps(model)), case)


# -- Keras 1: Convolution1D, pooling, BatchNormalization, Merge ------------------------------

def _keras1_layer(config, class_name, n=0):
    layers = config["config"] if isinstance(config["config"], list) else config["config"]["layers"]
    return [l for l in layers if l["class_name"] == class_name][n]


def test_keras1_conv_pool_bn_configs_become_keras2_ones():
    converted = keras1_config.convert_layer({"class_name": "Convolution1D", "config": {
        "name": "c", "nb_filter": 4, "filter_length": 3, "border_mode": "same",
        "subsample_length": 2, "init": "glorot_uniform", "W_regularizer": None, "bias": False,
        "input_dim": 3, "input_length": None}}, LAYER_CLASSES)
    assert converted == {"class_name": "Conv1D", "config": {
        "name": "c", "filters": 4, "kernel_size": 3, "padding": "same", "strides": 2,
        "kernel_initializer": "glorot_uniform", "kernel_regularizer": None, "use_bias": False,
        "batch_input_shape": [None, None, 3]}}
    pool = keras1_config.convert_layer_config("MaxPooling1D", {
        "name": "p", "pool_length": 3, "stride": None, "border_mode": "valid"}, LAYER_CLASSES)
    assert pool == {"name": "p", "pool_size": 3, "strides": None, "padding": "valid"}
    bn = keras1_config.convert_layer_config("BatchNormalization", {
        "name": "b", "mode": 0, "epsilon": 0.01, "axis": -1, "momentum": 0.9,
        "gamma_regularizer": None, "beta_init": "zero"}, LAYER_CLASSES)
    assert bn == {"name": "b", "epsilon": 0.01, "axis": -1, "momentum": 0.9,
                  "gamma_regularizer": None, "beta_initializer": "zero"}


@pytest.mark.parametrize("mode,concat_axis,expected", [
    ("sum", -1, ("Add", {})), ("mul", -1, ("Multiply", {})), ("ave", -1, ("Average", {})),
    ("max", -1, ("Maximum", {})), ("concat", 1, ("Concatenate", {"axis": 1}))])
def test_keras1_merge_modes_become_keras2_merge_layers(mode, concat_axis, expected):
    converted = keras1_config.convert_layer({"class_name": "Merge", "config": {
        "name": "merge_1", "mode": mode, "mode_type": "raw", "concat_axis": concat_axis,
        "dot_axes": -1, "output_shape": None, "output_shape_type": "raw", "output_mask": None,
        "output_mask_type": "raw", "arguments": {}}, "inbound_nodes": []}, LAYER_CLASSES)
    assert converted["class_name"] == expected[0]
    assert converted["config"] == {"name": "merge_1", **expected[1]}


@pytest.mark.parametrize("edit,message", [
    ({"mode": "dot"}, r"'merge_1' \(Keras 1 Merge\): mode 'dot' is not supported; supported "
                      r"modes: \['ave', 'concat', 'max', 'mul', 'sum'\]"),
    ({"mode": "cos"}, r"mode 'cos' is not supported"),
    ({"mode": ["gASV...", None, None], "mode_type": "lambda"},
     r"mode a Python function is not supported.*never run from a file"),
    ({"output_shape": [None, 4]}, r"a custom output_shape is not supported"),
    ({"layers": [{"class_name": "Sequential", "config": []}]},
     r"a Keras 1 Merge of models \(Sequential branches\) is not supported"),
], ids=["dot", "cos", "lambda", "output_shape", "merge-of-models"])
def test_unsupported_keras1_merges_are_refused(tmp_path, edit, message):
    path = _copy(kf.case("keras2", "keras1_conv_functional_merge"), "keras1", tmp_path)
    _edit_config(path, lambda c: _keras1_layer(c, "Merge")["config"].update(edit))
    with pytest.raises(fastlstm.UnsupportedConfigError, match=message):
        fastlstm.load_model(path)


@pytest.mark.parametrize("mode", [1, 2])
def test_keras1_batchnorm_modes_other_than_0_are_refused(tmp_path, mode):
    path = _copy(kf.case("keras2", "keras1_conv_pool_bn"), "keras1", tmp_path)
    _edit_config(path, lambda c: _keras1_layer(c, "BatchNormalization")["config"].update(
        mode=mode))
    with pytest.raises(fastlstm.UnsupportedConfigError,
                       match=rf"'batchnormalization_1' \(BatchNormalization\): Keras 1 "
                             rf"mode={mode} is not supported"):
        fastlstm.load_model(path)


def test_keras1_conv1d_kernel_of_another_shape_is_refused(tmp_path):
    path = _copy(kf.case("keras2", "keras1_conv_pool_bn"), "keras1", tmp_path)
    with h5py.File(path, "r+") as f:
        g = f["model_weights"]["convolution1d_1"]
        name = next(n.decode() for n in g.attrs["weight_names"] if "_W" in n.decode())
        kernel = g[name][()]
        assert kernel.shape == (3, 1, 3, 6)
        del g[name]
        g[name] = kernel.reshape(1, 3, 3, 6)
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'convolution1d_1' \(Conv1D\) in a Keras 1 file: kernel has shape "
                             r"\(1, 3, 3, 6\), expected Keras 1.2's \(3, 1, 3, 6\) or Keras "
                             r"1.1's \(6, 3, 3, 1\)"):
        fastlstm.load_model(path)


def test_keras1_conv_layouts_both_give_keras_outputs():
    """keras1_conv_pool_bn saves Keras 1.2's (length, 1, in, filters) kernels,
    keras1_conv_functional_merge Keras 1.1's (filters, in, length, 1); both replay Keras 2."""
    shapes = {}
    for name in ("keras1_conv_pool_bn", "keras1_conv_functional_merge"):
        case = kf.case("keras2", name)
        with h5py.File(kf.path(case["files"]["keras1"])) as f:
            g = f["model_weights"]["convolution1d_1"]
            shapes[name] = [g[n.decode()].shape for n in g.attrs["weight_names"]][0]
        kf.replay(kf.load(case, "keras1"), case)
    assert shapes == {"keras1_conv_pool_bn": (3, 1, 3, 6),
                      "keras1_conv_functional_merge": (4, 3, 3, 1)}


def test_keras1_training_only_layer_keys():
    """keras/legacy/interfaces.py 2.2.4: SpatialDropout1D/GaussianDropout p -> rate,
    SpatialDropout2D/3D also dim_ordering -> data_format, GaussianNoise sigma -> stddev."""
    convert = keras1_config.convert_layer_config
    assert convert("SpatialDropout1D", {"name": "s", "p": 0.2}, LAYER_CLASSES) == \
        {"name": "s", "rate": 0.2}
    assert convert("SpatialDropout2D", {"name": "s", "p": 0.2, "dim_ordering": "th"},
                   LAYER_CLASSES) == {"name": "s", "rate": 0.2, "data_format": "channels_first"}
    assert convert("SpatialDropout3D", {"name": "s", "p": 0.1, "dim_ordering": "default"},
                   LAYER_CLASSES) == {"name": "s", "rate": 0.1, "data_format": None}
    assert convert("GaussianNoise", {"name": "g", "sigma": 0.3}, LAYER_CLASSES) == \
        {"name": "g", "stddev": 0.3}
    assert convert("GaussianDropout", {"name": "g", "p": 0.3}, LAYER_CLASSES) == \
        {"name": "g", "rate": 0.3}
