"""The ``fastlstm`` command (also ``python -m fastlstm``): info, predict, bench, verify, demo.

User errors (bad files, bad inputs, bad options) print one line and exit with status 1; usage
errors exit 2 (argparse); ``verify`` exits 1 when an output departs from Keras beyond the
tolerance. No traceback for any of them.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import List, Optional

import numpy as np

from . import _runtime
from .errors import ModelFormatError, UnsupportedConfigError

USER_ERRORS = (ModelFormatError, UnsupportedConfigError, ValueError, TypeError, FileNotFoundError,
               KeyError)


class CommandError(Exception):
    """A user error with its message."""


# -- input/output files -------------------------------------------------------------------------
def read_array(path: str, key: Optional[str], shape) -> np.ndarray:
    """.npy, .npz (``key`` or its only array) or .csv. A CSV holds one sample per row, its
    timesteps x features flattened, when the model fixes its timesteps; otherwise one sequence,
    one timestep per row (shape (1, rows, features))."""
    ext = os.path.splitext(path)[1].lower()
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such input file: {path!r}")
    if ext == ".npy":
        return np.load(path, allow_pickle=False)
    if ext == ".npz":
        with np.load(path, allow_pickle=False) as z:
            names = list(z.keys())
            if key is None and len(names) != 1:
                raise CommandError(f"{path!r} holds arrays {names}; choose one with --key")
            return z[key if key is not None else names[0]]
    if ext == ".csv":
        table = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
        timesteps, features = shape[1], shape[2]
        if timesteps is not None:
            if table.shape[1] != timesteps * features:
                raise CommandError(f"{path!r} has {table.shape[1]} columns; the model takes "
                                   f"{timesteps} timesteps x {features} features = "
                                   f"{timesteps * features} per row")
            return table.reshape(len(table), timesteps, features)
        if table.shape[1] != features:
            raise CommandError(f"{path!r} has {table.shape[1]} columns; the model takes "
                               f"{features} features per timestep (one timestep per row)")
        return table[None]
    raise CommandError(f"input {path!r}: expected a .npy, .npz or .csv file")


def write_array(path: str, y: np.ndarray) -> None:
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        np.save(path, y)
    elif ext == ".npz":
        np.savez(path, y=y)
    elif ext == ".csv":
        np.savetxt(path, y.reshape(len(y), -1), delimiter=",", fmt="%.9g")
    else:
        raise CommandError(f"output {path!r}: expected a .npy, .npz or .csv file")


def _progress(total: int, unit: str):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit=unit, file=sys.stderr, disable=None)  # off when not a TTY


# -- commands -----------------------------------------------------------------------------------
def cmd_info(args) -> int:
    from .loading import load_model

    model = load_model(args.model)
    version = ".".join(str(v) for v in model.ctx.keras_version)
    info = _runtime.build_info()
    runs = model._compiled().describe()  # what predict runs, compiled once and kept
    print(f"{args.model}: {model.file_format}, Keras {version}")
    print(f"model {model.name!r} ({model.keras_class}), {model.count_params():,} parameters, "
          f"inputs {[tuple(l.batch_shape) for l in model.input_layers]}")
    rows = []
    for row in model.summary_rows():
        layer = model.layers[row["name"]]
        stateful = getattr(layer, "stateful", False)
        rows.append((row["name"], row["class"],
                     ", ".join(str(tuple(s)) for s in row["output_shapes"]),
                     str(row["params"]),
                     f"stateful, batch {layer.batch_size}" if stateful and
                     getattr(layer, "batch_size", None) else ("stateful" if stateful else "")))
    head = ("layer", "class", "output shape", "params", "state")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)] if rows else []
    for r in [head] + rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(f"kernel: {info['kernel_path']}, {info['num_threads']} threads, OpenMP "
          f"{'on' if info['openmp'] else 'off'}; runs {runs}")
    return 0


def cmd_predict(args) -> int:
    from .loading import load_model

    model = load_model(args.model)
    if len(model.input_layers) != 1:
        raise CommandError(f"predict from the command line takes single-input models; "
                           f"{model.name!r} has {len(model.input_layers)} inputs")
    x = read_array(args.input, args.key, model.input_layers[0].batch_shape)
    if x.ndim != 3:
        raise CommandError(f"input has shape {x.shape}; expected (samples, timesteps, features)")
    fixed = model.batch_size if model.stateful else None
    step = fixed or args.batch_size
    if fixed and len(x) % fixed:
        raise CommandError(f"stateful model {model.name!r} takes rows in batches of {fixed} "
                           f"(one row per stream, fed in order); the input has {len(x)} rows")
    bar = _progress(len(x), "rows")
    parts = []
    for i in range(0, len(x), step):
        parts.append(model.predict(x[i:i + step]))
        if bar is not None:
            bar.update(len(x[i:i + step]))
    if bar is not None:
        bar.close()
    if parts and isinstance(parts[0], list):
        raise CommandError("predict from the command line takes single-output models")
    y = np.concatenate(parts) if parts else model.predict(x)
    write_array(args.output, y)
    print(f"wrote {args.output}: {y.shape} {y.dtype}", file=sys.stderr)
    return 0


def _time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def cmd_bench(args) -> int:
    from .loading import load_model

    model = load_model(args.model)
    if len(model.input_layers) != 1:
        raise CommandError("bench takes single-input models")
    shape = model.input_layers[0].batch_shape
    timesteps = shape[1] or args.timesteps
    batches = [model.batch_size] if model.stateful else args.batch_sizes
    keras_model = _load_keras(args.model, model.ctx.keras_major) if args.keras else None
    rng = np.random.default_rng(0)
    rows = []
    for b in batches:
        x = rng.uniform(-1, 1, (b, timesteps) + tuple(shape[2:])).astype(np.float32)
        t = _time(lambda: model.predict(x), args.repeats)
        row = {"batch": b, "fastlstm_s": t}
        if keras_model is not None:
            row["keras_s"] = _time(lambda: keras_model.predict(x, verbose=0),
                                   max(3, args.repeats // 10))
        rows.append(row)
    print(f"{args.model}: timesteps {timesteps}, {_runtime.get_num_threads()} threads, median of "
          f"{args.repeats} calls")
    print("  batch  fastlstm/call  per row" + ("  keras.predict  keras/fastlstm"
                                               if keras_model is not None else ""))
    for r in rows:
        line = (f"  {r['batch']:>5}  {_fmt(r['fastlstm_s']):>13}  "
                f"{_fmt(r['fastlstm_s'] / r['batch']):>7}")
        if "keras_s" in r:
            line += f"  {_fmt(r['keras_s']):>13}  {r['keras_s'] / r['fastlstm_s']:>13.1f}x"
        print(line)
    if args.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise CommandError("--plot needs matplotlib (pip install matplotlib)") from None
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.loglog(batches, [r["fastlstm_s"] for r in rows], "o-", label="fastlstm")
        if keras_model is not None:
            ax.loglog(batches, [r["keras_s"] for r in rows], "s-", label="keras.predict")
        ax.set_xlabel("batch size")
        ax.set_ylabel("seconds per call")
        ax.set_title(os.path.basename(args.model))
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def _fmt(s: float) -> str:
    return f"{s * 1e6:.1f} us" if s < 1e-3 else f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def _load_keras(path: str, keras_major: int):
    from .verify import load_keras_model

    return load_keras_model(path, keras_major)


def cmd_verify(args) -> int:
    from .verify import verify

    return verify(args.model, tolerance=(args.atol, args.rtol), seed=args.seed,
                  batch=args.batch, timesteps=args.timesteps)


def cmd_demo(args) -> int:
    from .demo import main as demo_main

    return demo_main(args.steps)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastlstm", description="Keras recurrent models without TensorFlow, from a fused C "
        "kernel.")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for the kernels (default: OMP_NUM_THREADS, else all cores)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="file format, Keras version, layers, kernel path")
    p.add_argument("model")
    p.set_defaults(run=cmd_info)
    p = sub.add_parser("predict", help="predict a .npy/.npz/.csv input into a file")
    p.add_argument("model")
    p.add_argument("input", help=".npy, .npz (see --key) or .csv (see `read_array`)")
    p.add_argument("-o", "--output", required=True, help=".npy, .npz or .csv")
    p.add_argument("--batch-size", type=int, default=256,
                   help="rows per call (stateful models: their fixed batch size)")
    p.add_argument("--key", help="array name inside an .npz input")
    p.set_defaults(run=cmd_predict)
    p = sub.add_parser("bench", help="time the model at its own shapes over batch sizes")
    p.add_argument("model")
    p.add_argument("--batch-sizes", type=lambda s: [int(v) for v in s.split(",")],
                   default=[1, 8, 64, 256])
    p.add_argument("--timesteps", type=int, default=10,
                   help="for models that do not fix their timesteps")
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--keras", action="store_true", help="also time keras.predict (if installed)")
    p.add_argument("--plot", help="draw the table into this PNG (needs matplotlib)")
    p.set_defaults(run=cmd_bench)
    p = sub.add_parser("verify", help="compare every layer's output with Keras (if installed)")
    p.add_argument("model")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--timesteps", type=int, default=7)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--atol", type=float, default=1e-5)
    p.add_argument("--rtol", type=float, default=1e-4)
    p.set_defaults(run=cmd_verify)
    p = sub.add_parser("demo", help="forecast with the Keras-trained example model")
    p.add_argument("--steps", type=int, default=50)
    p.set_defaults(run=cmd_demo)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.threads is not None:
            _runtime.set_num_threads(args.threads)
        return args.run(args)
    except (CommandError, *USER_ERRORS) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"fastlstm {args.command}: error: {message}", file=sys.stderr)
        return 1
