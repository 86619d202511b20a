"""Access to the Keras-recorded fixtures (see fixtures/README.md) and the comparison rule."""
from __future__ import annotations

import json
import os

import numpy as np

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
# |got - keras| <= ATOL + RTOL * |keras|
ATOL, RTOL = 1e-5, 1e-4


def manifest():
    with open(os.path.join(FIXTURES, "manifest.json")) as f:
        return json.load(f)


def cases(flavour=None, name=None):
    out = [c for c in manifest()["cases"]
           if (flavour is None or c["flavour"] == flavour) and (name is None or c["name"] == name)]
    return out


def case(flavour, name):
    found = cases(flavour, name)
    assert found, f"no fixture {flavour}/{name}"
    return found[0]


def path(rel):
    return os.path.join(FIXTURES, rel)


def data(case_):
    with np.load(path(case_["data"])) as d:
        return {k: d[k] for k in d.files}


# Every way a case can be saved: files keys loaded by load_model, or a JSON config + weights pair.
# keras1*: the Keras 2 model rewritten in the Keras 1.2.2 layout; cudnn*: its LSTM/GRU layers as
# CuDNNLSTM/CuDNNGRU (fixtures/cases_legacy_formats.py).
# int_*: every weight dataset rewritten as int32 (fixtures/cases_reliability.py).
FORMATS = ("keras", "h5", "json", "legacy", "keras1", "keras1_json", "cudnn", "cudnn_legacy",
           "cudnn_weights", "int_keras", "int_h5", "int_json")
JSON_AND_WEIGHTS = {"json": ("json", "weights"), "keras1_json": ("keras1_json", "keras1_weights"),
                    "cudnn_weights": ("json", "cudnn_weights"), "int_json": ("json", "int_weights")}


def format_params(flavours=("keras2", "keras3")):
    """(case, format) pairs for parametrize, with readable ids."""
    import pytest

    params = []
    for c in manifest()["cases"]:
        if c["flavour"] not in flavours:
            continue
        for fmt in FORMATS:
            if fmt in c["files"]:
                params.append(pytest.param(c, fmt, id=f"{c['flavour']}-{c['name']}-{fmt}"))
    return params


def load(case_, fmt, **kwargs):
    import fastlstm

    files = case_["files"]
    if fmt in JSON_AND_WEIGHTS:
        config_key, weights_key = JSON_AND_WEIGHTS[fmt]
        with open(path(files[config_key])) as f:
            model = fastlstm.model_from_json(f.read(), **kwargs)
        model.load_weights(path(files[weights_key]))
        return model
    return fastlstm.load_model(path(files[fmt]), **kwargs)


def assert_close(got, expected, what=""):
    got = np.asarray(got)
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, Keras {expected.shape}"
    assert got.dtype == np.float32, f"{what}: dtype {got.dtype}"
    err = np.abs(got.astype(np.float64) - expected)
    bound = ATOL + RTOL * np.abs(expected)
    bad = err > bound
    assert not bad.any(), (f"{what}: {bad.sum()} of {bad.size} values differ from Keras; "
                           f"max |diff| {err.max():.3g}, worst at {np.unravel_index(np.argmax(err - bound), err.shape)}")


def replay(model, case_, d=None, label=""):
    """Run the recorded protocol on a model; every predict output must match Keras."""
    d = data(case_) if d is None else d
    n_calls = 0
    for i, op in enumerate(case_["protocol"]):
        if op["op"] == "reset":
            model.reset_states()
            continue
        assert op["op"] == "predict", op
        xs = [d[k] for k in op["inputs"]]
        got = model.predict(xs if len(xs) > 1 else xs[0], batch_size=op.get("batch_size"))
        if len(op["outputs"]) == 1:
            got = [got]
        assert len(got) == len(op["outputs"]), f"{label} call {i}: {len(got)} outputs"
        for j, (g, k) in enumerate(zip(got, op["outputs"])):
            assert_close(g, d[k], f"{label} {case_['flavour']}/{case_['name']} call {i} output {j}")
        n_calls += 1
    assert n_calls > 0
    return n_calls
