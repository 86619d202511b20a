#!/usr/bin/env python3
"""Autoregressive generation: fastlstm's `generate` against Python loops of one-step calls.

    python bench/bench_generate.py [--steps 1000] [--rounds 15]

Workload (issue 4): stateful batch-1 `LSTM(64, return_sequences) -> TimeDistributed(Dense(8))`
on 8 features, built with Keras 3 (seeded random weights, saved as .keras). After a one-step
warm-up input, each output is fed back as the next input for `--steps` steps:
- fastlstm `model.generate(x, steps)`: the loop in C;
- fastlstm: a Python loop of `model.predict` on one step;
- LiteRT: a Python loop of `interpreter.invoke()` on a frozen twin that takes and returns the
  state (h, c), the fastest per-step peer of bench/run_bench.py.
All three are checked to produce the same trajectory (first 100 steps against Keras's own
predict loop), then timed interleaved with medians, as bench/run_bench.py does. Writes
bench/results/generate.md and generate.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_bench as rb  # noqa: E402  (sets the TF environment before TF is imported)
import numpy as np  # noqa: E402

FEATURES, UNITS = 8, 64


def build_keras(keras, seed, tmpdir):
    keras.utils.set_random_seed(seed)
    inp = keras.Input(batch_shape=(1, 1, FEATURES), name="x")
    seq = keras.layers.LSTM(UNITS, stateful=True, return_sequences=True, name="lstm")(inp)
    out = keras.layers.TimeDistributed(keras.layers.Dense(FEATURES, name="dense"), name="td")(seq)
    model = keras.Model(inp, out, name="bench_generate")
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(-rb.WEIGHT_SCALE, rb.WEIGHT_SCALE, w.shape).astype(np.float32)
               for w in model.get_weights()]
    model.set_weights(weights)
    path = os.path.join(tmpdir, "generate.keras")
    model.save(path)
    return model, weights, path


class LitertStepper:
    """The LiteRT step loop: a frozen functional twin (x, h, c) -> (y, h, c)."""

    def __init__(self, env, weights, threads):
        tf, keras = env.tf, env.keras
        from ai_edge_litert.interpreter import Interpreter
        from tensorflow.python.framework.convert_to_constants import \
            convert_variables_to_constants_v2
        x_in = keras.Input(batch_shape=(1, 1, FEATURES), name="x")
        h_in = keras.Input(batch_shape=(1, UNITS), name="h")
        c_in = keras.Input(batch_shape=(1, UNITS), name="c")
        seq, h, c = keras.layers.LSTM(UNITS, return_sequences=True, return_state=True,
                                      name="lstm")(x_in, initial_state=[h_in, c_in])
        y = keras.layers.TimeDistributed(keras.layers.Dense(FEATURES), name="td")(seq)
        twin = keras.Model([x_in, h_in, c_in], [y, h, c])
        twin.set_weights(weights)
        sig = [tf.TensorSpec((1, 1, FEATURES), tf.float32, name="x"),
               tf.TensorSpec((1, UNITS), tf.float32, name="h"),
               tf.TensorSpec((1, UNITS), tf.float32, name="c")]
        fn = tf.function(lambda x, h, c: twin([x, h, c], training=False), input_signature=sig)
        frozen = convert_variables_to_constants_v2(fn.get_concrete_function())
        tflite = tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert()
        self.it = Interpreter(model_content=tflite, num_threads=threads)
        self.it.allocate_tensors()
        ins = {d["name"].split(":")[0].split("_")[-1]: d["index"]
               for d in self.it.get_input_details()}
        self.ix, self.ih, self.ic = ins["x"], ins["h"], ins["c"]
        # Outputs: y is the only (1, 1, 8) one; h and c are told apart on a known call.
        details = self.it.get_output_details()
        outs = [d["index"] for d in details]
        self.oy = next(d["index"] for d in details if tuple(d["shape"]) == (1, 1, FEATURES))
        rng = np.random.default_rng(1)
        probe = [rng.uniform(-.5, .5, s).astype(np.float32)
                 for s in ((1, 1, FEATURES), (1, UNITS), (1, UNITS))]
        ref = [np.asarray(r) for r in twin(probe, training=False)]
        self._set(*probe)
        self.it.invoke()
        rest = [i for i in outs if i != self.oy]
        self.oh = min(rest, key=lambda i: np.abs(self.it.get_tensor(i) - ref[1]).max())
        self.oc = next(i for i in rest if i != self.oh)

    def _set(self, x, h, c):
        self.it.set_tensor(self.ix, x)
        self.it.set_tensor(self.ih, h)
        self.it.set_tensor(self.ic, c)

    def run(self, x, steps):
        it, out = self.it, np.empty((1, steps, FEATURES), np.float32)
        h = c = np.zeros((1, UNITS), np.float32)
        for k in range(steps):
            self._set(x, h, c)
            it.invoke()
            y = it.get_tensor(self.oy)
            h, c = it.get_tensor(self.oh), it.get_tensor(self.oc)
            out[0, k] = y[0, 0]
            x = y
        return out


def fastlstm_loop(model, x, steps):
    model.reset_states()
    out = np.empty((1, steps, FEATURES), np.float32)
    predict = model.predict
    for k in range(steps):
        x = predict(x)
        out[0, k] = x[0, 0]
    return out


def fastlstm_generate(model, x, steps):
    model.reset_states()
    return model.generate(x, steps)


def keras_loop(model, x, steps):
    rb.keras_reset(model)
    out = []
    for _ in range(steps):
        x = np.asarray(model(x, training=False))
        out.append(x[0, 0])
    return np.stack(out)[None]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default=os.path.join(rb.HERE, "results"))
    args = ap.parse_args()
    env = rb.Env(args.threads)
    fl = env.fastlstm
    fl.set_num_threads(args.threads)
    x0 = np.random.default_rng(3).uniform(-1, 1, (1, 1, FEATURES)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        kmodel, weights, path = build_keras(env.keras, 7, tmp)
        model = fl.load_model(path)
        systems = {"fastlstm generate": lambda: fastlstm_generate(model, x0, args.steps),
                   "fastlstm predict loop": lambda: fastlstm_loop(model, x0, args.steps)}
        litert = LitertStepper(env, weights, args.threads)
        systems["litert step loop"] = lambda: litert.run(x0, args.steps)
        ref = keras_loop(kmodel, x0, 100)
        errors = {}
        for name, call in systems.items():
            got = call()
            errors[name] = float(np.abs(got[:, :100] - ref).max())
            if not errors[name] <= 1e-4:
                raise SystemExit(f"{name} departs from Keras's predict loop by {errors[name]}")
        samples = {name: [] for name in systems}
        for _ in range(2):  # warm-up
            for call in systems.values():
                call()
        for r in range(args.rounds):
            order = list(systems)[r % len(systems):] + list(systems)[:r % len(systems)]
            for name in order:
                rb.quiesce()
                t0 = time.perf_counter()
                systems[name]()
                samples[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(s) for name, s in samples.items()}
    gen = med["fastlstm generate"]
    rows = [f"| {name} | {med[name] * 1e3:.2f} ms | {med[name] / args.steps * 1e6:.2f} µs | "
            f"{med[name] / gen:.1f}× | {errors[name]:.1e} |" for name in sorted(med, key=med.get)]
    info = rb.machine_info()
    text = "\n".join([
        "# Autoregressive generation",
        "",
        f"Stateful batch-1 `LSTM({UNITS}, return_sequences) -> TimeDistributed(Dense({FEATURES}))`, "
        f"{FEATURES} features; a one-step input, then {args.steps} outputs each fed back as the "
        f"next input. {args.threads} threads; median of {args.rounds} interleaved rounds "
        f"(`python bench/bench_generate.py`).",
        "",
        f"- machine: {info.get('Model name', '?')}, {info.get('CPU(s)', '?')} CPUs; fastlstm "
        f"{info.get('fastlstm_git', '')}; build_info `{fl.build_info()}`",
        f"- versions: {', '.join(f'{k} {v}' for k, v in env.versions.items())}",
        "",
        "| system | whole run | per step | time ÷ generate | max abs diff vs Keras loop "
        "(first 100 steps) |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
        f"**generate vs LiteRT step loop: {med['litert step loop'] / gen:.1f}× (target ≥ 10×); "
        f"vs fastlstm predict loop: {med['fastlstm predict loop'] / gen:.1f}× (target ≥ 3×)**",
        ""])
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "generate.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "generate.json"), "w") as f:
        json.dump({"steps": args.steps, "threads": args.threads, "median_s": med,
                   "samples_s": samples, "max_abs_diff_vs_keras": errors,
                   "versions": env.versions, "machine": info}, f, indent=1, default=str)
    print(text)


if __name__ == "__main__":
    main()
