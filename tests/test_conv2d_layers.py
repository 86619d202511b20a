"""Conv2D, MaxPooling2D/3D, AveragePooling2D, GlobalAveragePooling2D/GlobalMaxPooling2D,
ZeroPadding1D/2D, Cropping1D and UpSampling1D: what the format replays (test_formats.py) do not
show. Bad configs are Keras-written fixture configs (tests/fixtures/cases_conv2d.py) with one
entry changed; expected values are Keras's recordings."""
import copy
import json
import tracemalloc

import keras_fixtures as kf
import numpy as np
import pytest

import fastlstm
from fastlstm import budget
from fastlstm.layers import conv_ops, pooling

FLAVOURS = ["keras2", "keras3"]
CONV2D_CLASSES = {
    "Conv2D", "MaxPooling2D", "AveragePooling2D", "MaxPooling3D", "AveragePooling3D",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding1D", "ZeroPadding2D",
    "Cropping1D", "UpSampling1D"}


def config_of(flavour, name):
    with open(kf.path(kf.case(flavour, name)["files"]["json"])) as f:
        return json.load(f)


def layer_config(config, name):
    return next(l for l in config["config"]["layers"] if l["config"].get("name") == name)


def build_changed(flavour, case_name, layer_name, **changes):
    """model_from_json of the case's Keras config with some entries of one layer changed."""
    config = copy.deepcopy(config_of(flavour, case_name))
    layer_config(config, layer_name)["config"].update(changes)
    return fastlstm.model_from_json(json.dumps(config))


def build_with_input(flavour, case_name, shape):
    """The case's config with its input declared as (None, *shape)."""
    config = copy.deepcopy(config_of(flavour, case_name))
    inp = next(l for l in config["config"]["layers"] if l["class_name"] == "InputLayer")
    key = "batch_shape" if "batch_shape" in inp["config"] else "batch_input_shape"
    inp["config"][key] = [None, *shape]
    return fastlstm.model_from_json(json.dumps(config))


CASES = ["conv2d_spectrogram", "conv2d_options", "conv2d_channels_first", "maxpool3d_frames",
         "avgpool3d_frames", "padding1d_around_conv", "zeropadding2d_frames", "padding1d_mask_dropped"]


def test_fixtures_cover_every_layer_in_both_flavours():
    for flavour in FLAVOURS:
        found = {l["class_name"] for name in CASES
                 for l in config_of(flavour, name)["config"]["layers"]}
        assert CONV2D_CLASSES <= found, (flavour, CONV2D_CLASSES - found)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_spectrogram_front_end_reproduces_keras(flavour):
    """Shapes of every layer as Keras builds them, and the recorded predictions."""
    case = kf.case(flavour, "conv2d_spectrogram")
    model = kf.load(case, "h5")
    shapes = {layer.name: layer.output_shapes[0] for layer in model.layers.values()}
    assert shapes["conv2d"] == (None, 12, 8, 4)
    assert shapes["max_pooling2d"] == (None, 12, 4, 4)
    assert shapes["conv2d_1"] == (None, 10, 1, 4)
    assert shapes["reshape"] == (None, 10, 4)
    assert kf.replay(model, case) == 2


# -- bad configs -----------------------------------------------------------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("changes,error,pattern", [
    ({"kernel_size": [3]}, fastlstm.ModelFormatError,
     r"'conv2d_1' \(Conv2D\): kernel_size must be an integer or 2 integers, got \[3\]"),
    ({"kernel_size": [3, 3, 3]}, fastlstm.ModelFormatError,
     r"kernel_size must be an integer or 2 integers, got \[3, 3, 3\]"),
    ({"kernel_size": [3, 0]}, fastlstm.ModelFormatError, r"kernel_size=0 is outside"),
    ({"kernel_size": 10 ** 9}, fastlstm.ModelFormatError, r"kernel_size=1000000000 is outside"),
    ({"kernel_size": "3x3"}, fastlstm.ModelFormatError, r"kernel_size must be an integer"),
    ({"kernel_size": [300, 300]}, fastlstm.ModelFormatError,
     r"kernel_size=\(300, 300\) has 90000 taps, above fastlstm's bound of 65536"),
    ({"kernel_size": [3, 5]}, fastlstm.ModelFormatError,
     r"'conv2d_1' \(Conv2D\): spatial shape \(12, 4\) is too small for kernel_size=\(3, 5\)"),
    ({"padding": "causal"}, fastlstm.UnsupportedConfigError,
     r"'conv2d_1' \(Conv2D\): padding must be one of \['valid', 'same'\], got 'causal'"),
    ({"data_format": "channels_middle"}, fastlstm.UnsupportedConfigError,
     r"data_format must be 'channels_last' or 'channels_first', got 'channels_middle'"),
    ({"dilation_rate": [1, 2]}, fastlstm.ModelFormatError,
     r"strides=\(1, 2\) with dilation_rate=\(1, 2\); Keras allows only one"),
    ({"strides": [0, 1]}, fastlstm.ModelFormatError, r"strides=0 is outside"),
    ({"groups": 3}, fastlstm.ModelFormatError, r"filters=4 is not divisible by groups=3"),
    ({"lora_rank": 2}, fastlstm.UnsupportedConfigError, r"lora_rank is not supported"),
    ({"activation": "glu", "filters": 3}, fastlstm.ModelFormatError,
     r"glu needs an even last axis, the output shape is \(None, 10, 1, 3\)"),
])
def test_conv2d_bad_configs(flavour, changes, error, pattern):
    with pytest.raises(error, match=pattern):
        build_changed(flavour, "conv2d_spectrogram", "conv2d_1", **changes)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_grouped_channels_must_divide(flavour):
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'conv2d' \(Conv2D\): 1 input channels are not divisible by "
                             r"groups=2"):
        build_changed(flavour, "conv2d_spectrogram", "conv2d", groups=2)


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("layer,changes,pattern", [
    ("max_pooling2d", {"pool_size": [2, 2, 2]},
     r"'max_pooling2d' \(MaxPooling2D\): pool_size must be an integer or 2 integers"),
    ("max_pooling2d", {"pool_size": [1, 9]},
     (r"'max_pooling2d' \(MaxPooling2D\): spatial shape \(12, 8\) is smaller than "
      r"pool_size=\(1, 9\)")),
    ("max_pooling2d", {"strides": [1, 0]}, r"strides=0 is outside"),
    ("max_pooling2d", {"padding": "causal"}, r"padding must be one of \['valid', 'same'\]"),
    ("max_pooling2d", {"data_format": 3}, r"data_format must be"),
    ("max_pooling2d", {"pool_size": 10 ** 6}, r"pool_size=1000000 is outside"),
])
def test_pooling2d_bad_configs(flavour, layer, changes, pattern):
    with pytest.raises(ValueError, match=pattern):
        build_changed(flavour, "conv2d_spectrogram", layer, **changes)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_pooling3d_and_global_pooling_bad_configs(flavour):
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'max_pooling3d' \(MaxPooling3D\): pool_size must be an integer or "
                             r"3 integers, got \[1, 2\]"):
        build_changed(flavour, "maxpool3d_frames", "max_pooling3d", pool_size=[1, 2])
    with pytest.raises(fastlstm.ModelFormatError, match=r"spatial shape \(4, 6, 6\) is smaller "
                                                        r"than pool_size=\(5, 1, 1\)"):
        build_changed(flavour, "maxpool3d_frames", "max_pooling3d", pool_size=[5, 1, 1],
                      strides=[1, 1, 1])
    with pytest.raises(fastlstm.UnsupportedConfigError, match=r"data_format must be"):
        build_changed(flavour, "conv2d_options", "global_max_pooling2d", data_format="NHWC")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_inputs_of_the_wrong_rank_are_refused(flavour):
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'conv2d' \(Conv2D\) needs 4-D input \(batch, 2 spatial axes, "
                             r"channels\), got shape \(None, 12, 8\)"):
        build_with_input(flavour, "conv2d_spectrogram", (12, 8))
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'max_pooling3d(_1)?' \(MaxPooling3D\) needs 5-D input"):
        build_with_input(flavour, "maxpool3d_frames", (4, 6, 6))
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'zero_padding2d' \(ZeroPadding2D\) needs 4-D input"):
        build_with_input(flavour, "zeropadding2d_frames", (5, 4, 2, 1))
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'zero_padding1d' \(ZeroPadding1D\) needs 3-D input"):
        build_with_input(flavour, "padding1d_around_conv", (6, 3, 1))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_conv2d_needs_a_known_channel_axis(flavour):
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'conv2d' \(Conv2D\): the channel axis of input shape "
                             r"\(None, 12, 8, None\) must be known"):
        build_with_input(flavour, "conv2d_spectrogram", (12, 8, None))
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'conv2d' \(Conv2D\): the channel axis of input shape "
                             r"\(None, None, 9, 6\) must be known"):
        build_with_input(flavour, "conv2d_channels_first", (None, 9, 6))


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("layer,changes,pattern", [
    ("cropping1d", {"cropping": [20, 0]},
     r"'cropping1d' \(Cropping1D\): cropping=\(20, 0\) leaves nothing of 7 steps"),
    ("cropping1d", {"cropping": [1, 2, 3]}, r"cropping must be an integer or 2 integers"),
    ("cropping1d", {"cropping": -1}, r"cropping=-1 is outside the supported range \[0, 65536\]"),
    ("zero_padding1d", {"padding": [1, 2, 3]}, r"padding must be an integer or 2 integers"),
    ("zero_padding1d", {"padding": 10 ** 7}, r"padding=10000000 is outside"),
    ("zero_padding1d", {"data_format": "steps_first"}, r"data_format must be"),
    ("up_sampling1d", {"size": 0}, r"'up_sampling1d': size=0 is outside"),
    ("up_sampling1d", {"size": [2]}, r"'up_sampling1d': size must be an integer"),
    ("up_sampling1d", {"size": 10 ** 9}, r"size=1000000000 is outside"),
])
def test_padding1d_bad_configs(flavour, layer, changes, pattern):
    config = copy.deepcopy(config_of(flavour, "padding1d_around_conv"))
    inp = next(l for l in config["config"]["layers"] if l["class_name"] == "InputLayer")
    key = "batch_shape" if "batch_shape" in inp["config"] else "batch_input_shape"
    inp["config"][key] = [None, 6, 3]      # a known length: Cropping1D checks at build
    layer_config(config, layer)["config"].update(changes)
    with pytest.raises(ValueError, match=pattern):
        fastlstm.model_from_json(json.dumps(config))


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("padding,pattern", [
    ([1, 2, 3], (r"'zero_padding2d' \(ZeroPadding2D\): padding must be an integer, 2 integers "
                 r"or 2 pairs of integers")),
    ([[1, 2, 3], [0, 0]], r"padding\[0\] must be an integer or 2 integers"),
    ([[1, 2], [0, -1]], r"padding\[1\]=-1 is outside"),
    ([[1, 2], "wide"], r"padding\[1\] must be an integer"),
])
def test_zeropadding2d_bad_configs(flavour, padding, pattern):
    with pytest.raises(fastlstm.ModelFormatError, match=pattern):
        build_changed(flavour, "zeropadding2d_frames", "zero_padding2d", padding=padding)


# -- run time --------------------------------------------------------------------------------

def test_inputs_too_small_at_run_time_name_the_layer():
    """Variable-length models fed fewer steps than a layer needs: a ValueError naming the
    layer (Keras fails too), never a numpy traceback or an empty output."""
    model = kf.load(kf.case("keras3", "conv2d_options"), "keras")
    with pytest.raises(ValueError, match=r"'conv2d' \(Conv2D\): an input of \(1, 2, 7, 4\) is "
                                         r"too small for kernel_size=\(2, 3\)"):
        model.predict(np.zeros((1, 2, 7, 4), np.float32))
    with pytest.raises(ValueError, match=r"'average_pooling2d_1' \(AveragePooling2D\): an input "
                                         r"of shape \(1, 1, 3, 6\): spatial shape \(1, 3\) is "
                                         r"smaller than pool_size=\(2, 1\)"):
        model.predict(np.zeros((1, 3, 7, 4), np.float32))
    model = kf.load(kf.case("keras2", "padding1d_around_conv"), "h5")
    with pytest.raises(ValueError, match=r"'cropping1d' \(Cropping1D\): cropping=\(1, 2\) leaves "
                                         r"nothing of 2 steps"):
        model.predict(np.zeros((1, 1, 3), np.float32))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_variable_lengths_keep_their_unknown_axis(flavour):
    model = kf.load(kf.case(flavour, "padding1d_around_conv"), "h5")
    shapes = {layer.name: layer.output_shapes[0] for layer in model.layers.values()}
    assert shapes["zero_padding1d"] == (None, None, 3)
    assert shapes["cropping1d"] == (None, None, 4)
    assert shapes["up_sampling1d"] == (None, None, 4)
    # T=6: 6+3 -> conv 7 -> crop 4 -> x3 12 -> +2 14 -> crop 10 -> x2 20 steps into the LSTM.
    assert kf.replay(model, kf.case(flavour, "padding1d_around_conv")) == 2


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_masks_stop_at_padding_cropping_and_upsampling(flavour):
    """No compute_mask in either version's zero_padding1d.py, cropping1d.py, up_sampling1d.py:
    the Embedding's mask does not reach the LSTMs, which run over the padded ids as Keras
    recorded."""
    case = kf.case(flavour, "padding1d_mask_dropped")
    model = kf.load(case, "json")
    for name in ("zero_padding1d", "cropping1d", "up_sampling1d"):
        layer = model.layers[name]
        out = np.zeros((2, 6, 3), np.float32)
        assert layer.compute_mask([out], [np.ones((2, 6), bool)], [out]) == [None]
    d = kf.data(case)
    assert (d["call0_in0"] == 0).any()
    assert kf.replay(model, case, d) == 1


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_keras3_adds_a_channels_first_bias_along_a_last_axis_of_filters_steps(flavour):
    """Keras 3's TensorFlow ops.add makes the bias a bias_add in NHWC when the output's last
    axis has as many steps as there are filters (conv_ops.keras3_bias_on_last_axis): the first
    Conv2D of conv2d_channels_first (6 filters, output (6, 9, 6)) gets it along the width axis
    in the Keras 3 recording, along the channels in the tf_keras one; the second (6 filters,
    output (6, 4, 5)) along the channels in both."""
    case = kf.case(flavour, "conv2d_channels_first")
    model = kf.load(case, "h5")
    assert model.layers["conv2d"].output_shapes[0] == (None, 6, 9, 6)
    assert model.layers["conv2d"].bias_on_last_axis == (flavour == "keras3")
    assert model.layers["conv2d_1"].bias_on_last_axis is False
    assert kf.replay(model, case) == 2


def test_empty_batches_keep_their_shapes():
    """Zero rows through each layer (the models' Reshape(-1) is another layer's business)."""
    model = kf.load(kf.case("keras3", "conv2d_channels_first"), "keras")
    x = np.zeros((0, 3, 9, 6), np.float32)
    for name, shape in (("conv2d", (0, 6, 9, 6)), ("conv2d_1", (0, 6, 4, 5)),
                        ("average_pooling2d", (0, 6, 4, 3)), ("max_pooling2d", (0, 6, 2, 3)),
                        ("global_average_pooling2d", (0, 6)),
                        ("global_max_pooling2d", (0, 6, 1, 1))):
        y = model.layers[name].call([x])[0]
        assert y.shape == shape and y.dtype == np.float32, name
        if name != "global_average_pooling2d":
            x = y
    model = kf.load(kf.case("keras3", "maxpool3d_frames"), "keras")
    pooled = model.layers["max_pooling3d_2"].call([np.zeros((0, 4, 6, 6, 2), np.float32)])[0]
    assert pooled.shape == (0, 4, 3, 5, 1)


# -- what a call allocates ---------------------------------------------------------------------

def _peak_bytes(fn, *args):
    """fn(*args) and the peak of the memory traced while it ran (numpy reports its arrays to
    tracemalloc)."""
    tracemalloc.start()
    try:
        result = fn(*args)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("name", ["conv2d_spectrogram", "conv2d_options",
                                  "conv2d_channels_first"])
def test_a_small_column_budget_gives_the_same_outputs(flavour, name, monkeypatch,
                                                      im2col_path):
    """Columns made a few output positions at a time (conv_ops._chunking cuts within a row,
    down to single positions) give the outputs of the whole-batch product, grouped and
    dilated convolutions included, and Keras's recordings. Equal to float32 rounding, not bit
    for bit: BLAS sums a product's rows in an order that depends on how many rows it has."""
    case = kf.case(flavour, name)
    model = kf.load(case, "h5")
    d = kf.data(case)
    inputs = [d[op["inputs"][0]] for op in case["protocol"] if op["op"] == "predict"]
    whole = [model.predict(x) for x in inputs]
    for budget_floats in (1, 37, 500):
        monkeypatch.setattr(conv_ops, "COLUMN_BUDGET", budget_floats)
        for x, expected in zip(inputs, whole):
            got = model.predict(x)
            for g, e in zip(got if isinstance(got, list) else [got],
                            expected if isinstance(expected, list) else [expected]):
                np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)
        assert kf.replay(model, case, d) == len(inputs)


@pytest.mark.parametrize("shape, kernel, strides, dilations, groups", [
    ((1, 40, 40, 2), (9, 9, 2, 3), (1, 1), (1, 1), 1),
    ((2, 60, 40, 4), (5, 4, 2, 6), (2, 1), (1, 1), 2),
    ((1, 20, 16, 12, 2), (3, 3, 3, 2, 2), (1, 1, 1), (2, 1, 1), 1),
    ((1, 3000, 2), (64, 2, 2), (1,), (1,), 1),
])
def test_the_im2col_columns_stay_within_the_column_budget(shape, kernel, strides, dilations,
                                                          groups, monkeypatch,
                                                          im2col_path):
    """One row whose columns are many times COLUMN_BUDGET (a large kernel over a large image)
    is correlated a block of output positions at a time: the memory a call takes stays near the
    budget, not the row's columns, and the result is the one the default budget gives."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(kernel).astype(np.float32)
    expected = conv_ops.correlate(x, w, strides, dilations, groups)
    n_taps = int(np.prod(kernel[:-2]))
    row_columns = expected[0].size // kernel[-1] * n_taps * shape[-1] * 4
    monkeypatch.setattr(conv_ops, "COLUMN_BUDGET", 1 << 10)
    got, peak = _peak_bytes(conv_ops.correlate, x, w, strides, dilations, groups)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert row_columns > 50 * (1 << 12)
    assert peak < 4 * (1 << 12) + 2 * expected.nbytes + 2 * w.nbytes, (peak, row_columns)


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("mode", ["max", "sum"])
def test_pooling_a_window_far_larger_than_the_input_allocates_only_the_output(padding, mode):
    """MaxPooling1D(pool_size=65536, strides=1) over 3000 steps: each window is reduced over its
    in-bounds steps without a (outputs x window) gather; same padding still divides an average
    by the in-bounds count, and every same-padded window of a stride-1 pool as large as this
    covers the whole input: its max and sum are the global ones."""
    x = np.random.default_rng(1).standard_normal((2, 3000, 3)).astype(np.float32)
    window = 65536 if padding == "same" else 2999
    (y, count), peak = _peak_bytes(pooling.pool_axis, x, 1, window, 1, padding, mode)
    assert peak < 4 * x.nbytes
    whole = x.max(axis=1) if mode == "max" else x.sum(axis=1, dtype=np.float64)
    if padding == "same":
        assert y.shape == x.shape and (count == 3000).all()
        np.testing.assert_allclose(y, np.broadcast_to(whole[:, None], y.shape), rtol=1e-5)
    else:
        assert y.shape == (2, 2, 3) and (count == 2999).all()
        part = x[:, :2999].max(axis=1) if mode == "max" else x[:, :2999].sum(axis=1)
        np.testing.assert_allclose(y[:, 0], part, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("case_name, layer_name, changes, shape, pattern", [
    # 2**18 steps of 4 features repeated 65536 times: 2**38 bytes.
    ("padding1d_around_conv", "up_sampling1d", {"size": 65536}, (1, 1 << 18, 4),
     r"'up_sampling1d' \(UpSampling1D\): an output of shape \(1, 17179869184, 4\)"),
    # 2**17 rows of one step, each padded to 131073 steps.
    ("padding1d_around_conv", "zero_padding1d", {"padding": [65536, 65536]}, (1 << 17, 1, 3),
     r"'zero_padding1d' \(ZeroPadding1D\): an output of shape \(131072, 131073, 3\)"),
    ("zeropadding2d_frames", "zero_padding2d", {"padding": [[65536, 65536], [0, 0]]},
     (1 << 14, 5, 4, 2),
     r"'zero_padding2d' \(ZeroPadding2D\): an output of shape \(16384, 131077, 4, 2\)"),
])
def test_an_output_the_call_makes_too_large_is_refused_before_it_is_allocated(
        flavour, case_name, layer_name, changes, shape, pattern):
    """The config fixes no batch (and padding1d_around_conv no steps), so check_budget counts
    one row (one step) and loads the model; the call's own input makes the layer's output
    larger than the bound, refused with the budget's message instead of a MemoryError."""
    layer = build_changed(flavour, case_name, layer_name, **changes).layers[layer_name]
    with pytest.raises(fastlstm.ModelFormatError,
                       match=pattern + r" would take [\d,]+ bytes \(.* GiB\), above fastlstm's "
                             rf"bound of {budget.MAX_CALL_BYTES:,} bytes"):
        layer.call([np.zeros(shape, np.float32)])
