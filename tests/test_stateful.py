"""Stateful models follow Keras: fixed batch size, state carried across calls until reset,
timesteps free to change between calls."""
import numpy as np
import pytest

import keras_fixtures as kf

FLAVOURS = ["keras2", "keras3"]
STATEFUL_CASES = [pytest.param(c, id=f"{c['flavour']}-{c['name']}")
                  for c in kf.cases() if c["stateful"]]


def first_predict(case):
    return next(op for op in case["protocol"] if op["op"] == "predict")


@pytest.mark.parametrize("case", STATEFUL_CASES)
def test_protocols_depend_on_carried_state(case):
    """Resetting before every call breaks the match with Keras, so the replays really test
    state carrying (a replay of a stateless model would pass either way)."""
    model = kf.load(case, "h5")
    d = kf.data(case)
    mismatched = 0
    for op in case["protocol"][1:]:
        if op["op"] != "predict":
            continue
        model.reset_states()
        xs = [d[k] for k in op["inputs"]]
        got = model.predict(xs[0] if len(xs) == 1 else xs, batch_size=op["batch_size"])
        got = [got] if len(op["outputs"]) == 1 else got
        if any(not np.allclose(g, d[k], atol=1e-4) for g, k in zip(got, op["outputs"])):
            mismatched += 1
    assert mismatched > 0


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_wrong_batch_size_names_both_sizes(flavour):
    case = kf.case(flavour, "stateful_generation_b2")
    model = kf.load(case, "h5")
    x = kf.data(case)[first_predict(case)["inputs"][0]]
    with pytest.raises(ValueError, match=r"expects batch size 2.*got 3 rows"):
        model.predict(np.concatenate([x, x[:1]]))
    with pytest.raises(ValueError, match=r"batch size 2.*got 1 rows"):
        model.predict(x[:1])
    with pytest.raises(ValueError, match="batch_size=2"):
        model.predict(np.concatenate([x, x]))
    with pytest.raises(ValueError, match=r"batch size 2.*batch_size=3"):
        model.predict(np.concatenate([x, x, x]), batch_size=3)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_reset_returns_to_the_first_call(flavour):
    case = kf.case(flavour, "stateful_forecasting")
    model = kf.load(case, "keras" if flavour == "keras3" else "h5")
    d = kf.data(case)
    op = first_predict(case)
    first = model.predict(d[op["inputs"][0]])
    kf.assert_close(first, d[op["outputs"][0]], "first call")
    second = model.predict(d[op["inputs"][0]])
    assert not np.allclose(first, second, atol=1e-4), "state did not carry over"
    model.reset_states()
    kf.assert_close(model.predict(d[op["inputs"][0]]), d[op["outputs"][0]], "after reset")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_timesteps_change_between_calls(flavour):
    case = kf.case(flavour, "stateful_forecasting")
    d = kf.data(case)
    lengths = {d[op["inputs"][0]].shape[1] for op in case["protocol"] if op["op"] == "predict"}
    assert len(lengths) >= 3 and 1 in lengths
    kf.replay(kf.load(case, "json"), case)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_batches_inside_one_call_carry_state(flavour):
    """predict(x, batch_size=B) on 2B rows: the second batch continues the first (Keras)."""
    case = kf.case(flavour, "stateful_batches")
    op = first_predict(case)
    d = kf.data(case)
    assert d[op["inputs"][0]].shape[0] == 2 * op["batch_size"]
    model = kf.load(case, "h5")
    kf.assert_close(model.predict(d[op["inputs"][0]], batch_size=op["batch_size"]),
                    d[op["outputs"][0]], "two batches in one call")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_stateless_models_take_any_batch_size(flavour):
    case = kf.case(flavour, "many_to_one")
    d = kf.data(case)
    ops = [op for op in case["protocol"] if op["op"] == "predict"]
    x = np.concatenate([d[op["inputs"][0]] for op in ops])
    y = np.concatenate([d[op["outputs"][0]] for op in ops])
    model = kf.load(case, "h5")
    kf.assert_close(model.predict(x), y, "all rows at once")
    for i in range(len(x)):
        kf.assert_close(model.predict(x[i:i + 1]), y[i:i + 1], f"row {i} alone")
