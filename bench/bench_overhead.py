#!/usr/bin/env python3
"""What a batch-1 one-step `predict` costs outside the kernels.

    python bench/bench_overhead.py

A model whose kernels cost almost nothing (`LSTM(1) -> Dense(1)` on 8 features, one timestep:
36 multiply-adds) is predicted in a loop, stateless and stateful, through `model.predict`;
the time per call is an upper bound on the Python/Cython path (validation, workspace, the call
into C). Issue 3 asks for under 2 us. Writes bench/results/overhead.md. Needs only fastlstm.
"""
from __future__ import annotations

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import numpy as np  # noqa: E402

import fastlstm  # noqa: E402


def tiny_model(stateful: bool):
    layers = [{"class_name": "InputLayer",
               "config": {"name": "x", "batch_shape": [1 if stateful else None, None, 8]}},
              {"class_name": "LSTM", "config": {"name": "lstm", "units": 1,
                                                "stateful": stateful}},
              {"class_name": "Dense", "config": {"name": "dense", "units": 1}}]
    model = fastlstm.model_from_json(json.dumps(
        {"module": "keras", "class_name": "Sequential",
         "config": {"name": "tiny", "layers": layers}}))
    rng = np.random.default_rng(0)
    for layer in model.weighted_layers():
        layer.set_weights([rng.uniform(-0.5, 0.5, s).astype(np.float32)
                           for s in layer.weight_shapes()])
    return model


def per_call(fn, x, calls=20000, rounds=9) -> float:
    for _ in range(1000):
        fn(x)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(x)
        times.append((time.perf_counter() - t0) / calls)
    return float(np.median(times))


def main():
    x = np.zeros((1, 1, 8), np.float32)
    rows = []
    for stateful in (False, True):
        model = tiny_model(stateful)
        model.predict(x)  # compiles the stack
        rows.append((("stateful" if stateful else "stateless"), per_call(model.predict, x)))
    text = "\n".join(
        ["# Per-call overhead of a batch-1 one-step predict", "",
         "`LSTM(1) -> Dense(1)` on one (1, 1, 8) input (36 multiply-adds: the kernels take a few "
         "hundred ns of this), `model.predict` in a loop, median of 9 rounds of 20000 calls "
         f"(`python bench/bench_overhead.py`); build_info `{fastlstm.build_info()}`.", "",
         "| model | time per predict call |", "|---|---:|"]
        + [f"| {name} | {t * 1e6:.2f} µs |" for name, t in rows]
        + ["", "Issue 3 asks for under 2 µs outside the kernel: every row above is an upper "
           "bound on that.", ""])
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "overhead.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
