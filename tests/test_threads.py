"""Thread teams under forced schedules: every worker joins late by construction (the test hook
of src/team.h), for each way a team splits work (rows, unit blocks), each cell, generation and
predict, odd and even step counts and join steps. Two threads must give the bits of one.

The expected values are fastlstm's own single-thread results, which the Keras fixtures check;
what is tested here is that the schedule never changes them."""
import contextlib

import numpy as np
import pytest

import fastlstm
from fastlstm import _kernels
from small_models import chain_model

pytestmark = pytest.mark.skipif(
    not fastlstm.build_info()["openmp"] or _kernels.max_threads() < 2,
    reason="needs OpenMP and two processors")


@contextlib.contextmanager
def threads(n, late_join=0):
    before = fastlstm.get_num_threads()
    fastlstm.set_num_threads(n)
    _kernels.set_late_join_for_tests(late_join)
    try:
        yield
    finally:
        _kernels.set_late_join_for_tests(0)
        fastlstm.set_num_threads(before)


# Sizes large enough that each path really runs on two threads (thresholds
# FL_FEEDBACK_MIN_MACS_PER_THREAD in src/feedback.c, FL_MIN_PARALLEL_MACS in src/rnn.c, two unit
# blocks per thread); every test checks that a team of two really shared the work.
CELLS = {
    "LSTM": dict(cell="LSTM", units=128),
    "GRU": dict(cell="GRU", units=160),
    "GRU_reset_before": dict(cell="GRU", units=160, reset_after=False),
    "SimpleRNN": dict(cell="SimpleRNN", units=256),
}
N_FEATURES = 4


def _generator(batch, cell, seed):
    spec = dict(CELLS[cell])
    units = spec.pop("units")
    return chain_model((batch, None, N_FEATURES), units, N_FEATURES, stateful=True, td=True,
                       return_sequences=True, seed=seed, **spec)


def _states(model):
    return {name: [a.copy() for a in arrays] for name, arrays in model.get_states().items()}


def _team_of(cell, batch):
    """Threads expected to share a call: the reset-before GRU never splits a row's units, so at
    batch 1 it runs alone."""
    return 1 if cell == "GRU_reset_before" and batch == 1 else 2


def _assert_same(one, two, what):
    assert one.shape == two.shape
    diff = np.abs(one - two).max() if one.size else 0.0
    assert np.array_equal(one, two), f"{what}: 2 threads differ from 1 (max |diff| {diff})"


# batch 1: split by unit blocks (thread 0 runs alone until the worker joins); batch 9: split
# by rows (rows never meet). The reset-before GRU never splits units, so batch 1 is one thread.
@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("batch", [1, 9])
@pytest.mark.parametrize("join_after", [1, 2, 5, 6])
@pytest.mark.parametrize("n_steps", [30, 31])
def test_generate_with_every_worker_late(cell, batch, join_after, n_steps):
    x = np.random.default_rng(1).uniform(-1, 1, (batch, 3, N_FEATURES)).astype(np.float32)
    with threads(1):
        alone = _generator(batch, cell, seed=7)
        expected = alone.generate(x, n_steps)
        # and a second call, continuing the carried state
        expected_next = alone.generate(expected[:, -1:], n_steps)
    with threads(2, late_join=join_after):
        team = _generator(batch, cell, seed=7)
        got = team.generate(x, n_steps)
        n_team, first_shared = _kernels.last_team_for_tests()
        got_next = team.generate(got[:, -1:], n_steps)
    by_units = batch == 1
    assert (n_team, first_shared) == (_team_of(cell, batch), join_after + 1 if by_units and
                                      _team_of(cell, batch) == 2 else 0)
    _assert_same(expected, got, "first generate")
    _assert_same(expected_next, got_next, "second generate")
    for name, arrays in _states(alone).items():
        for a, b in zip(arrays, _states(team)[name]):
            _assert_same(a, b, f"final state of {name}")


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("batch", [1, 9])
@pytest.mark.parametrize("n_timesteps", [40, 41])
def test_predict_with_every_worker_late(cell, batch, n_timesteps):
    x = np.random.default_rng(2).uniform(-1, 1, (batch, n_timesteps, N_FEATURES)).astype(
        np.float32)
    with threads(1):
        alone = _generator(batch, cell, seed=3)
        expected = [alone.predict(x), alone.predict(x[:, :5])]
    with threads(2, late_join=1):
        team = _generator(batch, cell, seed=3)
        got = [team.predict(x)]
        assert _kernels.last_team_for_tests() == (_team_of(cell, batch), 0)
        got.append(team.predict(x[:, :5]))
    for i, (a, b) in enumerate(zip(expected, got)):
        _assert_same(a, b, f"predict call {i}")
    for name, arrays in _states(alone).items():
        for a, b in zip(arrays, _states(team)[name]):
            _assert_same(a, b, f"final state of {name}")


def test_state_handles_with_every_worker_late():
    """A state handle's arrays are the carried state, as the model's own are."""
    x = np.random.default_rng(4).uniform(-1, 1, (9, 3, N_FEATURES)).astype(np.float32)
    with threads(1):
        model = _generator(9, "LSTM", seed=5)
        handle = model.new_state(9)
        expected = model.generate(x, 20, state=handle)
        expected_state = handle.as_dict()
    with threads(2, late_join=3):
        handle = model.new_state(9)
        got = model.generate(x, 20, state=handle)
        assert _kernels.last_team_for_tests() == (2, 0)
    _assert_same(expected, got, "generate on a handle")
    for name, arrays in expected_state.items():
        for a, b in zip(arrays, handle.as_dict()[name]):
            _assert_same(a, b, f"handle state of {name}")


def test_many_calls_alternating_schedules():
    """Calls with and without forced late joins, back to back on one model, continue one
    another's state exactly as a single thread does."""
    x = np.random.default_rng(6).uniform(-1, 1, (1, 2, N_FEATURES)).astype(np.float32)
    with threads(1):
        alone = _generator(1, "LSTM", seed=9)
        expected = [alone.generate(x, 11 + i) for i in range(6)]
    team = _generator(1, "LSTM", seed=9)
    for i in range(6):
        late = (i % 3) * 2
        with threads(2, late_join=late):
            got = team.generate(x, 11 + i)
            if late:
                assert _kernels.last_team_for_tests() == (2, late + 1)
        _assert_same(expected[i], got, f"call {i}")


# -- the thread count --------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2 ** 31, 2 ** 63, 10 ** 30])
def test_any_large_thread_count_means_every_processor(n):
    with threads(n):
        assert fastlstm.get_num_threads() == _kernels.max_threads()
        assert fastlstm.build_info()["num_threads"] == _kernels.max_threads()


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", None, True])
def test_bad_thread_counts_are_value_errors(bad):
    with pytest.raises(ValueError, match=r"number of threads must be an integer >= 1, got"):
        fastlstm.set_num_threads(bad)


def test_workspaces_are_sized_for_the_threads_that_run():
    """set_num_threads(10**6) once reserved workspace for a million threads (4 GiB here)."""
    import tracemalloc

    model = _generator(1, "LSTM", seed=1)
    x = np.zeros((1, 50, N_FEATURES), np.float32)
    with threads(10 ** 6):
        tracemalloc.start()
        try:
            model.predict(x)
            model.generate(x[:, :2], 10)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 16 << 20, f"peak {peak} bytes"


# Split by units, the threads meet once a step: a batch-1 sequence whose steps are smaller
# than FL_MIN_SPLIT_STEP_MACS (src/rnn.c, 12288 multiply-adds) runs on one thread, where two
# measured slower (bench/results/batch1.md); from there on two share it, with the same bits.
@pytest.mark.parametrize("cell, units, team", [("LSTM", 48, 1), ("LSTM", 64, 2),
                                               ("GRU", 48, 1), ("GRU", 64, 2)])
def test_batch1_sequence_splits_units_from_a_step_size(cell, units, team):
    n_features = 8  # LSTM(48): 4 x 48 x 56 = 10752 a step; GRU(64): 3 x 64 x 72 = 13824
    x = np.random.default_rng(6).uniform(-1, 1, (1, 100, n_features)).astype(np.float32)
    model = chain_model((1, None, n_features), units, 1, stateful=False, cell=cell, seed=8)
    with threads(1):
        expected = model.predict(x)
    with threads(2, late_join=1):
        got = model.predict(x)
        assert _kernels.last_team_for_tests() == (team, 0)
    _assert_same(expected, got, f"{cell}({units})")
