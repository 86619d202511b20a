"""What a hostile config can make fastlstm do at load: products of capped dimensions are bounded
before anything is allocated (fastlstm/budget.py), and deep nesting, non-finite or huge numbers
are ModelFormatErrors naming the layer and key (fastlstm/limits.py, config.check_nesting), never
RecursionError, OverflowError or "cannot convert float NaN to integer"."""
import json
import time
import tracemalloc

import numpy as np
import pytest

import fastlstm
import keras_fixtures as kf
from fastlstm import budget
from fastlstm.config import MAX_NESTING
from fastlstm.limits import MAX_JSON_DEPTH, json_depth
from fastlstm.loading import build_model

MiB = 1 << 20
BAD = "__bad_value__"  # replaced in the JSON text by a literal json.dumps cannot write


def _layer(class_name, **config):
    return {"module": "keras.layers", "class_name": class_name, "config": config}


def _input(batch_shape, name="input"):
    return _layer("InputLayer", batch_shape=list(batch_shape), name=name)


def _sequential(layers, name="model"):
    return {"module": "keras", "class_name": "Sequential", "config": {"name": name,
                                                                      "layers": layers}}


def _text(config, literal=None):
    text = json.dumps(config)
    return text if literal is None else text.replace(json.dumps(BAD), literal)


def _refused(text, *expected):
    """model_from_json(text) raises ModelFormatError quickly, allocating little, and its message
    holds every expected piece."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(fastlstm.ModelFormatError) as info:
            fastlstm.model_from_json(text)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    for piece in expected:
        assert piece in message, (piece, message)
    assert elapsed < 2, elapsed
    assert peak < 64 * MiB, peak
    return message


# -- point 7: sizes that multiply ------------------------------------------------------------------

def _stateful_lstm_keras3(batch, units=256):
    return _sequential([_input([batch, 1, 3]),
                        _layer("LSTM", name="big", units=units, stateful=True)])


def _stateful_lstm_keras2(batch, units=256):
    lstm = {"class_name": "LSTM", "config": {"name": "big", "units": units, "stateful": True,
                                             "batch_input_shape": [batch, 1, 3]}}
    return {"class_name": "Sequential", "keras_version": "2.15.0", "backend": "tensorflow",
            "config": {"name": "model", "layers": [lstm]}}


@pytest.mark.parametrize("style", [_stateful_lstm_keras3, _stateful_lstm_keras2])
def test_huge_stateful_batch_is_refused_before_the_state_is_allocated(style):
    # LSTM(256) over 3 features: 266,240 weights (1 MB), carried state 2 x 2**24 x 256 floats.
    message = _refused(_text(style(2 ** 24)), "'big'", "(LSTM)", "(16777216, 256)",
                       f"{budget.MAX_STATE_BYTES:,} bytes")
    assert "carried states" in message


@pytest.mark.parametrize("style", [_stateful_lstm_keras3, _stateful_lstm_keras2])
def test_large_legitimate_stateful_model_loads_and_runs(style):
    model = fastlstm.model_from_json(_text(style(1024)))
    assert model.batch_size == 1024
    h, c = model.get_states()["big"]
    assert h.shape == c.shape == (1024, 256) and not h.any()
    rng = np.random.default_rng(0)
    for layer in model.weighted_layers():
        layer.set_weights([rng.uniform(-0.5, 0.5, s).astype(np.float32)
                           for s in layer.weight_shapes()])
    x = rng.normal(size=(1024, 1, 3)).astype(np.float32)
    first, second = model.predict(x), model.predict(x)
    assert first.shape == (1024, 256) and not np.array_equal(first, second)  # state carried


def test_states_of_several_layers_are_summed():
    # Each layer's h and c take 512 MiB, under the bound; the four together do not.
    layers = [_input([2 ** 18, 1, 3])] + [
        _layer("LSTM", name=f"lstm_{i}", units=256, stateful=True, return_sequences=i < 3)
        for i in range(4)]
    _refused(_text(_sequential(layers)), "'lstm_0'", "(262144, 256)", "2 GiB")


def test_bidirectional_inner_states_count():
    inner = _layer("LSTM", name="rnn", units=256, stateful=True)
    layers = [_input([2 ** 20, 1, 3]), _layer("Bidirectional", name="bi", layer=inner)]
    _refused(_text(_sequential(layers)), "'forward_rnn'", "(1048576, 256)")


def test_nested_model_states_count():
    inner = _sequential([_input([2 ** 22, 1, 3], "inner_input"),
                         _layer("LSTM", name="inner_lstm", units=128, stateful=True)], "inner")
    outer = _sequential([_input([2 ** 22, 1, 3]), inner], "outer")
    _refused(_text(outer), "model 'outer'", "'inner_lstm'", "(4194304, 128)")


@pytest.mark.parametrize("layers, expected", [
    # 2**24 x 2**10 floats of embeddings.
    ([_input([None, 5]), _layer("Embedding", name="emb", input_dim=2 ** 24, output_dim=1024)],
     ("'emb'", "(16777216, 1024)")),
    # Flatten multiplies two capped dimensions into the Dense kernel's rows.
    ([_input([None, 4096, 4096]), _layer("Flatten", name="flat"),
      _layer("Dense", name="wide", units=1024)],
     ("'wide'", "(16777216, 1024)")),
], ids=["embedding", "flatten_dense"])
def test_weights_beyond_the_bound_are_refused(layers, expected):
    _refused(_text(_sequential(layers)), "its weights", f"{budget.MAX_WEIGHT_BYTES:,} bytes",
             *expected)


@pytest.mark.parametrize("layers, expected", [
    # Every call repeats 2**20 features 2**20 times, whatever the batch.
    ([_input([None, 8]), _layer("Dense", name="dense", units=2 ** 20),
      _layer("RepeatVector", name="repeat", n=2 ** 20)],
     ("'repeat'", "(None, 1048576, 1048576)")),
    # A stateful model's fixed batch and timesteps: 2**14 x 2**16 x 64 floats of sequence.
    ([_input([2 ** 14, 2 ** 16, 3]),
      _layer("LSTM", name="seq", units=64, stateful=True, return_sequences=True)],
     ("'seq'", "(16384, 65536, 64)")),
], ids=["repeat_vector", "stateful_sequence"])
def test_outputs_of_one_call_beyond_the_bound_are_refused(layers, expected):
    _refused(_text(_sequential(layers)), "the outputs of one call",
             f"{budget.MAX_CALL_BYTES:,} bytes", *expected)


def test_a_stateless_model_counts_one_row():
    # The declared batch of a stateless model is not enforced: predict takes any batch.
    model = fastlstm.model_from_json(_text(_sequential([
        _input([2 ** 24, 16, 3]), _layer("LSTM", name="lstm", units=256,
                                         return_sequences=True)])))
    assert not model.stateful


# -- point 8: nesting ------------------------------------------------------------------------------

def _nested_sequential(depth):
    """Sequential s{depth-1} holding ... s1 holding s0, which holds an LSTM (built without
    recursion)."""
    config = _sequential([_input([None, 2, 3], "in"), _layer("LSTM", name="lstm", units=2)], "s0")
    for i in range(1, depth):
        config = _sequential([config], f"s{i}")
    return config


def _nested_keras1_list(depth):
    """Keras 1.2-2.2.0 Sequentials saved as bare lists, nested."""
    config = {"class_name": "Sequential", "config": [
        {"class_name": "LSTM", "config": {"name": "lstm", "output_dim": 2,
                                          "batch_input_shape": [None, 2, 3]}}]}
    for _ in range(1, depth):
        config = {"class_name": "Sequential", "config": [config]}
    return config


def _nested_time_distributed(depth):
    layer = {"class_name": "Dense", "config": {"name": "dense", "units": 2}}
    for i in range(depth):
        layer = {"class_name": "TimeDistributed", "config": {"name": f"td{i}", "layer": layer}}
    return {"class_name": "Sequential", "config": {"name": "model", "layers": [
        {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [None, 2, 3]}},
        layer]}}


def _deep_initializer(depth):
    """A model config whose LSTM's kernel_initializer nests ``depth`` objects."""
    model = _sequential([_input([None, 2, 3]), _layer("LSTM", name="lstm", units=2,
                                                      kernel_initializer=BAD)])
    return _text(model, '{"config": ' * depth + "{}" + "}" * depth)


@pytest.mark.parametrize("text", [
    "[" * 100000 + "]" * 100000,
    '{"a": ' * 100000 + "1" + "}" * 100000,
    "[" * 100000,                                           # also invalid: depth checked first
    None,                                                   # a model config with a deep value
], ids=["list", "dict", "unclosed", "in_a_layer"])
def test_deep_json_names_the_depth_limit(text):
    if text is None:
        text = _deep_initializer(1000)
    for given in (text, text.encode("utf-8")):
        _refused(given, "model_from_json", f"limit of {MAX_JSON_DEPTH} levels")


def test_json_depth_bound_is_exact():
    at_bound = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    with pytest.raises(fastlstm.ModelFormatError, match="must be a JSON object"):
        fastlstm.model_from_json(at_bound)  # parsed: only then is it found not to be a model
    _refused("[" + at_bound + "]", f"nests {MAX_JSON_DEPTH + 1} levels")


def _random_json(rng, depth):
    """A random value nesting at most ``depth`` levels, with strings full of quotes, backslashes
    and brackets."""
    kind = rng.integers(4) if depth else 3
    if kind == 0:
        return [_random_json(rng, depth - 1) for _ in range(rng.integers(4))]
    if kind == 1:
        return {_random_string(rng): _random_json(rng, depth - 1) for _ in range(rng.integers(4))}
    return _random_string(rng) if kind == 2 else int(rng.integers(100))


def _random_string(rng):
    return "".join(rng.choice(list('ab"\\[]{}\u00e9'), size=rng.integers(8)))


def _depth(value):
    if not isinstance(value, (list, dict)):
        return 0
    items = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(v) for v in items), default=0)


def test_json_depth_agrees_with_the_parsed_value():
    rng = np.random.default_rng(0)
    for _ in range(300):
        value = _random_json(rng, int(rng.integers(8)))
        for ascii_only in (True, False):
            assert json_depth(json.dumps(value, ensure_ascii=ascii_only)) == _depth(value)


def test_json_depth_ignores_brackets_in_strings():
    assert json_depth('{"a": ["[[[{", "\\"[", "\\\\"], "b": "]]]"}') == 2
    config = _text(_sequential([_input([None, 2, 3], "[" * 1000),
                                _layer("LSTM", name="{" * 1000, units=2)]))
    assert json_depth(config) == 6  # model, config, layers, layer, config, batch_shape
    fastlstm.model_from_json(config)


@pytest.mark.parametrize("make, described", [
    # The outermost model is s{depth-1}; the one MAX_NESTING levels below it is refused.
    (_nested_sequential, lambda depth: f"layer 's{depth - 1 - MAX_NESTING}' (Sequential)"),
    (_nested_keras1_list, lambda depth: "an unnamed Sequential"),
    (_nested_time_distributed, lambda depth: f"layer 'td{depth - MAX_NESTING}' (TimeDistributed)"),
], ids=["sequential", "keras1_list", "time_distributed"])
def test_deeply_nested_models_are_refused(make, described):
    def pieces(depth):
        return described(depth), f"{MAX_NESTING + 1} levels", f"limit of {MAX_NESTING}"

    # Through JSON text, as deep as the JSON bound lets them be...
    _refused(_text(make(MAX_NESTING + 5)), *pieces(MAX_NESTING + 5))
    # ...and as dicts (HDF5 attributes, any depth), in both Keras 2 and Keras 3 readings.
    for version in ((2, 0), (3, 0)):
        with pytest.raises(fastlstm.ModelFormatError) as info:
            build_model(make(10000), version)
        assert all(p in str(info.value) for p in pieces(10000)), str(info.value)


def test_nesting_up_to_the_bound_loads():
    model = fastlstm.model_from_json(_text(_nested_sequential(MAX_NESTING)))
    assert model.output_shapes == [(None, 2)]


# -- point 8: numbers ------------------------------------------------------------------------------

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999"]
HUGE_INT = "1" + "0" * 400


def _model_with(layer, input_shape):
    return _sequential([_input(input_shape), layer])


INT_KEYS = [
    ("LSTM", {"units": 2}, [None, 4, 3], "units"),
    ("GRU", {"units": 2}, [None, 4, 3], "units"),
    ("SimpleRNN", {"units": 2}, [None, 4, 3], "units"),
    ("Dense", {"units": 2}, [None, 3], "units"),
    ("Conv1D", {"filters": 4, "kernel_size": 3}, [None, 10, 4], "filters"),
    ("Conv1D", {"filters": 4, "kernel_size": 3}, [None, 10, 4], "kernel_size"),
    ("Conv1D", {"filters": 4, "kernel_size": [3]}, [None, 10, 4], "strides"),
    ("Conv1D", {"filters": 4, "kernel_size": 3}, [None, 10, 4], "dilation_rate"),
    ("Conv1D", {"filters": 4, "kernel_size": 3}, [None, 10, 4], "groups"),
    ("MaxPooling1D", {"pool_size": 2}, [None, 10, 4], "pool_size"),
    ("AveragePooling1D", {"pool_size": 2}, [None, 10, 4], "strides"),
    ("Embedding", {"input_dim": 10, "output_dim": 4}, [None, 5], "input_dim"),
    ("Embedding", {"input_dim": 10, "output_dim": 4}, [None, 5], "output_dim"),
    ("RepeatVector", {"n": 2}, [None, 3], "n"),
]


@pytest.mark.parametrize("literal", NON_FINITE + [HUGE_INT, "2.5"])
@pytest.mark.parametrize("class_name, config, input_shape, key", INT_KEYS,
                         ids=[f"{c}.{k}" for c, _, _, k in INT_KEYS])
def test_bad_integer_entries_name_layer_and_key(class_name, config, input_shape, key, literal):
    layer = _layer(class_name, name="target", **{**config, key: BAD})
    _refused(_text(_model_with(layer, input_shape), literal), "'target'", key)


def test_bad_units_inside_bidirectional_name_the_inner_layer():
    inner = _layer("LSTM", name="rnn", units=BAD)
    layer = _layer("Bidirectional", name="bi", layer=inner)
    _refused(_text(_model_with(layer, [None, 4, 3]), "NaN"), "'forward_rnn'", "units")


@pytest.mark.parametrize("literal", NON_FINITE + [HUGE_INT, "-1", "0", "16777217", "1e30", "2.5",
                                                  '"3"'])
@pytest.mark.parametrize("where", ["InputLayer", "first_layer", "build_input_shape"])
def test_bad_batch_shape_entries_name_layer_and_key(where, literal):
    lstm = {"name": "lstm", "units": 2}
    if where == "InputLayer":
        config, expected = _sequential([_input([None, BAD, 3], "in"), _layer("LSTM", **lstm)]), \
            ("'in'", "batch_shape[1]")
    elif where == "first_layer":
        config, expected = _sequential([_layer("LSTM", batch_input_shape=[None, BAD, 3],
                                               **lstm)]), ("'lstm'", "batch_input_shape[1]")
    else:
        config = _sequential([_layer("LSTM", **lstm)], "model")
        config["config"]["build_input_shape"] = [None, BAD, 3]
        expected = ("'model'", "build_input_shape[1]")
    _refused(_text(config, literal), *expected)


@pytest.mark.parametrize("literal", NON_FINITE + [HUGE_INT, "0"])
def test_bad_reshape_target_names_layer_and_key(literal):
    layer = _layer("Reshape", name="target", target_shape=[2, BAD])
    _refused(_text(_model_with(layer, [None, 6]), literal), "'target'", "target_shape[1]")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-1", HUGE_INT, '"small"'])
@pytest.mark.parametrize("class_name", ["BatchNormalization", "LayerNormalization"])
def test_bad_epsilon_names_layer_and_key(class_name, literal):
    layer = _layer(class_name, name="target", epsilon=BAD)
    _refused(_text(_model_with(layer, [None, 4, 3]), literal), "'target'", "epsilon")


def test_huge_mask_value_names_layer_and_key():
    layer = _layer("Masking", name="target", mask_value=BAD)
    _refused(_text(_model_with(layer, [None, 4, 3]), HUGE_INT), "'target'", "mask_value")


def test_nan_mask_value_is_kept():
    # Keras accepts it: every step then stays unmasked, as NaN != NaN.
    layer = _layer("Masking", name="masking", mask_value=BAD)
    model = fastlstm.model_from_json(_text(_model_with(layer, [None, 4, 3]), "NaN"))
    assert np.isnan(model.layers["masking"].mask_value)


def test_huge_op_argument_names_the_op():
    with open(kf.path("keras3/masking_layer/model.json")) as f:
        text = f.read()
    assert text.count(", 0.5]") == 1
    _refused(text.replace(", 0.5]", f", {HUGE_INT}]"), "'not_equal'", "op argument")
