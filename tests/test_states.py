"""States outside the weights: get/set/reset (per row), save/load, and explicit state handles."""
import threading

import h5py
import numpy as np
import pytest

import fastlstm
import keras_fixtures as kf
from small_models import chain_model, set_random_weights

RNG = np.random.default_rng(11)


def _x(*shape):
    return RNG.uniform(-1, 1, shape).astype(np.float32)


def test_get_set_states_round_trip():
    model = chain_model((2, None, 3), 6, 2, stateful=True, lstm_layers=2)
    model.predict(_x(2, 5, 3))
    saved = model.get_states()
    assert sorted(saved) == ["lstm_0", "lstm_1"]
    assert all(a.shape == (2, 6) for pair in saved.values() for a in pair)
    assert np.abs(saved["lstm_1"][0]).max() > 0
    x = _x(2, 3, 3)
    first = model.predict(x)
    model.set_states(saved)
    assert np.array_equal(model.predict(x), first)
    model.reset_states()
    assert all(not a.any() for pair in model.get_states().values() for a in pair)


def test_reset_states_of_some_rows_restarts_only_those_streams():
    model = chain_model((3, None, 2), 5, 1, stateful=True, seed=2)
    fresh = chain_model((3, None, 2), 5, 1, stateful=True, seed=2)
    warm, x = _x(3, 4, 2), _x(3, 2, 2)
    model.predict(warm)
    continued = chain_model((3, None, 2), 5, 1, stateful=True, seed=2)
    continued.predict(warm)
    model.reset_states(samples=[1])
    states = model.get_states()["lstm_0"]
    assert not states[0][1].any() and states[0][0].any() and states[0][2].any()
    got = model.predict(x)
    np.testing.assert_array_equal(got[[0, 2]], continued.predict(x)[[0, 2]])
    np.testing.assert_array_equal(got[1], fresh.predict(x)[1])
    with pytest.raises(ValueError, match=r"samples \[3\] are outside the batch of 3 rows"):
        model.reset_states(samples=3)
    with pytest.raises(TypeError, match="samples must be an int"):
        model.reset_states(samples=[0.5])


def test_save_and_load_states_into_a_fresh_instance(tmp_path):
    case_ = kf.case("keras2", "stacked_stateful")
    d = kf.data(case_)
    model = kf.load(case_, "h5")
    first = case_["protocol"][0]
    model.predict(d[first["inputs"][0]])
    path = tmp_path / "states.h5"
    model.save_states(path)
    other = kf.load(case_, "keras")
    other.load_states(path)
    x = _x(2, 3, 3)
    np.testing.assert_array_equal(other.predict(x), model.predict(x))


def test_load_states_rejects_other_files(tmp_path):
    model = chain_model((1, None, 3), 4, 3, stateful=True)
    with pytest.raises(FileNotFoundError, match="no such states file"):
        model.load_states(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a fastlstm states file"):
        model.load_states(junk)
    path = tmp_path / "s.h5"
    model.save_states(path)
    with h5py.File(path, "a") as f:
        del f["lstm_0/c"]
    with pytest.raises(ValueError, match="no h and c states for layer 'lstm_0'"):
        model.load_states(path)
    bigger = chain_model((2, None, 3), 4, 3, stateful=True)
    bigger.save_states(path)
    with pytest.raises(ValueError, match=r"has shape \(2, 4\), expected \(1, 4\)"):
        model.load_states(path)


def test_set_states_errors_leave_the_state_unchanged():
    model = chain_model((1, None, 3), 4, 3, stateful=True, lstm_layers=2)
    model.predict(_x(1, 2, 3))
    before = model.get_states()
    with pytest.raises(ValueError, match="no stateful recurrent layer named \\['nope'\\]"):
        model.set_states({"nope": before["lstm_0"]})
    with pytest.raises(ValueError, match=r"states\['lstm_1'\] c has shape \(1, 5\)"):
        model.set_states({"lstm_0": [np.ones((1, 4))] * 2,
                          "lstm_1": [np.ones((1, 4)), np.ones((1, 5))]})
    with pytest.raises(TypeError, match="must be a dict"):
        model.set_states([1, 2])
    after = model.get_states()
    assert all(np.array_equal(before[k][i], after[k][i]) for k in before for i in (0, 1))


def test_a_handle_serves_a_stateless_model_step_by_step():
    model = chain_model((None, None, 3), 7, 2, seed=4)
    x = _x(5, 9, 3)
    s = model.new_state(5)
    for t in range(9):
        y = model.predict(x[:, t:t + 1], state=s)
    np.testing.assert_allclose(y, model.predict(x), atol=1e-6)


def test_handles_are_independent_of_each_other_and_of_the_model():
    model = chain_model((2, None, 3), 6, 3, stateful=True, seed=6)
    own = model.get_states()
    a, b = model.new_state(2), model.new_state(3)
    xa, xb = _x(2, 4, 3), _x(3, 4, 3)
    ya1 = model.predict(xa, state=a)
    model.predict(xb, state=b)
    ya2 = model.predict(xa, state=a)
    ref = model.new_state(2)
    assert np.array_equal(model.predict(xa, state=ref), ya1)
    assert np.array_equal(model.predict(xa, state=ref), ya2)
    assert not np.array_equal(ya1, ya2)
    assert all(np.array_equal(own[k][i], model.get_states()[k][i]) for k in own for i in (0, 1))
    with pytest.raises(ValueError, match="holds 2 streams; got 3 rows"):
        model.predict(xb, state=a)
    other = chain_model((None, None, 3), 5, 3)
    with pytest.raises(ValueError, match="belongs to another model"):
        model.predict(xa, state=other.new_state(2))
    with pytest.raises(TypeError, match="must be a fastlstm.State"):
        model.predict(xa, state=model.get_states())


def test_stacked_handles_batch_the_ticks_of_several_streams():
    model = chain_model((None, None, 2), 8, 1, lstm_layers=2, seed=8)
    streams = [model.new_state(1) for _ in range(4)]
    alone = [model.new_state(1) for _ in range(4)]
    ticks = _x(4, 6, 2)
    for t in range(6):
        ready = [0, 2, 3] if t % 2 else [0, 1, 2, 3]   # stream 1 ticks every other time
        batch = fastlstm.stack_states([streams[i] for i in ready])
        y = model.predict(ticks[ready, t:t + 1], state=batch)
        for j, i in enumerate(ready):
            streams[i] = batch.rows(j)
            np.testing.assert_allclose(
                y[j], model.predict(ticks[i:i + 1, t:t + 1], state=alone[i])[0], atol=1e-6)
    for s, r in zip(streams, alone):
        for name in s.layer_names:
            np.testing.assert_allclose(s.as_dict()[name][1], r.as_dict()[name][1], atol=1e-6)
    with pytest.raises(ValueError, match="different models"):
        fastlstm.stack_states([streams[0], chain_model((None, None, 2), 5, 1).new_state(1)])
    with pytest.raises(ValueError, match=r"rows\(1, 2\) is outside a state of 1 rows"):
        streams[0].rows(1)


def test_handle_reset_of_one_row():
    model = chain_model((None, None, 2), 5, 2, seed=9)
    s = model.new_state(3)
    model.predict(_x(3, 4, 2), state=s)
    s.reset(samples=[2])
    h = s.as_dict()["lstm_0"][0]
    assert h[:2].any() and not h[2].any()


def test_handles_from_several_threads_match_serial_calls():
    model = chain_model((None, None, 4), 32, 4, seed=10)
    xs = [_x(2, 20, 4) for _ in range(8)]
    expected = []
    for x in xs:
        s = model.new_state(2)
        expected.append([model.predict(x[:, t:t + 5], state=s) for t in range(0, 20, 5)])
    results = [None] * len(xs)

    def serve(i):
        s = model.new_state(2)
        results[i] = [model.predict(xs[i][:, t:t + 5], state=s) for t in range(0, 20, 5)]

    threads = [threading.Thread(target=serve, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, exp in zip(results, expected):
        for g, e in zip(got, exp):
            assert np.array_equal(g, e)


@pytest.mark.parametrize("who", ["handle", "model"])
def test_a_stores_lock_holds_back_every_call_that_advances_it(who):
    """Each State has one lock (its store's): while it is held, predict, generate and
    reset_states on that state wait, and calls on another state do not."""
    model = chain_model((2, None, 4), 8, 4, stateful=True, seed=3)
    handle = model.new_state(2)
    other = model.new_state(2)
    state = handle if who == "handle" else model._own
    x = _x(2, 3, 4)
    calls = {"predict": lambda: model.predict(x, state=handle if who == "handle" else None),
             "generate": lambda: model.generate(x, 2, state=handle if who == "handle" else None),
             "reset": (handle.reset if who == "handle" else model.reset_states)}
    for name, call in calls.items():
        done = threading.Event()
        worker = threading.Thread(target=lambda: (call(), done.set()))
        with state._store.lock:
            worker.start()
            model.predict(x, state=other)  # another store: not held back
            assert not done.wait(0.3), f"{name} ran while the state's lock was held"
        worker.join(10)
        assert done.is_set(), f"{name} did not run once the lock was free"


def test_new_state_errors():
    model = chain_model((None, None, 2), 5, 2)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        model.new_state(0)
    assert "batch_size=3" in repr(model.new_state(3))


@pytest.mark.parametrize("kind", ["external_storage", "external_link"])
def test_load_states_never_reads_outside_the_file(tmp_path, kind):
    """A states file is read as weights are (fastlstm/io/h5_safety.py): a dataset whose bytes
    live in another file, or a link to another file, is refused naming the HDF5 object."""
    model = chain_model((1, None, 3), 4, 3, stateful=True)
    path = tmp_path / "s.h5"
    model.save_states(path)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["h"] = np.ones((1, 4), np.float32)
    with h5py.File(path, "a") as f:
        del f["lstm_0/h"]
        if kind == "external_storage":
            f["lstm_0"].create_dataset("h", shape=(1, 4), dtype=np.float32,
                                       external=[(str(secret), 0, 16)])
        else:
            f["lstm_0/h"] = h5py.ExternalLink(str(other), "/h")
    with pytest.raises(ValueError, match=r"HDF5 (object|dataset) /lstm_0/h .*external"):
        model.load_states(path)
    assert not model.get_states()["lstm_0"][0].any()


def _same_names_model():
    """A stateful LSTM 'l' feeding a nested model whose own stateful LSTM is also named 'l'
    (Keras allows a nested model's layer the name of an outer one)."""
    import json

    def layer(cls, name, inbound=None, **config):
        d = {"class_name": cls, "name": name, "config": dict(config, name=name)}
        if inbound:
            d["inbound_nodes"] = [[[inbound, 0, 0, {}]]]
        return d

    inner = {"class_name": "Sequential", "name": "inner", "config": {"name": "inner", "layers": [
        layer("InputLayer", "ix", batch_input_shape=[2, None, 3]),
        layer("LSTM", "l", units=2, stateful=True)]}, "inbound_nodes": [[["l", 0, 0, {}]]]}
    config = {"class_name": "Functional", "config": {"name": "outer", "layers": [
        layer("InputLayer", "a", batch_input_shape=[2, None, 4]),
        layer("LSTM", "l", "a", units=3, stateful=True, return_sequences=True), inner],
        "input_layers": [["a", 0, 0]], "output_layers": [["inner", 0, 0]]}}
    return set_random_weights(fastlstm.model_from_json(json.dumps(config), "2.15.0"), seed=5)


def test_layers_of_one_name_keep_their_own_states(tmp_path):
    """States go by the layer's name, or by its path through the nested models where two
    share one: nothing is merged or lost in get/set, save/load or pickling."""
    import pickle

    model = _same_names_model()
    x = _x(2, 5, 4)
    model.predict(x)
    states = model.get_states()
    assert sorted(states) == ["inner/l", "l"]
    assert [a.shape for a in states["l"]] == [(2, 3)] * 2
    assert [a.shape for a in states["inner/l"]] == [(2, 2)] * 2
    assert model.new_state(1).layer_names == ["l", "inner/l"]
    model.save_states(tmp_path / "s.h5")
    want = model.predict(x)
    for again in (pickle.loads(pickle.dumps(_reloaded(model, states))),
                  _loaded(tmp_path / "s.h5")):
        assert np.array_equal(again.predict(x), want)


def _reloaded(model, states):
    model.set_states(states)
    return model


def _loaded(path):
    fresh = _same_names_model()
    fresh.load_states(path)
    return fresh
