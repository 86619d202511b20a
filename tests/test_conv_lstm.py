"""ConvLSTM1D, ConvLSTM2D and ConvLSTM3D: what the format replays (test_formats.py) do not show.
Bad configs are Keras-written fixture configs with one entry changed; expected values are
Keras's recordings (fixtures/cases_conv_lstm.py)."""
import copy
import json

import keras_fixtures as kf
import numpy as np
import pytest

import fastlstm
from fastlstm.layers import conv_ops

FLAVOURS = ["keras2", "keras3"]
CONV_LSTM_CLASSES = {"ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}


def config_of(flavour, name):
    with open(kf.path(kf.case(flavour, name)["files"]["json"])) as f:
        return json.load(f)


def layer_config(config, name):
    return next(l for l in config["config"]["layers"] if l["config"].get("name") == name)


def from_config(flavour, config, case_name):
    model = fastlstm.model_from_json(json.dumps(config))
    model.load_weights(kf.path(kf.case(flavour, case_name)["files"]["weights"]))
    return model


def build_changed(flavour, case_name, layer_name, **changes):
    """model_from_json of the case's Keras config with some entries of one layer changed."""
    config = copy.deepcopy(config_of(flavour, case_name))
    layer_config(config, layer_name)["config"].update(changes)
    return fastlstm.model_from_json(json.dumps(config))


def recorded(flavour, name):
    """The case, its arrays and its predict calls as (inputs, outputs) lists."""
    case = kf.case(flavour, name)
    d = kf.data(case)
    calls = [([d[k] for k in op["inputs"]], [d[k] for k in op["outputs"]])
             for op in case["protocol"] if op["op"] == "predict"]
    return case, d, calls


def test_fixtures_cover_every_conv_lstm_class_in_both_flavours():
    for flavour in FLAVOURS:
        found = {l["class_name"] for c in kf.cases(flavour) if c["name"].startswith("conv_lstm")
                 for l in config_of(flavour, c["name"])["config"]["layers"]}
        assert CONV_LSTM_CLASSES <= found, (flavour, CONV_LSTM_CLASSES - found)


# -- bad configs -----------------------------------------------------------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("changes,error,pattern", [
    ({"kernel_size": [3]}, fastlstm.ModelFormatError,
     (r"'conv_lstm2d' \(ConvLSTM2D\): kernel_size must be an integer or 2 integers, "
      r"got \[3\]")),
    ({"kernel_size": [3, 3, 3]}, fastlstm.ModelFormatError,
     r"kernel_size must be an integer or 2 integers, got \[3, 3, 3\]"),
    ({"kernel_size": [3, 0]}, fastlstm.ModelFormatError, r"kernel_size=0 is outside"),
    ({"kernel_size": [3, 10 ** 9]}, fastlstm.ModelFormatError,
     r"kernel_size=1000000000 is outside"),
    ({"strides": [2, 1], "dilation_rate": [1, 2]}, fastlstm.ModelFormatError,
     r"strides=\(2, 1\) with dilation_rate=\(1, 2\); Keras allows only one of them above 1"),
    ({"strides": [0, 1]}, fastlstm.ModelFormatError, r"strides=0 is outside"),
    # The taps bound Conv2D has (layer_args.conv_window): every output position gathers them.
    ({"kernel_size": [300, 300]}, fastlstm.ModelFormatError,
     (r"'conv_lstm2d' \(ConvLSTM2D\): kernel_size=\(300, 300\) has 90000 taps, above "
      r"fastlstm's bound of 65536")),
    ({"padding": "causal"}, fastlstm.UnsupportedConfigError,
     r"'conv_lstm2d' \(ConvLSTM2D\): padding must be one of \['valid', 'same'\], got 'causal'"),
    ({"filters": 10 ** 9}, fastlstm.ModelFormatError, r"filters=1000000000 is outside"),
    ({"filters": None}, fastlstm.ModelFormatError, r"filters"),
    ({"stateful": True}, fastlstm.ModelFormatError,
     r"'conv_lstm2d' \(ConvLSTM2D\) is stateful but the model does not fix the batch size"),
    ({"data_format": "channels_middle"}, fastlstm.UnsupportedConfigError, r"data_format must be"),
    ({"time_major": True}, fastlstm.UnsupportedConfigError, r"time_major=True"),
    ({"activation": "glu"}, fastlstm.UnsupportedConfigError,
     r"activation 'glu' changes the shape of the gates"),
    ({"recurrent_activation": "no_such"}, fastlstm.UnsupportedConfigError, r"no_such"),
    ({"kernel_size": [7, 7]}, fastlstm.ModelFormatError, None),
])
def test_conv_lstm2d_bad_configs(flavour, changes, error, pattern):
    if changes.get("kernel_size") == [7, 7]:
        # valid padding on the second layer's 6x6 input: no output position
        layer = "conv_lstm2d_1"
        pattern = (r"'conv_lstm2d_1' \(ConvLSTM2D\): spatial shape \(6, 6\) is too small for "
                   r"kernel_size=\(7, 7\), dilation_rate=\(1, 1\) with padding='valid'")
    else:
        layer = "conv_lstm2d"
    with pytest.raises(error, match=pattern):
        build_changed(flavour, "conv_lstm2d_stack", layer, **changes)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_conv_lstm_on_the_wrong_rank_names_the_shape_it_needs(flavour):
    config = copy.deepcopy(config_of(flavour, "conv_lstm2d_stack"))
    layer = layer_config(config, "conv_lstm2d")
    layer["class_name"] = "ConvLSTM1D"
    layer["config"].update(kernel_size=[3], strides=[1], dilation_rate=[1])
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'conv_lstm2d' \(ConvLSTM1D\) needs 4-D input \(batch, timesteps, "
                             r"steps, channels\), got shape \(None, 4, 6, 6, 2\)"):
        fastlstm.model_from_json(json.dumps(config))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_wrong_weight_shape_is_named(flavour):
    model = kf.load(kf.case(flavour, "conv_lstm2d_stack"), "keras")
    layer = model.layers["conv_lstm2d"]
    weights = [w.copy() for w in layer.weights]
    assert [w.shape for w in weights] == [(3, 3, 2, 12), (3, 3, 3, 12), (12,)]
    weights[1] = weights[1][:, :, :2]
    with pytest.raises(fastlstm.ModelFormatError, match=r"weight 1 has shape \(3, 3, 2, 12\) in "
                                                        r"the file, expected \(3, 3, 3, 12\)"):
        layer.set_weights(weights)


def test_bidirectional_over_a_conv_lstm_is_refused_clearly():
    config = copy.deepcopy(config_of("keras3", "conv_lstm2d_stack"))
    layers = config["config"]["layers"]
    inner = layers[1]
    layers[1] = {"class_name": "Bidirectional", "config": {"name": "bidi", "layer": inner}}
    with pytest.raises(fastlstm.UnsupportedConfigError,
                       match=r"Bidirectional wraps 'ConvLSTM2D'; fastlstm supports Bidirectional "
                             r"over LSTM, GRU and SimpleRNN"):
        fastlstm.model_from_json(json.dumps(config))


# -- defaults and semantics --------------------------------------------------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_config_without_recurrent_activation_takes_its_versions_default(flavour):
    """tf_keras base_conv_lstm.py defaults to hard_sigmoid, Keras 3 conv_lstm.py to sigmoid;
    the fixture layers left it unset, so Keras stored its own default."""
    config = copy.deepcopy(config_of(flavour, "conv_lstm2d_stack"))
    for name in ("conv_lstm2d", "conv_lstm2d_1"):
        stored = layer_config(config, name)["config"].pop("recurrent_activation")
        assert stored == ("hard_sigmoid" if flavour == "keras2" else "sigmoid")
    model = from_config(flavour, config, "conv_lstm2d_stack")
    kf.replay(model, kf.case(flavour, "conv_lstm2d_stack"))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_go_backwards_sequences_come_in_processing_order(flavour):
    """The recorded go_backwards sequence read backwards is not Keras's: Keras returns it in
    the reversed (processing) order, and so does fastlstm."""
    case, _, calls = recorded(flavour, "conv_lstm_go_backwards")
    model = kf.load(case, "keras")
    xs, expected = calls[0]
    got = model.predict(xs)
    for j, (g, e) in enumerate(zip(got, expected)):
        kf.assert_close(g, e, f"go_backwards output {j}")
    assert not np.allclose(got[0][:, ::-1], expected[0], atol=1e-3)
    assert not np.allclose(got[2][:, ::-1], expected[2], atol=1e-3)


def test_masked_steps_keep_the_state_and_repeat_the_last_output():
    case, _, calls = recorded("keras3", "conv_lstm_mask")
    (x,), expected = calls[0]
    model = kf.load(case, "keras")
    got = model.predict(x)
    for g, e in zip(got, expected):
        kf.assert_close(g, e, "masked ConvLSTM1D")
    # Keras's record: row 0 is masked at steps 2, 4, 5; row 2 throughout (zeros).
    seq = expected[0]
    np.testing.assert_array_equal(seq[0, 2], seq[0, 1])
    np.testing.assert_array_equal(seq[0, 5], seq[0, 3])
    assert not seq[2].any() and not expected[2][2].any()


# -- stateful models and the state store ------------------------------------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
def test_stateful_steps_one_call_each_equal_one_call_of_them_all(flavour):
    """Keras's record of a T=4 call equals that of its four steps fed one call each after a
    reset; fastlstm gives both."""
    case, _, calls = recorded(flavour, "conv_lstm_stateful")
    (x,), (whole,) = calls[0]
    np.testing.assert_array_equal(np.concatenate([calls[1 + t][0][0] for t in range(4)], 1), x)
    model = kf.load(case, "keras")
    kf.assert_close(model.predict(x), whole, "T=4 at once")
    model.reset_states()
    for t in range(4):
        got = model.predict(x[:, t:t + 1])
        kf.assert_close(got, calls[1 + t][1][0], f"step {t} alone")
    kf.assert_close(got, whole, "the last of four one-step calls, against Keras's T=4 call")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_stateful_state_has_keras_shape_and_survives_get_set_save_load(flavour, tmp_path):
    case, _, calls = recorded(flavour, "conv_lstm_stateful")
    model = kf.load(case, "keras")
    model.predict(calls[0][0][0])
    states = model.get_states()
    # ConvLSTM2D(2, 3, same) over 5x4 keeps 5x4; ConvLSTM2D(2, 2) valid gives 4x3.
    assert {k: [a.shape for a in v] for k, v in states.items()} == {
        "conv_lstm2d": [(2, 5, 4, 2)] * 2, "conv_lstm2d_1": [(2, 4, 3, 2)] * 2}
    assert all(np.abs(a).max() > 0 for v in states.values() for a in v)
    model.save_states(tmp_path / "s.h5")
    # Call 5 (4 rows, batch_size 2) followed the four one-step calls: the state of call 0.
    xs5, out5 = calls[5]
    for restore in ("set", "load"):
        model.reset_states()
        if restore == "set":
            model.set_states(states)
        else:
            model.load_states(tmp_path / "s.h5")
        kf.assert_close(model.predict(xs5[0], batch_size=2), out5[0], f"after {restore}_states")
    with pytest.raises(ValueError, match=r"states\['conv_lstm2d'\] h has shape \(2, 20\), "
                                         r"expected \(2, 5, 4, 2\) \(batch_size, \*spatial, "
                                         r"filters\)"):
        model.set_states({"conv_lstm2d": [np.zeros((2, 20)), np.zeros((2, 5, 4, 2))]})


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_reset_of_one_row_zeroes_only_its_state(flavour):
    case, _, calls = recorded(flavour, "conv_lstm_stateful")
    model = kf.load(case, "keras")
    model.predict(calls[0][0][0])
    before = model.get_states()
    model.reset_states(samples=[1])
    after = model.get_states()
    for name in before:
        for a, b in zip(before[name], after[name]):
            np.testing.assert_array_equal(b[0], a[0])
            assert not b[1].any()
    # Row 1 now starts afresh, as every row of Keras's call 1 (after its reset) did.
    got = model.predict(calls[1][0][0])
    kf.assert_close(got[1], calls[1][1][0][1], "row 1 after its reset")
    assert not np.allclose(got[0], calls[1][1][0][0], atol=1e-4)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_state_handle_replays_the_stateful_protocol(flavour):
    case, _, calls = recorded(flavour, "conv_lstm_stateful")
    model = kf.load(case, "keras")
    handle = model.new_state(2)
    assert repr(handle) == ("<fastlstm.State batch_size=2 layers=[conv_lstm2d(5x4x2), "
                            "conv_lstm2d_1(4x3x2)]>")
    i = 0
    for op in case["protocol"]:
        if op["op"] == "reset":
            handle.reset()
            continue
        xs, outs = calls[i]
        x = xs[0]
        parts = [model.predict(x[r:r + 2], state=handle) for r in range(0, len(x), 2)]
        kf.assert_close(np.concatenate(parts), outs[0], f"call {i} through a handle")
        i += 1
    # The model's own state never moved.
    assert not any(a.any() for v in model.get_states().values() for a in v)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_handle_runs_a_stateless_model_one_step_per_call(flavour):
    """conv_lstm1d_options takes any T: four one-step calls on a handle give Keras's T=4 call
    (the last outputs, and the sequences step by step)."""
    case, _, calls = recorded(flavour, "conv_lstm1d_options")
    model = kf.load(case, "keras")
    (x,), expected = calls[0]
    handle = model.new_state(len(x))
    steps = [model.predict(x[:, t:t + 1], state=handle) for t in range(x.shape[1])]
    for j, e in enumerate(expected):
        if e.ndim == 4:  # return_sequences: (batch, T, steps, filters)
            kf.assert_close(np.concatenate([s[j] for s in steps], 1), e, f"sequence {j}")
        else:
            kf.assert_close(steps[-1][j], e, f"last output {j}")
    split = handle.rows(1)
    joined = fastlstm.stack_states([handle.rows(0), split])
    assert [a.shape for a in joined.as_dict()["conv_lstm1d"]] == [(2, 5, 3)] * 2


def test_an_open_spatial_shape_refuses_a_state_handle():
    model = kf.load(kf.case("keras2", "conv_lstm1d_open_spatial"), "keras")
    with pytest.raises(ValueError, match=r"layer 'conv_lstm1d' \(ConvLSTM1D\) has a state of "
                                         r"unknown shape \(batch, None, 3\)"):
        model.new_state(1)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_an_initial_state_of_the_wrong_shape_is_named(flavour):
    """The decoder's initial_state [h, c] comes from the encoder; a config whose encoder gives
    another shape is refused when the model is built."""
    config = copy.deepcopy(config_of(flavour, "conv_lstm_return_state"))
    layer_config(config, "conv_lstm2d")["config"]["filters"] = 4
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"'conv_lstm2d_1' \(ConvLSTM2D\): initial_state has shape "
                             r"\(None, 5, 5, 4\), expected \(batch, 5, 5, 3\)"):
        fastlstm.model_from_json(json.dumps(config))


def test_the_budget_bounds_the_gates_of_every_step():
    """A few bytes of config declaring 2**16 steps of a 1024x1024 ConvLSTM2D(256): the input
    convolution of all steps would take 2**16 * 2**20 * 1024 floats."""
    config = copy.deepcopy(config_of("keras3", "conv_lstm2d_stack"))
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, 1 << 16, 1024, 1024, 2]
    layer_config(config, "conv_lstm2d")["config"]["filters"] = 256
    with pytest.raises(fastlstm.ModelFormatError,
                       match=r"the outputs of one call would take .* 'conv_lstm2d' "
                             r"\(ConvLSTM2D\): an output of shape \(None, 65536, 1024, 1024, "
                             r"1024\)"):
        fastlstm.model_from_json(json.dumps(config))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_channels_first_state_is_in_keras_channels_first_layout(flavour):
    """ConvLSTM1D(4, 3, strides=2, channels_first) over 7 steps: h is (batch, 4 filters,
    3 steps), and, going backwards with return_sequences, the last output step of a call."""
    case, _, calls = recorded(flavour, "conv_lstm1d_stateful_backwards")
    model = kf.load(case, "keras")
    for (x,), (expected,) in calls:
        kf.assert_close(model.predict(x), expected, "channels_first stateful call")
        h, c = model.get_states()["conv_lstm1d"]
        assert h.shape == c.shape == (1, 4, 3)
        kf.assert_close(h, expected[:, -1], "h against Keras's last output step")


def test_a_mask_per_position_is_refused_as_keras_refuses_it():
    """Masking over a 5-D input masks every (step, row, col); Keras's rnn takes one flag per
    step ("Dimensions must be equal" in both versions), so a hand-made config gets a message."""
    config = copy.deepcopy(config_of("keras3", "conv_lstm2d_stack"))
    config["config"]["layers"].insert(1, {"class_name": "Masking", "config": {
        "name": "masking", "mask_value": 0.0}})
    model = from_config("keras3", config, "conv_lstm2d_stack")
    with pytest.raises(ValueError, match=r"layer 'conv_lstm2d' \(ConvLSTM2D\) takes a \(batch, "
                                         r"timesteps\) mask, as Keras's rnn does; got a mask of "
                                         r"shape \(1, 4, 6, 6\) for an input of shape "
                                         r"\(1, 4, 6, 6, 2\)"):
        model.predict(np.ones((1, 4, 6, 6, 2), np.float32))


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("name", ["conv_lstm2d_stack", "conv_lstm1d_options", "conv_lstm3d",
                                  "conv_lstm_channels_first"])
def test_a_small_column_budget_reproduces_keras(flavour, name, monkeypatch,
                                                im2col_path):
    """The input and recurrent convolutions made a few output positions at a time
    (conv_ops.COLUMN_BUDGET far below one row's columns), the recurrent state padded in one
    buffer per call, give Keras's recordings."""
    case = kf.case(flavour, name)
    monkeypatch.setattr(conv_ops, "COLUMN_BUDGET", 7)
    assert kf.replay(kf.load(case, "h5"), case) >= 1
