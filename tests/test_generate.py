"""model.generate: the Keras feedback protocol in one call."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastlstm
import keras_fixtures as kf
from small_models import chain_model


def _split_protocol(case_):
    """(warm-up calls, feedback run, feedback run after the reset) of a generation fixture: calls
    0..5 warm up, each later call feeds the previous output back, a reset, a fresh input and its
    feedback calls (tests/fixtures/make_fixtures.py)."""
    ops = case_["protocol"]
    reset = next(i for i, op in enumerate(ops) if op["op"] == "reset")
    return ops[:5], ops[5:reset], ops[reset + 1:]


def _expected(d, ops, n_rows):
    return np.stack([d[op["outputs"][0]].reshape(n_rows, -1) for op in ops], axis=1)


@pytest.mark.parametrize("name", ["stateful_generation_b1", "stateful_generation_b2",
                                  "long_chain_stateful"])
@pytest.mark.parametrize("flavour,fmt", [("keras2", "h5"), ("keras2", "keras"), ("keras3", "h5"),
                                         ("keras3", "keras")])
def test_generate_matches_the_keras_feedback_protocol(flavour, fmt, name):
    case_ = kf.case(flavour, name)
    d = kf.data(case_)
    model = kf.load(case_, fmt)
    warm_up, feedback, after_reset = _split_protocol(case_)
    n_rows = model.batch_size
    for op in warm_up:
        model.predict(d[op["inputs"][0]])
    got = model.generate(d[feedback[0]["inputs"][0]], len(feedback))
    kf.assert_close(got, _expected(d, feedback, n_rows), f"{flavour}/{name} generate")
    model.reset_states()
    got = model.generate(d[after_reset[0]["inputs"][0]], len(after_reset))
    kf.assert_close(got, _expected(d, after_reset, n_rows), f"{flavour}/{name} after reset")


def _predict_loop(model, x, steps, slide, state=None):
    out, window = [], x
    for _ in range(steps):
        y = model.predict(window, state=state)
        y = y[:, -1] if y.ndim == 3 else y
        out.append(y)
        window = np.concatenate([window[:, 1:], y[:, None]], 1) if slide else y[:, None]
    return np.stack(out, 1)


@pytest.mark.parametrize("td,batch", [(False, 1), (True, 1), (True, 3)])
def test_stateful_generate_equals_a_predict_loop_and_leaves_the_same_state(td, batch):
    a = chain_model((batch, None, 4), 16, 4, stateful=True, td=td, return_sequences=td, seed=1)
    b = chain_model((batch, None, 4), 16, 4, stateful=True, td=td, return_sequences=td, seed=1)
    x = np.random.default_rng(2).uniform(-1, 1, (batch, 6, 4)).astype(np.float32)
    got = a.generate(x, 40)
    expected = _predict_loop(b, x, 40, slide=False)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    for name, (h, c) in a.get_states().items():
        np.testing.assert_allclose(h, b.get_states()[name][0], atol=1e-6)
        np.testing.assert_allclose(c, b.get_states()[name][1], atol=1e-6)
    # and it continues from there, as a further Keras predict would
    np.testing.assert_allclose(a.predict(x[:, :1]), b.predict(x[:, :1]), atol=1e-6)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_stateless_generate_slides_the_window(return_sequences):
    model = chain_model((None, 5, 2), 8, 2, return_sequences=return_sequences,
                        td=return_sequences, seed=3)
    x = np.random.default_rng(4).uniform(-1, 1, (3, 5, 2)).astype(np.float32)
    got = model.generate(x, 12)
    np.testing.assert_allclose(got, _predict_loop(model, x, 12, slide=True), atol=1e-6)
    assert got.shape == (3, 12, 2)


def test_generate_with_a_state_handle_leaves_the_model_state_alone():
    model = chain_model((2, None, 3), 8, 3, stateful=True, seed=5)
    x = np.random.default_rng(6).uniform(-1, 1, (4, 3, 3)).astype(np.float32)
    before = model.get_states()
    s, t = model.new_state(4), model.new_state(4)
    got = model.generate(x, 10, state=s)
    np.testing.assert_allclose(got, _predict_loop(model, x, 10, slide=False, state=t), atol=1e-6)
    for name, (h, c) in model.get_states().items():
        assert np.array_equal(h, before[name][0]) and np.array_equal(c, before[name][1])
    for name in s.layer_names:
        np.testing.assert_allclose(s.as_dict()[name][0], t.as_dict()[name][0], atol=1e-6)


def test_models_that_do_not_compile_generate_through_predict():
    compiled = chain_model((1, None, 3), 8, 3, stateful=True, seed=7)
    general = chain_model((1, None, 3), 8, 3, stateful=True, seed=7, fuse=False)
    x = np.random.default_rng(8).uniform(-1, 1, (1, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(general.generate(x, 15), compiled.generate(x, 15), atol=1e-6)


def test_generate_errors():
    case_ = kf.case("keras3", "many_to_one")  # 4 features in, 1 out
    with pytest.raises(ValueError, match="feature sizes must match"):
        kf.load(case_, "keras").generate(np.zeros((1, 10, 4)), 3)
    enc_dec = kf.load(kf.case("keras3", "encoder_decoder_state"), "keras")
    with pytest.raises(ValueError, match="one input and one output"):
        enc_dec.generate(np.zeros((1, 3, 4)), 3)
    model = chain_model((2, None, 3), 8, 3, stateful=True)
    with pytest.raises(ValueError, match="batch size 2.*got 3 rows"):
        model.generate(np.zeros((3, 1, 3)), 3)
    with pytest.raises(ValueError, match="steps must be a non-negative int"):
        model.generate(np.zeros((2, 1, 3)), -1)
    with pytest.raises(ValueError, match="holds 4 streams; got 2 rows"):
        model.generate(np.zeros((2, 1, 3)), 2, state=model.new_state(4))
    fixed = chain_model((1, 5, 3), 8, 3, stateful=True)
    with pytest.raises(ValueError, match="exactly 5 timesteps"):
        fixed.generate(np.zeros((1, 5, 3)), 2)
    assert model.generate(np.zeros((2, 1, 3)), 0).shape == (2, 0, 3)


@pytest.mark.parametrize("batch,layers,td,width", [
    (1, 1, True, 4),      # few rows: the threads split the unit blocks
    (3, 2, False, 4),     # stacked LSTMs, unit split
    (9, 1, True, 4),      # many rows: the threads split the rows
    (2, 1, False, None),  # LSTM only (output = next input), no Dense
])
def test_feedback_loop_in_c_is_exact_on_any_number_of_threads(batch, layers, td, width):
    """Large enough for fl_feedback_generate to use a persistent thread team: the same values
    as a loop of predict calls, bitwise the same on 1 and 2 threads."""
    n_features = 4 if width else 128  # LSTM only: its 128 units are the next input
    kwargs = dict(stateful=True, td=td, return_sequences=td, seed=12, lstm_layers=layers)
    models = [chain_model((batch, None, n_features), 128, width, **kwargs) for _ in range(3)]
    x = np.random.default_rng(13).uniform(-1, 1, (batch, 3, n_features)).astype(np.float32)
    before = fastlstm.get_num_threads()
    try:
        fastlstm.set_num_threads(1)
        one = models[0].generate(x, 30)
        fastlstm.set_num_threads(2)
        two = models[1].generate(x, 30)
        # A worker joins at the step it arrives, from step 1 when still awake from the call
        # before: calls back to back reach that case too.
        again = [chain_model((batch, None, n_features), 128, width, **kwargs).generate(x, 30)
                 for _ in range(8)]
    finally:
        fastlstm.set_num_threads(before)
    assert np.array_equal(one, two)
    for i, other in enumerate(again):
        assert np.array_equal(one, other), f"call {i} after the first on 2 threads"

    np.testing.assert_allclose(two, _predict_loop(models[2], x, 30, slide=False), atol=1e-6)
    for name, (h, c) in models[1].get_states().items():
        assert np.array_equal(c, models[0].get_states()[name][1])


@pytest.mark.skipif(not sys.platform.startswith("linux") or not fastlstm.build_info()["openmp"],
                    reason="OpenMP thread binding as on Linux")
def test_threads_bound_to_one_cpu_work_alone_with_the_same_bits():
    """Both OpenMP threads bound to one CPU: the teams that split units (generate and a batch-1
    sequence) find no CPU of their own and let thread 0 work alone; same bits as one thread."""
    cpu = min(os.sched_getaffinity(0))
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        import numpy as np
        import fastlstm
        from small_models import chain_model
        rng = np.random.default_rng(5)
        x = rng.uniform(-1, 1, (1, 100, 8)).astype(np.float32)
        results = []
        for n in (1, 2):
            fastlstm.set_num_threads(n)
            gen = chain_model((1, None, 8), 128, 8, stateful=True, td=True,
                              return_sequences=True, seed=3)
            seq = chain_model((1, None, 8), 128, 1, seed=4)
            results.append((gen.generate(x[:, :3], 50), seq.predict(x)))
        assert np.array_equal(results[0][0], results[1][0]), "generate"
        assert np.array_equal(results[0][1], results[1][1]), "sequence"
        print("same bits")
    """)
    env = dict(os.environ, OMP_PLACES="{%d}" % cpu, OMP_PROC_BIND="true")
    run = subprocess.run([sys.executable, "-c", script, os.path.dirname(__file__)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "same bits" in run.stdout, run.stdout + run.stderr


@pytest.mark.parametrize("stateful", [False, True])
def test_generate_through_a_chain_with_no_op(stateful):
    """Input -> Dropout compiles to a stack with no op: each output is the input's last step,
    as a loop of predict calls gives (it once came back as zeros)."""
    batch_shape = [2, None, 3] if stateful else [None, 4, 3]
    config = {"module": "keras", "class_name": "Sequential", "config": {"name": "m", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer",
         "config": {"name": "x", "batch_shape": batch_shape}},
        {"module": "keras.layers", "class_name": "Dropout", "config": {"name": "d", "rate": 0.5}}]}}
    model = fastlstm.model_from_json(json.dumps(config))
    x = np.random.default_rng(3).uniform(-1, 1, (2, 4, 3)).astype(np.float32)
    got = model.generate(x, 5)
    assert np.array_equal(got, _predict_loop(model, x, 5, slide=not stateful))
    assert np.array_equal(got, np.repeat(x[:, -1:], 5, axis=1))
