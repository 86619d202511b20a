"""A small pure-NumPy LSTM with Keras's equations, in float64, for equivalence tests of the C
kernel on shapes and activations the Keras fixtures do not reach (unit counts that are not
multiples of the kernel's block, long sequences). Keras itself stays the oracle for semantics."""
import math

import numpy as np

_erf = np.vectorize(math.erf)


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


ACTIVATIONS = {
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "hard_sigmoid_k2": lambda x: np.clip(0.2 * x + 0.5, 0, 1),
    "hard_sigmoid_k3": lambda x: np.clip(x / 6 + 0.5, 0, 1),
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2))),
    "softmax": _softmax,
}


def lstm_reference(x, kernel, recurrent, bias, activation="tanh",
                   recurrent_activation="sigmoid", go_backwards=False, h0=None, c0=None):
    """Returns (sequence output in processing order, h, c)."""
    act, rec = ACTIVATIONS[activation], ACTIVATIONS[recurrent_activation]
    x = x.astype(np.float64)
    n_batch, n_timesteps, _ = x.shape
    u = recurrent.shape[0]
    h = np.zeros((n_batch, u)) if h0 is None else h0.astype(np.float64)
    c = np.zeros((n_batch, u)) if c0 is None else c0.astype(np.float64)
    seq = []
    steps = range(n_timesteps - 1, -1, -1) if go_backwards else range(n_timesteps)
    for t in steps:
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f, g, o = (z[:, k * u:(k + 1) * u] for k in range(4))
        c = rec(f) * c + rec(i) * act(g)
        h = rec(o) * act(c)
        seq.append(h)
    return np.stack(seq, 1), h, c
