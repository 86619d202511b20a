"""Layer semantics against Keras: every activation as LSTM activation and recurrent
activation, every Dense activation, LSTM options that must not change inference."""
import numpy as np
import pytest

import keras_fixtures as kf
from fastlstm.activations import C_IDS

FLAVOURS = ["keras2", "keras3"]


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("name", ["activations_lstm", "activations_dense"])
def test_every_activation_matches_keras(flavour, name):
    """Each branch of the model is one activation; report every failing branch by name."""
    case = kf.case(flavour, name)
    d = kf.data(case)
    model = kf.load(case, "h5")
    failures = []
    for op in case["protocol"]:
        if op["op"] == "reset":
            continue
        got = model.predict(d[op["inputs"][0]])
        for branch, g, k in zip(case["branches"], got, op["outputs"]):
            try:
                kf.assert_close(g, d[k], branch["layer"])
            except AssertionError as e:
                failures.append(str(e))
    assert not failures, "\n".join(failures)


def test_activation_fixtures_cover_every_supported_name():
    """Every activation fastlstm implements is exercised against Keras 3 as an LSTM activation
    and a recurrent activation."""
    case = kf.case("keras3", "activations_lstm")
    as_act = {b["activation"] for b in case["branches"]}
    as_rec = {b["recurrent_activation"] for b in case["branches"]}
    aliases = {"swish": "silu", "hard_swish": "hard_silu"}
    covered_act = {aliases.get(a, a) for a in as_act}
    covered_rec = {aliases.get(a, a) for a in as_rec}
    implemented = {n for n in C_IDS if n not in ("hard_sigmoid_k2", "hard_sigmoid_k3",
                                                 "gelu_tanh", "relu_general")} | {"hard_sigmoid"}
    assert implemented <= covered_act, implemented - covered_act
    assert implemented <= covered_rec, implemented - covered_rec


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_lstm_options_do_not_change_inference(flavour):
    """use_bias=False, implementation=1, dropout, recurrent_dropout, unroll, unit_forget_bias."""
    case = kf.case(flavour, "lstm_options")
    for fmt in case["files"]:
        if fmt != "weights":
            kf.replay(kf.load(case, fmt), case, label=fmt)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_go_backwards_output_order(flavour):
    """With go_backwards and return_sequences, output step 0 belongs to the last input step."""
    case = kf.case(flavour, "go_backwards")
    d = kf.data(case)
    op = next(op for op in case["protocol"] if op["op"] == "predict")
    x = d[op["inputs"][0]]
    model = kf.load(case, "h5")
    seq, last = model.predict(x)
    kf.assert_close(seq, d[op["outputs"][0]], "sequence")
    kf.assert_close(last, d[op["outputs"][1]], "last")
    flipped_seq, _ = model.predict(x[:, ::-1])
    assert not np.allclose(flipped_seq, seq, atol=1e-4)
