"""``fastlstm verify MODEL``: run Keras and fastlstm on the same random inputs and report, layer
by layer, how far fastlstm's outputs are from Keras's. Needs Keras installed (Keras 3, or
``tf_keras`` for Keras 2 files); fastlstm itself never imports it."""
from __future__ import annotations

import os
from typing import List, Tuple

import numpy as np

from . import _runtime
from .loading import load_model


class KerasUnavailable(ValueError):
    pass


def load_keras_model(path: str, keras_major: int):
    """The file in real Keras: tf_keras for Keras 1/2 files (``keras_major`` < 3, as fastlstm
    read it) when installed, since Keras 3 refuses Keras 2 LSTM configs; else Keras 3."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    candidates = ["tf_keras", "keras"] if keras_major < 3 else ["keras", "tf_keras"]
    errors = []
    for name in candidates:
        try:
            module = __import__(name)
        except ImportError as e:
            errors.append(f"{name}: {e}")
            continue
        return module.models.load_model(path, compile=False)
    raise KerasUnavailable("verify needs Keras to compare against: pip install tensorflow-cpu "
                           "(Keras 3) and, for Keras 2 files, tf-keras (" + "; ".join(errors) + ")")


def _inputs(model, batch: int, timesteps: int, seed: int) -> List[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = []
    for layer in model.input_layers:
        shape = list(layer.batch_shape)
        shape[0] = model.batch_size if model.stateful else batch
        if len(shape) > 1 and shape[1] is None:
            shape[1] = timesteps
        arrays.append(rng.uniform(-1, 1, shape).astype(np.float32))
    return arrays


def _diff(got, want) -> Tuple[float, bool]:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return float("inf"), False
    return float(np.abs(got - want).max(initial=0.0)), True


def verify(path: str, tolerance=(1e-5, 1e-4), seed: int = 0, batch: int = 4,
           timesteps: int = 7, print_fn=print) -> int:
    """Prints the table; returns 0 when every output is within atol + rtol * |keras|, else 1."""
    atol, rtol = tolerance
    fl = load_model(path)
    km = load_keras_model(path, fl.ctx.keras_major)
    xs = _inputs(fl, batch, timesteps, seed)
    rows, ok = [], True

    def check(label, cls, got, want):
        nonlocal ok
        err, same_shape = _diff(got, want)
        bound = atol + rtol * float(np.abs(np.asarray(want)).max(initial=0.0))
        passed = same_shape and err <= bound
        ok &= passed
        rows.append((label, cls, "shape differs" if not same_shape else f"{err:.2e}",
                     "ok" if passed else "FAIL"))

    feed = xs if len(xs) > 1 else xs[0]
    if not fl.stateful:
        # Every layer's first output, from a Keras model exposing it (layers of nested or shared
        # structure that Keras cannot expose alone are covered by the final outputs).
        record = {}
        fl.run([np.ascontiguousarray(x) for x in xs], _runtime.get_num_threads(), record=record)
        keras = type(km).__module__.split(".")[0]
        mod = __import__(keras)
        for layer in km.layers:
            if type(layer).__name__ == "InputLayer" or layer.name not in record:
                continue
            try:
                probe = mod.Model(km.inputs, layer.output)
                want = probe.predict(feed, verbose=0)
            except Exception:  # noqa: BLE001 (nested/shared layers have no single output)
                continue
            want = want[0] if isinstance(want, list) else want
            check(layer.name, type(layer).__name__, record[layer.name][0], want)
    # The model's outputs; stateful models through a protocol: two calls, a reset, a call.
    calls = [("call 1", False), ("call 2 (carried state)", False), ("after reset", True)] \
        if fl.stateful else [("model output", False)]
    for label, reset in calls:
        if reset:
            fl.reset_states()
            for layer in km.layers:
                if getattr(layer, "stateful", False):
                    layer.reset_states()
        got = fl.predict(feed)
        want = km.predict(feed, verbose=0)
        got = got if isinstance(got, list) else [got]
        want = want if isinstance(want, list) else [want]
        for i, (g, w) in enumerate(zip(got, want)):
            check(f"{label}" + (f" [{i}]" if len(got) > 1 else ""), "output", g, w)
    widths = [max(len(r[i]) for r in rows + [("layer", "class", "max |diff|", "")])
              for i in range(4)]
    print_fn(f"{path}: fastlstm vs Keras {km.__module__.split('.')[0]}, inputs "
             f"{[x.shape for x in xs]}, tolerance {atol:g} + {rtol:g}*|keras|")
    for r in [("layer", "class", "max |diff|", "")] + rows:
        print_fn("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print_fn("all within tolerance" if ok else "SOME OUTPUTS DIFFER FROM KERAS")
    return 0 if ok else 1
