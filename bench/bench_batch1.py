#!/usr/bin/env python3
"""Batch-1 units sweep: fastlstm's one-step and 100-step latency against the machine's bounds.

    python bench/bench_batch1.py [--rounds 15] [--units 32,64,128,256,512,1024]

For `LSTM(units) -> Dense(1)` and `GRU(units) -> Dense(1)` on 8 features, batch 1:
- one step: a stateful model, one `predict` per step (what a stream costs per tick, the
  Python call included);
- 100 steps: one `predict` of a (1, 100, 8) sequence, per step;
each on one thread and on two (the unit-parallel split: a barrier per step), interleaved,
medians of `--rounds` rounds. Beside each time: GFLOP/s (2 x gates x units x (features +
units) per step) and the bound estimated for that size from `bench/roofline.c --batch1`,
compiled and run here: at batch 1 every weight is read once per step for one multiply-add, so a
step costs at least its weight bytes (per core) over the bandwidth of the cache level that holds
them; on two cores each reads half and they meet once per step (one core-to-core round trip).
Needs only fastlstm and a C compiler (`cc`). Writes bench/results/batch1.md and batch1.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import numpy as np

import fastlstm
from fastlstm import _kernels

FEATURES = 8
GATES = {"LSTM": 4, "GRU": 3}


def build(cell: str, units: int, stateful: bool):
    batch_shape = [1, 1 if stateful else None, FEATURES]
    layers = [{"class_name": "InputLayer", "config": {"name": "x", "batch_shape": batch_shape}},
              {"class_name": cell, "config": {"name": "rnn", "units": units,
                                              "stateful": stateful}},
              {"class_name": "Dense", "config": {"name": "head", "units": 1}}]
    spec = {"module": "keras", "class_name": "Sequential",
            "config": {"name": "m", "layers": layers}}
    model = fastlstm.model_from_json(json.dumps(spec))
    rng = np.random.default_rng(units)
    for layer in model.weighted_layers():
        layer.set_weights([rng.uniform(-0.3, 0.3, s).astype(np.float32)
                           for s in layer.weight_shapes()])
    return model


def roofline():
    """Bandwidths and the core-to-core round trip from bench/roofline.c --batch1."""
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "roofline")
        subprocess.run(["cc", "-O3", "-o", exe, os.path.join(ROOT, "bench", "roofline.c"),
                        "-lpthread"], check=True)
        out = subprocess.run([exe, "--batch1"], check=True, capture_output=True,
                             text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def bound_us(cell, units, cores, roof):
    """Estimated lower bound of one step, in us, and what sets it.

    Each core reads its share of the weights once a step. The kernels walk the blocks backward
    on every other step, so up to a cache's size of them is still there from the step before:
    the bound reads the first L1-size bytes from L1, the next (L2 - L1) from L2 and the rest
    from L3, each at the batch-1 product's rate for that level; or the FMA time, if larger."""
    per_core = 4.0 * GATES[cell] * units * (FEATURES + units) / cores
    parts = []
    rest, below = per_core, 0.0
    for level, size, bw in (("L1", roof["l1_bytes"], roof["l1_gbs"]),
                            ("L2", roof["l2_bytes"], roof["l2_gbs"]),
                            ("L3", float("inf"), roof["l3_gbs"])):
        take = min(rest, size - below)
        if take > 0:
            parts.append((take / bw / 1e3, level))
        rest -= take
        below = size
    mem_us = sum(t for t, _ in parts)
    fma_us = 2.0 * GATES[cell] * units * (FEATURES + units) / cores / roof["fma_gflops"] / 1e3
    if mem_us >= fma_us:
        us, why = mem_us, max(parts)[1]
    else:
        us, why = fma_us, "FMA"
    if cores > 1:
        us += roof["round_trip_ns"] / 1e3
        why += " + round trip"
    return us, why


def threads_picked(step_model, x1, seq_model, x100):
    """How many threads fastlstm runs each workload on when given two (the team of the last
    call, recorded only while the test hook is on)."""
    fastlstm.set_num_threads(2)
    _kernels.set_late_join_for_tests(1)
    try:
        step_model.predict(x1)
        picked = {"one step": _kernels.last_team_for_tests()[0]}
        seq_model.predict(x100)
        picked["100 steps"] = _kernels.last_team_for_tests()[0]
    finally:
        _kernels.set_late_join_for_tests(0)
    step_model.reset_states()
    return picked


def time_round(fn, n_calls):
    t0 = time.perf_counter()
    for _ in range(n_calls):
        fn()
    return (time.perf_counter() - t0) / n_calls


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--units", default="32,64,128,256,512,1024")
    ap.add_argument("--cells", default="LSTM,GRU")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    unit_list = [int(u) for u in args.units.split(",")]
    roof = roofline()
    print(f"roofline: {roof}", file=sys.stderr)
    x1 = np.random.default_rng(1).uniform(-1, 1, (1, 1, FEATURES)).astype(np.float32)
    x100 = np.random.default_rng(2).uniform(-1, 1, (1, 100, FEATURES)).astype(np.float32)
    rows = []
    for cell in args.cells.split(","):
        for units in unit_list:
            step_model, seq_model = build(cell, units, True), build(cell, units, False)
            flops = 2.0 * GATES[cell] * units * (FEATURES + units)
            # calls per round: a round lasts ~20 ms
            n_step = max(20, int(2e-2 / (1e-6 + flops / 60e9)))
            n_seq = max(3, int(2e-2 / (100e-6 * 0.2 + 100 * flops / 60e9)))
            samples = {(w, t): [] for w in ("one step", "100 steps") for t in (1, 2)}
            picked = threads_picked(step_model, x1, seq_model, x100)
            for _ in range(args.rounds):
                for threads in (1, 2):
                    fastlstm.set_num_threads(threads)
                    step_model.predict(x1)
                    samples[("one step", threads)].append(
                        time_round(lambda m=step_model: m.predict(x1), n_step))
                    seq_model.predict(x100)
                    samples[("100 steps", threads)].append(
                        time_round(lambda m=seq_model: m.predict(x100), n_seq) / 100)
            for workload in ("one step", "100 steps"):
                t1 = statistics.median(samples[(workload, 1)]) * 1e6
                t2 = statistics.median(samples[(workload, 2)]) * 1e6
                b1, why1 = bound_us(cell, units, 1, roof)
                b2, why2 = bound_us(cell, units, 2, roof)
                rows.append({"cell": cell, "units": units, "workload": workload,
                             "us_1": t1, "us_2": t2, "gflops_1": flops / t1 / 1e3,
                             "gflops_2": flops / t2 / 1e3, "bound_1": b1, "bound_2": b2,
                             "bound_1_why": why1, "bound_2_why": why2,
                             "threads_picked": picked[workload],
                             "weights_kb": 4.0 * GATES[cell] * units * (FEATURES + units) / 1024,
                             "samples_1": samples[(workload, 1)],
                             "samples_2": samples[(workload, 2)]})
                print(f"{cell} {units} {workload}: 1t {t1:.3f} us/step, 2t {t2:.3f}",
                      file=sys.stderr)
    roof["round_trip_ns_after"] = roofline()["round_trip_ns"]
    write(args.out, rows, roof, args)


def machine():
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name", platform.processor() or platform.machine())
    if "cpu family" in fields:
        name += f", family {fields['cpu family']} model {fields.get('model', '?')}"
    return f"{name}, {os.cpu_count()} CPUs"


def write(out_dir, rows, roof, args):
    os.makedirs(out_dir, exist_ok=True)
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "src", "fastlstm"],
                               capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        rev, dirty = "?", ""
    info = fastlstm.build_info()
    lines = [
        "# Batch-1 units sweep", "",
        (f"`LSTM(units) -> Dense(1)` and `GRU(units) -> Dense(1)`, {FEATURES} features, batch 1:"
        " *one step* is a stateful model called once per step (`predict` on (1, 1, 8), the "
        "Python call included); *100 steps* one `predict` of (1, 100, 8), per step. "
        f"Medians of {args.rounds} interleaved rounds (`python bench/bench_batch1.py`)."), "",
        (f"- machine: {machine()}; fastlstm {rev}{' (+ uncommitted changes)' if dirty else ''};"
        f" ISA {info['isa']}, OpenMP {info['openmp']}"),
        (f"- roofline of one core (`bench/roofline.c --batch1`): batch-1 product over weights in"
        f" L1 {roof['l1_gbs']:.0f} GB/s, L2 {roof['l2_gbs']:.0f} GB/s, L3 {roof['l3_gbs']:.0f}"
        f" GB/s; FMA peak {roof['fma_gflops']:.0f} GFLOP/s; core-to-core round trip"
        f" {roof['round_trip_ns']:.0f} ns"),
        ("- bound: a step reads every weight once (one multiply-add per weight), so it takes at"
         " least its weight bytes per core over the rates above. The kernels walk the blocks"
         " backward every other step, so at best the first"
         f" {roof['l1_bytes'] / 1024:.0f} KB come from L1, up to"
         f" {roof['l2_bytes'] / 1024:.0f} KB from L2 and the rest from L3 (the level named is"
         " the one that takes longest); or the FMA time, if larger. Two cores add one round"
         " trip a step. The bound leaves out the gate update and, for one step, the Python"
         " call."),
        ("- core-to-core round trip measured again after the sweep:"
         f" {roof['round_trip_ns_after']:.0f} ns (on this VM it moves between ~80 and ~520 ns"
         " from minute to minute, with where the host runs the two vCPUs; the two-core figures"
         " depend on it)"), "",
        ("| cell | units | weights | workload | 1 core µs/step | GFLOP/s | bound (1 core) |"
        " 2 cores µs/step | GFLOP/s | bound (2 cores) | 2 cores ÷ 1 core | threads fastlstm"
        " picks |"),
        "|---|---:|---:|---|---:|---:|---|---:|---:|---|---:|---:|"]
    for r in rows:
        picks = r["threads_picked"]
        lines.append(
            f"| {r['cell']} | {r['units']} | {r['weights_kb']:.0f} KB | {r['workload']} |"
            f" {r['us_1']:.3f} | {r['gflops_1']:.1f} | {r['bound_1']:.3f} ({r['bound_1_why']}) |"
            f" {r['us_2']:.3f} | {r['gflops_2']:.1f} | {r['bound_2']:.3f} ({r['bound_2_why']}) |"
            f" {r['us_1'] / r['us_2']:.2f}× | {picks} |")
    lines += ["", ("\"2 cores ÷ 1 core\" above 1 means the two-core split is faster. With"
              " `set_num_threads(2)` fastlstm itself chooses: the last column is what it runs"
              " (fl_team_plan: two threads from the per-step size where the split measured"
              " faster).")]
    with open(os.path.join(out_dir, "batch1.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, "batch1.json"), "w") as f:
        json.dump({"machine": machine(), "source": rev, "build_info": info, "roofline": roof,
                   "rows": rows}, f, indent=1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
