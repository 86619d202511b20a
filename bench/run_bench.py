#!/usr/bin/env python3
"""fastlstm against its peers on Keras `LSTM(units) -> Dense(1)` and `GRU(units) -> Dense(1)`.

    python bench/run_bench.py                      # full run (~12 min on 2 cores)
    python bench/run_bench.py --quick              # smoke run (~3 min; --cells gru: ~1.5 min)
    python bench/run_bench.py --workloads step,seq --cells gru --repeats 30

Every model is built with Keras 3, given seeded random weights and saved as `.keras`; fastlstm
loads that file and every peer is built from the same weights (ONNX Runtime from a PyTorch export,
LiteRT from a frozen TF concrete function, PyTorch `nn.LSTM` / `nn.GRU`, Keras `predict` and a
`tf.function`). Outputs are checked against Keras before anything is timed, then all systems are
timed interleaved in this one process (see bench/README.md for the protocol). Results go to
bench/results/ (results.md, results.json, bench.png). A peer that cannot be built is reported as
missing, with the reason.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Quiet TensorFlow and keep it off any GPU; must happen before it is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402

# ------------------------------------------------------------------------------------------------
# Workloads and systems
# ------------------------------------------------------------------------------------------------

WORKLOADS = {
    # name: batch, timesteps, features, units, stateful, note, seconds of interleaved timing (main)
    "step": dict(batch=1, timesteps=1, features=8, units=64, stateful=True, budget=30,
                 note="stateful streaming, one call per step"),
    "seq": dict(batch=1, timesteps=100, features=8, units=128, stateful=False, budget=25,
                note="single-sequence latency"),
    "batch": dict(batch=64, timesteps=100, features=32, units=256, stateful=False, budget=40,
                  note="server batch"),
    "throughput": dict(batch=1024, timesteps=50, features=32, units=256, stateful=False,
                       budget=75, note="offline scoring"),
}
CELLS = {
    # keras / torch: layer class names; gates: weight blocks per unit (the FLOP count); state:
    # the recurrent state tensors a step carries; torch_order: PyTorch's gate blocks as Keras block
    # indices (LSTM i,f,c,o == i,f,g,o; GRU Keras z,r,h -> PyTorch r,z,n); budget: timing budgets
    # relative to the LSTM ones.
    "lstm": dict(keras="LSTM", torch="LSTM", gates=4, state=("h", "c"), torch_order=(0, 1, 2, 3),
                 budget=1.0),
    "gru": dict(keras="GRU", torch="GRU", gates=3, state=("h",), torch_order=(1, 0, 2),
                budget=0.5),
}
SYSTEMS = ["fastlstm", "onnxruntime", "openvino", "litert", "torch", "tf.function",
           "keras.predict"]
PEERS = SYSTEMS[1:]
# Systems whose thread count can be changed inside one process (TensorFlow fixes its thread pools
# when it starts, so the two TF systems are timed at --threads only).
THREADABLE = ["fastlstm", "onnxruntime", "openvino", "litert", "torch"]
UNITS_SWEEP = [32, 64, 128, 256, 512, 1024]
UNITS_SWEEP_SHAPE = dict(batch=64, timesteps=100, features=32)
UNITS_SWEEP_SYSTEMS = ["fastlstm", "onnxruntime", "openvino", "litert", "torch", "tf.function"]

WEIGHT_SCALE = 0.1
ATOL, RTOL, GROSS = 1e-5, 1e-4, 1e-3


def flops(batch, timesteps, features, units, cell="lstm", **_):
    """Multiply-adds of the gate products (4 gates for LSTM, 3 for GRU), counted as 2 flops
    (Dense and activations left out)."""
    return 2.0 * batch * timesteps * CELLS[cell]["gates"] * units * (features + units)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class LoadMonitor:
    """CPU used by *other* processes while we time (from /proc/stat minus our own CPU time), in
    cores. On a 2-core machine anything above ~0.1 core means the numbers are disturbed."""

    def __init__(self):
        self.t0, self.busy0, self.own0 = self._read()

    @staticmethod
    def _read():
        busy = None
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
            # user nice system idle iowait irq softirq steal ...
            busy = (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) \
                / os.sysconf("SC_CLK_TCK")
        except Exception:  # noqa: BLE001
            pass
        t = os.times()
        return time.perf_counter(), busy, t.user + t.system

    def foreign_cores(self):
        t1, busy1, own1 = self._read()
        if busy1 is None or self.busy0 is None or t1 <= self.t0:
            return None
        return max(0.0, ((busy1 - self.busy0) - (own1 - self.own0)) / (t1 - self.t0))


# ------------------------------------------------------------------------------------------------
# Imports (every peer optional)
# ------------------------------------------------------------------------------------------------

class Env:
    """Imported modules, their versions and import failures."""

    def __init__(self, threads):
        self.threads = threads
        self.versions = {"python": platform.python_version(), "numpy": np.__version__}
        self.import_errors = {}
        self.fastlstm = self._import_fastlstm()
        self.torch = self._try("torch", lambda: __import__("torch"))
        if self.torch is not None:
            self.torch.set_num_threads(threads)
        self.tf = self._try("tensorflow", self._import_tf)
        self.keras = self._try("keras", lambda: __import__("keras")) if self.tf else None
        self.ort = self._try("onnxruntime", lambda: __import__("onnxruntime"))
        self.onnx = self._try("onnx", lambda: __import__("onnx"))
        self.openvino = self._try("openvino", lambda: __import__("openvino"))
        self.litert = self._try("ai_edge_litert", self._import_litert)
        from importlib import metadata
        for dist in ("matplotlib", "threadpoolctl"):
            try:
                self.versions[dist] = metadata.version(dist)
            except Exception:  # noqa: BLE001
                pass

    def _import_fastlstm(self):
        # The package under test is the one in this repository (editable install or not).
        if ROOT not in sys.path:
            sys.path.insert(0, ROOT)
        last = None
        for attempt in range(4):  # the compiled module may be mid-rebuild: retry for a while
            try:
                import fastlstm
                break
            except ImportError as e:
                last = e
                for k in [k for k in sys.modules if k == "fastlstm" or k.startswith("fastlstm.")]:
                    del sys.modules[k]
                log(f"import fastlstm failed ({e}); retrying in 20 s")
                time.sleep(20)
        else:
            raise SystemExit(f"cannot import fastlstm from {ROOT}: {last}")
        if not os.path.abspath(fastlstm.__file__).startswith(ROOT):
            log(f"WARNING: fastlstm imported from {fastlstm.__file__}, not from {ROOT}")
        self.versions["fastlstm"] = fastlstm.__version__
        return fastlstm

    def _try(self, name, fn):
        try:
            mod = fn()
            self.versions[name] = getattr(mod, "__version__", "?")
            return mod
        except Exception as e:  # noqa: BLE001
            self.import_errors[name] = f"{type(e).__name__}: {e}"
            log(f"peer module {name} unavailable: {e}")
            return None

    def _import_tf(self):
        import tensorflow as tf
        tf.get_logger().setLevel("ERROR")
        try:
            import absl.logging
            absl.logging.set_verbosity(absl.logging.ERROR)
        except Exception:  # noqa: BLE001
            pass
        # Must precede any TF op; fixed for the life of the process.
        tf.config.threading.set_intra_op_parallelism_threads(self.threads)
        tf.config.threading.set_inter_op_parallelism_threads(self.threads)
        return tf

    def _import_litert(self):
        import ai_edge_litert.interpreter  # the interpreter module too: fail here, not later
        try:
            from importlib.metadata import version
            ai_edge_litert.__version__ = version("ai-edge-litert")
        except Exception:  # noqa: BLE001
            pass
        return ai_edge_litert


# ------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------

class Spec:
    def __init__(self, name, batch, timesteps, features, units, stateful=False, cell="lstm", **_):
        self.name, self.batch, self.timesteps = name, batch, timesteps
        self.features, self.units, self.stateful = features, units, stateful
        self.cell, self.state_names = cell, CELLS[cell]["state"]

    @property
    def id(self):
        """Unique per cell and workload: file names and log lines."""
        return f"{self.cell}-{self.name}"

    @property
    def shape(self):
        return (self.batch, self.timesteps, self.features)

    def dims(self):
        return dict(batch=self.batch, timesteps=self.timesteps, features=self.features,
                    units=self.units, cell=self.cell)

    def zero_state(self, leading=()):
        """One zero array per state tensor (LSTM h, c; GRU h), shape leading + (batch, units)."""
        return [np.zeros(tuple(leading) + (self.batch, self.units), np.float32)
                for _ in self.state_names]

    def rnn_layer(self, keras, **kw):
        """The Keras recurrent layer of this cell (LSTM, or GRU with Keras 3's reset_after=True)."""
        return getattr(keras.layers, CELLS[self.cell]["keras"])(self.units, name=self.cell, **kw)

    def flops(self):
        return flops(**self.dims())


def build_keras(env, spec, seed, tmpdir):
    """Keras 3 LSTM/GRU(units) -> Dense(1) with every weight from U(-s, s); saved as .keras."""
    keras = env.keras
    keras.utils.set_random_seed(seed)
    if spec.stateful:
        inp = keras.Input(batch_shape=(spec.batch, spec.timesteps, spec.features), name="x")
        h = spec.rnn_layer(keras, stateful=True)(inp)
    else:
        inp = keras.Input(shape=(None, spec.features), name="x")
        h = spec.rnn_layer(keras)(inp)
    out = keras.layers.Dense(1, name="dense")(h)
    model = keras.Model(inp, out, name=f"bench_{spec.cell}_{spec.name}")
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(-WEIGHT_SCALE, WEIGHT_SCALE, w.shape).astype(np.float32)
               for w in model.get_weights()]
    model.set_weights(weights)
    path = os.path.join(tmpdir, f"{spec.id}.keras")
    model.save(path)
    return model, weights, path


def keras_reset(model):
    for layer in model.layers:
        if getattr(layer, "stateful", False) and hasattr(layer, "reset_states"):
            layer.reset_states()


def torch_modules(env, spec, weights):
    """nn.LSTM / nn.GRU (batch_first) + nn.Linear holding the Keras weights. The step variant
    takes and returns the state tensors, each (1, batch, units)."""
    torch, cell = env.torch, CELLS[spec.cell]
    kernel, recurrent, bias, dense_k, dense_b = weights
    paired = len(spec.state_names) > 1  # nn.LSTM's state is the tuple (h, c), nn.GRU's just h

    class RNNDense(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(torch.nn, cell["torch"])(spec.features, spec.units,
                                                        batch_first=True)
            self.fc = torch.nn.Linear(spec.units, 1)

        def forward(self, x):
            _, state = self.rnn(x)
            return self.fc((state[0] if paired else state)[-1])

    class RNNDenseStep(RNNDense):
        def forward(self, x, *state):
            _, state = self.rnn(x, state if paired else state[0])
            state = tuple(state) if paired else (state,)
            return (self.fc(state[0][-1]),) + state

    net = (RNNDenseStep if spec.stateful else RNNDense)().eval()
    # Keras kernels are (in, gates*units) in Keras gate order; PyTorch's are transposed, in its
    # own order. LSTM: one Keras bias (-> bias_ih, zeros in bias_hh); GRU (reset_after=True): the
    # (2, 3u) bias is input bias (-> bias_ih) and recurrent bias (-> bias_hh), the same formula.
    u = spec.units
    cols = np.concatenate([np.arange(g * u, (g + 1) * u) for g in cell["torch_order"]])
    b = bias.reshape(-1, cell["gates"] * u)[:, cols]

    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a))

    with torch.no_grad():
        net.rnn.weight_ih_l0.copy_(t(kernel[:, cols].T))
        net.rnn.weight_hh_l0.copy_(t(recurrent[:, cols].T))
        net.rnn.bias_ih_l0.copy_(t(b[0]))
        net.rnn.bias_hh_l0.copy_(t(b[1]) if len(b) > 1 else torch.zeros_like(net.rnn.bias_hh_l0))
        net.fc.weight.copy_(t(dense_k.T))
        net.fc.bias.copy_(t(dense_b))
    for p in net.parameters():
        p.requires_grad_(False)
    return net


# ------------------------------------------------------------------------------------------------
# Runners: each system behind the same small interface
#   stateless: predict(x) -> (batch, 1) array
#   stateful:  reset(); step(x_t) -> (batch, 1) array, state carried inside the runner
#   before():  per-block hook (sets process-wide thread counts); untimed
# ------------------------------------------------------------------------------------------------

class Runner:
    name = "?"
    threads = 1
    tag = ""

    def before(self):
        pass

    def reset(self):
        pass

    @property
    def label(self):
        return self.name + (f" ({self.threads}t)" if self.tag else "")


class FastlstmRunner(Runner):
    name = "fastlstm"

    def __init__(self, env, spec, path, threads):
        self.fl, self.threads, self.spec = env.fastlstm, threads, spec
        self.model = self.fl.load_model(path)

    def before(self):
        if self.fl.get_num_threads() != self.threads:
            self.fl.set_num_threads(self.threads)

    def predict(self, x):
        return self.model.predict(x)

    step = predict

    def reset(self):
        self.model.reset_states()


class TorchRunner(Runner):
    name = "torch"

    def __init__(self, env, spec, weights, threads, net=None):
        self.torch, self.threads, self.spec = env.torch, threads, spec
        self.net = net if net is not None else torch_modules(env, spec, weights)
        self.reset()

    def before(self):
        if self.torch.get_num_threads() != self.threads:
            self.torch.set_num_threads(self.threads)

    def predict(self, x):
        with self.torch.inference_mode():
            return self.net(self.torch.from_numpy(x)).numpy()

    def reset(self):
        self.state = [self.torch.from_numpy(z) for z in self.spec.zero_state((1,))]

    def step(self, x):
        with self.torch.inference_mode():
            y, *self.state = self.net(self.torch.from_numpy(x), *self.state)
            return y.numpy()


def export_onnx(env, spec, net, path):
    torch = env.torch
    x = torch.zeros(spec.shape)
    kwargs = dict(opset_version=17, do_constant_folding=True)
    if spec.stateful:
        z = torch.zeros((1, spec.batch, spec.units))
        args = (x,) + (z,) * len(spec.state_names)
        inames = ["x", *spec.state_names]
        onames = ["y"] + [f"{s}_out" for s in spec.state_names]
        dyn = None
    else:
        args, inames, onames = (x,), ["x"], ["y"]
        dyn = {"x": {0: "batch", 1: "time"}, "y": {0: "batch"}}
    errors = []
    for dynamo in (False, True):  # legacy TorchScript exporter first (needs no onnxscript)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if dynamo:
                    ds = None
                    if dyn:
                        b, t = torch.export.Dim("batch"), torch.export.Dim("time")
                        ds = ({0: b, 1: t},)
                    torch.onnx.export(net, args, path, input_names=inames, output_names=onames,
                                      dynamic_shapes=ds, dynamo=True, opset_version=18)
                else:
                    torch.onnx.export(net, args, path, input_names=inames, output_names=onames,
                                      dynamic_axes=dyn, dynamo=False, **kwargs)
            return "dynamo" if dynamo else "torchscript"
        except Exception as e:  # noqa: BLE001
            errors.append(f"{'dynamo' if dynamo else 'torchscript'} exporter: "
                          f"{type(e).__name__}: {str(e)[:300]}")
    raise RuntimeError("; ".join(errors))


class OrtRunner(Runner):
    name = "onnxruntime"

    def __init__(self, env, spec, onnx_path, threads):
        ort = env.ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        self.sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        self.threads, self.spec = threads, spec
        self.reset()

    def predict(self, x):
        return self.sess.run(None, {"x": x})[0]

    def reset(self):
        self.state = self.spec.zero_state((1,))

    def step(self, x):
        y, *self.state = self.sess.run(None, {"x": x, **dict(zip(self.spec.state_names,
                                                                 self.state))})
        return y


class OpenvinoRunner(Runner):
    """OpenVINO's CPU plugin on the ONNX export ONNX Runtime runs (read_model takes .onnx):
    inference threads as the others, one stream, latency hint, f32 (no bf16 down-conversion,
    which would change the results)."""
    name = "openvino"

    def __init__(self, env, spec, onnx_path, threads):
        ov = env.openvino
        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
                  "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        self.compiled = core.compile_model(core.read_model(onnx_path), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.threads, self.spec = threads, spec
        self.reset()

    def predict(self, x):
        return self.request.infer({"x": x})[0].copy()

    def reset(self):
        self.state = self.spec.zero_state((1,))

    def step(self, x):
        out = self.request.infer({"x": x, **dict(zip(self.spec.state_names, self.state))})
        y, *state = [out[i].copy() for i in range(len(out))]
        self.state = state
        return y


def convert_litert(env, spec, weights):
    """Frozen concrete function with the workload's fixed shapes -> .tflite bytes.

    Keras 3's LSTM and GRU lower to a TF while loop whose TensorList ops only legalise for TFLite
    with static shapes, and whose captured weights must be frozen to constants first, so
    `TFLiteConverter.from_keras_model` (dynamic batch/time) fails on Keras 3 models. For the
    step workload the converted model is a functional twin taking and returning the state
    (LSTM h, c; GRU h).
    """
    tf, keras = env.tf, env.keras
    from tensorflow.python.framework.convert_to_constants import \
        convert_variables_to_constants_v2
    if spec.stateful:
        x_in = keras.Input(batch_shape=spec.shape, name="x")
        s_in = [keras.Input(batch_shape=(spec.batch, spec.units), name=s)
                for s in spec.state_names]
        seq, *s_out = spec.rnn_layer(keras, return_state=True)(x_in, initial_state=s_in)
        y = keras.layers.Dense(1, name="dense")(seq)
        twin = keras.Model([x_in, *s_in], [y, *s_out])
        twin.set_weights(weights)
        sig = [tf.TensorSpec(spec.shape, tf.float32, name="x")] + [
            tf.TensorSpec((spec.batch, spec.units), tf.float32, name=s) for s in spec.state_names]
        fn = tf.function(lambda *xs: twin(list(xs), training=False), input_signature=sig)
    else:
        inp = keras.Input(batch_shape=spec.shape, name="x")
        seq = spec.rnn_layer(keras)(inp)
        twin = keras.Model(inp, keras.layers.Dense(1, name="dense")(seq))
        twin.set_weights(weights)
        fn = tf.function(lambda x: twin(x, training=False),
                         input_signature=[tf.TensorSpec(spec.shape, tf.float32, name="x")])
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function())
    conv = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    return conv.convert(), twin


class LitertRunner(Runner):
    name = "litert"

    def __init__(self, env, spec, tflite, threads, twin=None):
        from ai_edge_litert.interpreter import Interpreter
        self.threads, self.spec = threads, spec
        self.it = Interpreter(model_content=tflite, num_threads=threads)
        ins = self.it.get_input_details()
        outs = self.it.get_output_details()
        if spec.stateful:
            # Inputs by name; outputs y and the state matched against the Keras twin (LSTM h and c
            # share a shape).
            keys = ("x", *spec.state_names)
            byname = {d["name"].split(":")[0].split("_")[-1]: d for d in ins}
            if not set(keys) <= set(byname):
                raise RuntimeError(f"cannot identify {'/'.join(keys)} among inputs "
                                   f"{[d['name'] for d in ins]}")
            self.ix, *self.istate = (byname[k]["index"] for k in keys)
        else:
            self.ix = ins[0]["index"]
        for d in ins:  # resize to the workload's shapes (already fixed by conversion), allocate once
            want = {self.ix: list(spec.shape)}.get(d["index"])
            if want is not None and list(d["shape"]) != want:
                self.it.resize_tensor_input(d["index"], want)
        self.it.allocate_tensors()
        if spec.stateful:
            self._map_state_outputs(outs, twin)
        else:
            self.oy = outs[0]["index"]
        self.reset()

    def _map_state_outputs(self, outs, twin):
        rng = np.random.default_rng(1)
        x = rng.uniform(-1, 1, self.spec.shape).astype(np.float32)
        state = [rng.uniform(-.5, .5, z.shape).astype(np.float32)
                 for z in self.spec.zero_state()]
        ref = [np.asarray(r) for r in twin([x, *state], training=False)]
        self._invoke(x, state)
        got = {d["index"]: self.it.get_tensor(d["index"]) for d in outs}
        idx = []
        for r in ref:
            cands = [(np.abs(g - r).max(), i) for i, g in got.items() if g.shape == r.shape
                     and i not in idx]
            if not cands:
                raise RuntimeError("cannot match LiteRT outputs to y and the state")
            idx.append(min(cands)[1])
        self.oy, *self.ostate = idx

    def predict(self, x):
        self.it.set_tensor(self.ix, x)
        self.it.invoke()
        return self.it.get_tensor(self.oy)

    def reset(self):
        self.state = self.spec.zero_state()

    def _invoke(self, x, state):
        self.it.set_tensor(self.ix, x)
        for i, s in zip(self.istate, state):
            self.it.set_tensor(i, s)
        self.it.invoke()

    def step(self, x):
        self._invoke(x, self.state)
        self.state = [self.it.get_tensor(o) for o in self.ostate]
        return self.it.get_tensor(self.oy)


class KerasPredictRunner(Runner):
    name = "keras.predict"

    def __init__(self, env, spec, model, threads):
        self.model, self.spec, self.threads = model, spec, threads

    def predict(self, x):
        # batch_size=len(x): one Keras batch per call (the default 32 would split big batches).
        return self.model.predict(x, batch_size=len(x), verbose=0)

    def step(self, x):
        return self.model.predict(x, verbose=0)

    def reset(self):
        keras_reset(self.model)


class TfFunctionRunner(Runner):
    name = "tf.function"

    def __init__(self, env, spec, model, threads):
        self.model, self.spec, self.threads = model, spec, threads
        self.fn = env.tf.function(lambda x: model(x, training=False), jit_compile=False)
        self.fn(np.zeros(spec.shape, np.float32))  # trace once
        keras_reset(model)

    def predict(self, x):
        return self.fn(x).numpy()

    step = predict

    def reset(self):
        keras_reset(self.model)


def build_runners(env, spec, seed, tmpdir, threads, systems, extra_threads=()):
    """All requested runners for `spec` at `threads` (+ 1-thread twins of the threadable ones for
    each count in extra_threads). Returns (runners, missing, keras_model, info)."""
    runners, missing, info = [], {}, {}
    model, weights, path = build_keras(env, spec, seed, tmpdir)
    counts = [threads] + [t for t in extra_threads if t != threads]

    def attempt(name, fn):
        try:
            t0 = time.perf_counter()
            out = fn()
            bs = info.setdefault("build_s", {})  # seconds spent building, export/convert included
            bs[name] = round(bs.get(name, 0.0) + time.perf_counter() - t0, 2)
            return out
        except Exception as e:  # noqa: BLE001
            missing[name] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}" \
                if str(e).strip() else type(e).__name__
            log(f"  [{spec.id}] {name} unavailable: {missing[name]}")
            if os.environ.get("BENCH_DEBUG"):
                traceback.print_exc()
            return None

    def need(mod, modname):
        if mod is None:
            raise RuntimeError(f"{modname} not importable ({env.import_errors.get(modname, '')})")

    def tagged(r, n):
        if r is not None and len(counts) > 1:
            r.tag = "main" if n == threads else "sweep"
        return r

    net = None
    if "torch" in systems or "onnxruntime" in systems or "openvino" in systems:
        def mk_net():
            need(env.torch, "torch")
            return torch_modules(env, spec, weights)
        net = attempt("torch" if "torch" in systems else "onnxruntime", mk_net)

    for n in counts:
        sub = systems if n == threads else [s for s in systems if s in THREADABLE]
        if "fastlstm" in sub:
            r = attempt("fastlstm", lambda: FastlstmRunner(env, spec, path, n))
            runners.append(tagged(r, n))
        if "torch" in sub and net is not None:
            runners.append(tagged(attempt("torch", lambda: TorchRunner(env, spec, weights, n,
                                                                      net=net)), n))
        # ONNX Runtime and OpenVINO run the same export, made once per workload.
        for name, mod, cls in (("onnxruntime", env.ort, OrtRunner),
                               ("openvino", env.openvino, OpenvinoRunner)):
            if name in sub and net is not None:
                def mk_onnx_runner(name=name, mod=mod, cls=cls):
                    need(mod, name)
                    onnx_path = os.path.join(tmpdir, f"{spec.id}_{spec.units}.onnx")
                    if not os.path.exists(onnx_path):
                        info["onnx_exporter"] = export_onnx(env, spec, net, onnx_path)
                    return cls(env, spec, onnx_path, n)
                runners.append(tagged(attempt(name, mk_onnx_runner), n))
        if "litert" in sub:
            def mk_lite():
                need(env.litert, "ai_edge_litert")
                need(env.tf, "tensorflow")
                if "tflite" not in info:
                    info["tflite"], info["twin"] = convert_litert(env, spec, weights)
                return LitertRunner(env, spec, info["tflite"], n, info["twin"])
            runners.append(tagged(attempt("litert", mk_lite), n))
        if n == threads and "tf.function" in sub:
            runners.append(attempt("tf.function",
                                   lambda: TfFunctionRunner(env, spec, model, threads)))
        if n == threads and "keras.predict" in sub:
            runners.append(attempt("keras.predict",
                                   lambda: KerasPredictRunner(env, spec, model, threads)))
    info.pop("tflite", None)
    info.pop("twin", None)
    runners = [r for r in runners if r is not None]
    return runners, missing, model, info


# ------------------------------------------------------------------------------------------------
# Accuracy check against Keras
# ------------------------------------------------------------------------------------------------

def check_accuracy(env, spec, runners, model, seed, n_steps=12):
    rng = np.random.default_rng(seed + 1000)
    if spec.stateful:
        xs = [rng.uniform(-1, 1, spec.shape).astype(np.float32) for _ in range(n_steps)]
        keras_reset(model)
        ref = np.stack([np.asarray(model.predict(x, verbose=0)) for x in xs])
        keras_reset(model)
    else:
        x = rng.uniform(-1, 1, spec.shape).astype(np.float32)
        ref = np.asarray(model.predict(x, batch_size=spec.batch, verbose=0))
    report = {}
    for r in runners:
        try:
            r.before()
            if spec.stateful:
                r.reset()
                got = np.stack([np.asarray(r.step(x)) for x in xs])
                r.reset()
            else:
                got = np.asarray(r.predict(x))
            got = got.reshape(ref.shape)
            err = np.abs(got.astype(np.float64) - ref)
            tol = ATOL + RTOL * np.abs(ref)
            report[r.label] = dict(max_abs_err=float(err.max()),
                                   max_err_over_tol=float((err / tol).max()),
                                   within_tol=bool((err <= tol).all()),
                                   gross=bool(err.max() > GROSS or not np.isfinite(got).all()))
        except Exception as e:  # noqa: BLE001
            report[r.label] = dict(error=f"{type(e).__name__}: {e}", gross=True)
    return report


# ------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------

def quiesce(max_s=0.25, window=0.003, busy=0.10):
    """Wait until this process's threads stop burning CPU (OpenMP/ORT workers spin for a while
    after a call; left alone they would steal a core from the next system)."""
    deadline = time.perf_counter() + max_s
    quiet = 0
    while time.perf_counter() < deadline:
        c0, w0 = time.process_time(), time.perf_counter()
        time.sleep(window)
        if (time.process_time() - c0) / (time.perf_counter() - w0) < busy:
            quiet += 1
            if quiet >= 2:
                return
        else:
            quiet = 0


def make_call(spec, r, x):
    return (lambda: r.step(x)) if spec.stateful else (lambda: r.predict(x))


def time_interleaved(spec, runners, x, budget_s, repeats=None, target_s=0.02, max_k=2000,
                     min_rounds=5, max_rounds=60, desc=""):
    """Round-robin timing. Each system's sample is a block of k back-to-back calls (k chosen in
    warm-up so that a block lasts >= target_s; k = 1 for slow calls) and yields time per call; one
    block per system per round, the order rotated every round; result: median over rounds."""
    calls = [(r, make_call(spec, r, x)) for r in runners]
    est = {}
    for r, call in calls:  # warm-up: at least 3 calls and ~0.3 s (capped at 5 calls if slow)
        r.before()
        ts, t_start = [], time.perf_counter()
        while len(ts) < 3 or (time.perf_counter() - t_start < 0.3 and len(ts) < 200):
            t0 = time.perf_counter()
            call()
            ts.append(time.perf_counter() - t0)
            if len(ts) >= 2 and ts[-1] > 1.0:
                break
        est[r.label] = min(ts[1:]) if len(ts) > 1 else ts[0]
    ks = {lab: max(1, min(max_k, math.ceil(target_s / max(t, 1e-7)))) for lab, t in est.items()}
    round_s = sum(est[lab] * ks[lab] + 0.01 for lab in est)
    rounds = repeats or int(min(max_rounds, max(min_rounds, budget_s // max(round_s, 1e-3))))
    log(f"  {desc}: {len(calls)} systems, {rounds} rounds (~{round_s:.2f} s/round)")
    samples = {r.label: [] for r, _ in calls}
    mon = LoadMonitor()
    for i in range(rounds):
        j = i % len(calls)
        for r, call in calls[j:] + calls[:j]:
            k = ks[r.label]
            r.before()
            quiesce()
            t0 = time.perf_counter()
            for _ in range(k):
                call()
            samples[r.label].append((time.perf_counter() - t0) / k)
    foreign = mon.foreign_cores()
    if foreign is not None and foreign > 0.1:
        log(f"  WARNING: other processes used {foreign:.2f} cores while {desc} was timed")
    out = {}
    for r, _ in calls:
        s = samples[r.label]
        q = np.percentile(s, [25, 75])
        out[r.label] = dict(system=r.name, threads=r.threads, median_s=statistics.median(s),
                            q1_s=float(q[0]), q3_s=float(q[1]), min_s=min(s), k=ks[r.label],
                            rounds=rounds, foreign_load_cores=foreign,
                            samples_s=[round(v, 9) for v in s])
    for r, _ in calls:
        r.reset()
    return out


# ------------------------------------------------------------------------------------------------
# numpy sgemm reference
# ------------------------------------------------------------------------------------------------

def sgemm_gflops(threads_list, n=2048, reps=5):
    res = {}
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    for t in threads_list:
        if threadpool_limits is not None:
            with threadpool_limits(limits=t, user_api="blas"):
                a @ b
                ts = []
                for _ in range(reps):
                    t0 = time.perf_counter()
                    a @ b
                    ts.append(time.perf_counter() - t0)
            res[t] = 2.0 * n ** 3 / statistics.median(ts) / 1e9
        else:  # a fresh process reads OPENBLAS_NUM_THREADS at start
            code = ("import numpy as np,time,statistics;n=%d;a=np.ones((n,n),np.float32);b=a.copy();"
                    "a@b;ts=[]\nfor _ in range(%d):\n t=time.perf_counter();a@b;"
                    "ts.append(time.perf_counter()-t)\nprint(2*n**3/statistics.median(ts)/1e9)"
                    % (n, reps))
            envv = dict(os.environ, OPENBLAS_NUM_THREADS=str(t), OMP_NUM_THREADS=str(t),
                        MKL_NUM_THREADS=str(t))
            outp = subprocess.run([sys.executable, "-c", code], env=envv, capture_output=True,
                                  text=True, check=True).stdout
            res[t] = float(outp.strip().splitlines()[-1])
    return res


# ------------------------------------------------------------------------------------------------
# Machine description
# ------------------------------------------------------------------------------------------------

def machine_info():
    info = {"platform": platform.platform(), "cpu_count": os.cpu_count()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            k, v = k.strip(), v.strip()
            if k in ("Model name", "CPU(s)", "Core(s) per socket", "Thread(s) per core",
                     "Socket(s)", "L1d cache", "L2 cache", "L3 cache", "Hypervisor vendor"):
                info[k] = v
        flags = [ln for ln in out.splitlines() if ln.startswith("Flags")]
        if flags:
            f = flags[0].split()
            info["simd"] = " ".join(x for x in ("avx2", "fma", "avx512f") if x in f)
    except Exception:  # noqa: BLE001
        pass
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src",
                                "fastlstm", "setup.py"],
                               capture_output=True, text=True).stdout.strip()
        info["fastlstm_git"] = rev + (" (+ uncommitted changes in src/fastlstm)" if dirty else "")
    except Exception:  # noqa: BLE001
        pass
    info["env"] = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                               "GOMP_SPINCOUNT", "OPENBLAS_NUM_THREADS")
                   if k in os.environ}
    return info


# ------------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------------

def fmt_t(s):
    if s is None:
        return "—"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3f} s"


def best_peer(timing):
    peers = [(v["median_s"], v["system"]) for k, v in timing.items() if v["system"] != "fastlstm"]
    return min(peers) if peers else (None, None)


def cell_title(cell):
    return CELLS[cell]["keras"]


def workload_table(res):
    wl = res["dims"]
    spec_fl = flops(**wl)
    timing, acc, missing = res["timing"], res["accuracy"], res["missing"]
    fl = timing.get("fastlstm", {}).get("median_s")
    lines = [f"### {res['workload']}, {cell_title(wl['cell'])}: batch {wl['batch']}, timesteps "
             f"{wl['timesteps']}, features {wl['features']}, units {wl['units']} — {res['note']}",
             "",
             f"{spec_fl / 1e6:.2f} MFLOP per call; {res['threads']} threads for every system; "
             f"median of {next(iter(timing.values()))['rounds'] if timing else 0} interleaved "
             "rounds" + _foreign_note(timing) + ".", "",
             "| system | median / call | IQR | vs fastlstm (time ÷ fastlstm) | GFLOP/s | "
             "max abs err vs Keras |",
             "|---|---:|---:|---:|---:|---:|"]
    for lab, v in sorted(timing.items(), key=lambda kv: kv[1]["median_s"]):
        a = acc.get(lab, {})
        err = (f"{a['max_abs_err']:.1e}" + ("" if a.get("within_tol") else " (> tol)")
               if "max_abs_err" in a else a.get("error", "—"))
        if lab == "keras.predict":
            err = "reference"
        ratio = f"{v['median_s'] / fl:.2f}×" if fl else "—"
        lines.append(f"| {lab} | {fmt_t(v['median_s'])} | {fmt_t(v['q1_s'])}–{fmt_t(v['q3_s'])}"
                     f" | {ratio} | {spec_fl / v['median_s'] / 1e9:.2f} | {err} |")
    for lab, why in missing.items():
        lines.append(f"| {lab} | missing | | | | {why} |")
    bt, bs = best_peer(timing)
    if fl and bt:
        lines += ["", f"**Best peer: {bs}, {fmt_t(bt)} → best-peer / fastlstm = {bt / fl:.2f}**"]
    return "\n".join(lines)


def best_config(res, tsw):
    """(peer time, peer label, fastlstm time, fastlstm label) over every thread count measured:
    the main table at --threads plus the thread sweep."""
    entries = [(v["median_s"], f"{v['system']} ({v['threads']}t)", v["system"])
               for v in list(res["timing"].values()) + list((tsw or {}).get("timing", {}).values())]
    peers = [e for e in entries if e[2] != "fastlstm"]
    fls = [e for e in entries if e[2] == "fastlstm"]
    if not peers or not fls:
        return None
    p, f = min(peers), min(fls)
    return p[0], p[1], f[0], f[1]


def sgemm_peak(sgemm):
    """numpy sgemm GFLOP/s at the largest thread count measured (the main tables' count)."""
    return sgemm.get(max(sgemm)) if sgemm else None


def headline(res, peak):
    """fastlstm's time and GFLOP/s, their share of the sgemm peak, the best peer and
    best-peer time / fastlstm time, for one workload's result."""
    fl = res["timing"].get("fastlstm", {}).get("median_s")
    bt, bs = best_peer(res["timing"])
    gf = flops(**res["dims"]) / fl / 1e9 if fl else None
    return dict(fl=fl, bt=bt, bs=bs, gf=gf, ratio=bt / fl if fl and bt else None,
                pct=f"{100 * gf / peak:.0f}%" if gf and peak else "—")


def summary_table(results, sgemm, tsweep=None):
    lines = ["| cell | workload | fastlstm | best peer | best peer time | best peer / fastlstm | "
             "fastlstm GFLOP/s | % of numpy sgemm | best configs (any thread count) |",
             "|---|---|---:|---|---:|---:|---:|---:|---|"]
    peak = sgemm_peak(sgemm)
    for name, res in results.items():
        h = headline(res, peak)
        bc = best_config(res, (tsweep or {}).get(name)) if (tsweep or {}).get(name) else None
        bct = (f"{bc[1]} {fmt_t(bc[0])} / fastlstm ({bc[3].split('(')[1]} {fmt_t(bc[2])} = "
               f"{bc[0] / bc[2]:.2f}×" if bc else "—")
        ratio = f"**{h['ratio']:.2f}×**" if h["ratio"] else "—"
        gf = f"{h['gf']:.2f}" if h["gf"] else "—"
        lines.append(f"| {cell_title(res['dims']['cell'])} | {res['workload']} | "
                     f"{fmt_t(h['fl'])} | {h['bs'] or '—'} | {fmt_t(h['bt'])} | {ratio} | {gf} | "
                     f"{h['pct']} | {bct} |")
    return "\n".join(lines)


def roofline_table(results, units_sweep, sgemm):
    """fastlstm's GFLOP/s as a fraction of numpy sgemm, LSTM beside GRU, for every workload (and
    units-sweep point) measured with both cells; best peer / fastlstm for each cell."""
    peak = sgemm_peak(sgemm)
    rows = {}
    for res in results.values():
        rows.setdefault(res["workload"], {})[res["dims"]["cell"]] = res
    for cell, sweep in (units_sweep or {}).items():
        for u, r in sweep.items():
            rows.setdefault(f"units {u}", {})[cell] = r
    lines = ["| workload | LSTM GFLOP/s | LSTM % of sgemm | GRU GFLOP/s | GRU % of sgemm | "
             "GRU ÷ LSTM fraction | LSTM best peer / fastlstm | GRU best peer / fastlstm |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, by_cell in rows.items():
        if not {"lstm", "gru"} <= set(by_cell):
            continue
        h = {c: headline(by_cell[c], peak) for c in ("lstm", "gru")}
        gf = {c: h[c]["gf"] for c in h}
        rel = f"{gf['gru'] / gf['lstm']:.2f}" if gf["lstm"] and gf["gru"] else "—"
        lines.append(f"| {name} | " + " | ".join(
            f"{gf[c]:.2f} | {h[c]['pct']}" if gf[c] else "— | —" for c in h) + f" | {rel} | "
            + " | ".join(f"{h[c]['ratio']:.2f}× ({h[c]['bs']})" if h[c]["ratio"] else "—"
                         for c in h) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


def units_table(sweep):
    systems = [s for s in UNITS_SWEEP_SYSTEMS if any(s in r["timing"] for r in sweep.values())]
    lines = ["| units | MFLOP/call | " + " | ".join(systems) + " | best peer / fastlstm | "
             "fastlstm GFLOP/s |",
             "|---:|---:|" + "---:|" * len(systems) + "---:|---:|"]
    for u, r in sweep.items():
        f = flops(**r["dims"])
        cells = [fmt_t(r["timing"][s]["median_s"]) if s in r["timing"] else "missing"
                 for s in systems]
        fl = r["timing"].get("fastlstm", {}).get("median_s")
        bt, bs = best_peer(r["timing"])
        lines.append(f"| {u} | {f / 1e6:.0f} | " + " | ".join(cells) + " | "
                     + (f"{bt / fl:.2f}× ({bs})" if fl and bt else "—") + " | "
                     + (f"{f / fl / 1e9:.1f}" if fl else "—") + " |")
    return "\n".join(lines)


def threads_table(tsweep, counts):
    lines = ["| cell | workload | system | " + " | ".join(f"{t} thread{'s' if t > 1 else ''}"
                                                          for t in counts)
             + f" | speed-up {counts[0]}→{counts[-1]} | GFLOP/s at {counts[-1]} |",
             "|---|---|---|" + "---:|" * len(counts) + "---:|---:|"]
    for res in tsweep.values():
        f = flops(**res["dims"])
        for s in THREADABLE:
            ts = {t: res["timing"].get(f"{s} ({t}t)", {}).get("median_s") for t in counts}
            if not any(ts.values()):
                continue
            sp = (f"{ts[counts[0]] / ts[counts[-1]]:.2f}×"
                  if ts[counts[0]] and ts[counts[-1]] else "—")
            gf = f"{f / ts[counts[-1]] / 1e9:.2f}" if ts[counts[-1]] else "—"
            lines.append(f"| {cell_title(res['dims']['cell'])} | {res['workload']} | {s} | "
                         + " | ".join(fmt_t(ts[t]) for t in counts)
                         + f" | {sp} | {gf} |")
    return "\n".join(lines)


def make_plot(path, results, units_sweep, tsweep, counts):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = 1 + bool(units_sweep) + bool(tsweep)
    widths = [max(1.0, len(results) / 4)] + [1.0] * (panels - 1)
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * sum(widths), 5),
                             gridspec_kw=dict(width_ratios=widths))
    axes = np.atleast_1d(axes)
    colors = dict(zip(SYSTEMS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    ax = axes[0]
    names = list(results)
    width = 0.8 / len(SYSTEMS)
    for i, s in enumerate(SYSTEMS):
        vals = [results[n]["timing"].get(s, {}).get("median_s", np.nan) for n in names]
        ax.bar(np.arange(len(names)) + (i - (len(SYSTEMS) - 1) / 2) * width, vals, width,
               label=s, color=colors[s])
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(names)))
    ax.set_xticklabels([f"{n}\nB{results[n]['dims']['batch']} T{results[n]['dims']['timesteps']}"
                        f" U{results[n]['dims']['units']}" for n in names], fontsize=8)
    ax.set_ylabel("median time per call [s] (log)")
    ax.set_title(f"Time per call, {results[names[0]]['threads'] if names else ''} threads")
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    k = 1
    if units_sweep:
        ax = axes[k]
        k += 1
        for cell, sweep in units_sweep.items():
            us = [int(u) for u in sweep]
            for s in UNITS_SWEEP_SYSTEMS:
                g = [flops(**sweep[str(u)]["dims"]) / sweep[str(u)]["timing"][s]["median_s"]
                     / 1e9 if s in sweep[str(u)]["timing"] else np.nan for u in us]
                ax.plot(us, g, "o-" if cell == "lstm" else "s--", label=f"{s} {cell_title(cell)}",
                        color=colors[s])
        ax.set_xscale("log", base=2)
        ax.set_xticks(us)
        ax.set_xticklabels([str(u) for u in us])
        ax.set_xlabel("units (batch 64, timesteps 100, features 32)")
        ax.set_ylabel("GFLOP/s (gate products)")
        ax.set_title("Units sweep")
        ax.legend(fontsize=7, ncol=2)
        ax.grid(alpha=0.3)
    if tsweep:
        ax = axes[k]
        wn = list(tsweep)
        width = 0.8 / len(THREADABLE)
        for i, s in enumerate(THREADABLE):
            sp = []
            for w in wn:
                t1 = tsweep[w]["timing"].get(f"{s} ({counts[0]}t)", {}).get("median_s")
                t2 = tsweep[w]["timing"].get(f"{s} ({counts[-1]}t)", {}).get("median_s")
                sp.append(t1 / t2 if t1 and t2 else np.nan)
            ax.bar(np.arange(len(wn)) + (i - (len(THREADABLE) - 1) / 2) * width, sp, width,
                   label=s, color=colors[s])
        ax.axhline(1, color="k", lw=0.8)
        ax.set_xticks(np.arange(len(wn)))
        ax.set_xticklabels(wn, fontsize=8)
        ax.set_ylabel(f"speed-up {counts[0]} → {counts[-1]} threads")
        ax.set_title("Thread scaling")
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run (~3 min, ~1.5 min per cell): short budgets, 2+ rounds, "
                         "thread sweep on step/seq only, units sweep 32/256")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help=f"comma-separated subset of {','.join(WORKLOADS)}")
    ap.add_argument("--cells", default=",".join(CELLS),
                    help=f"comma-separated subset of {','.join(CELLS)}: every workload and sweep "
                         "runs as a Keras `<cell>(units) -> Dense(1)` model of each")
    ap.add_argument("--systems", default=",".join(SYSTEMS),
                    help=f"comma-separated subset of {','.join(SYSTEMS)} (fastlstm always runs)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="interleaved rounds per workload and sweep point (default: from a time "
                         "budget per workload, at least 5 rounds (3 in sweeps, 2 with --quick))")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="threads for every system in the main tables (default: all cores)")
    ap.add_argument("--no-units-sweep", action="store_true")
    ap.add_argument("--no-thread-sweep", action="store_true")
    ap.add_argument("--budget-scale", type=float, default=1.0,
                    help="multiply every timing budget (default 1; --quick uses 0.2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()

    t_start = time.time()
    scale = args.budget_scale * (0.2 if args.quick else 1.0)
    min_main, min_sweep = (2, 2) if args.quick else (5, 3)
    wnames = [w.strip() for w in args.workloads.split(",") if w.strip()]
    bad = [w for w in wnames if w not in WORKLOADS]
    if bad:
        ap.error(f"unknown workload(s) {bad}; choose from {list(WORKLOADS)}")
    cells = [c.strip().lower() for c in args.cells.split(",") if c.strip()]
    bad = [c for c in cells if c not in CELLS]
    if bad or not cells:
        ap.error(f"unknown cell(s) {bad}; choose from {list(CELLS)}")
    systems = ["fastlstm"] + [s.strip() for s in args.systems.split(",")
                              if s.strip() and s.strip() != "fastlstm"]
    bad = [s for s in systems if s not in SYSTEMS]
    if bad:
        ap.error(f"unknown system(s) {bad}; choose from {SYSTEMS}")
    threads = args.threads
    counts = sorted({1, threads})
    thread_sweep = not args.no_thread_sweep and len(counts) > 1
    sweep_workloads = [w for w in wnames if not args.quick or w in ("step", "seq")]
    units_list = [32, 256] if args.quick else UNITS_SWEEP
    load0 = os.getloadavg()
    run_mon = LoadMonitor()

    log(f"importing fastlstm and peers ({threads} threads) ...")
    env = Env(threads)
    if env.keras is None:
        raise SystemExit("Keras 3 (tensorflow + keras) is required to build the models: "
                         + str(env.import_errors))
    build_info = env.fastlstm.build_info()
    env.fastlstm.set_num_threads(threads)
    machine = machine_info()
    log(f"fastlstm {build_info}")

    log("numpy sgemm reference ...")
    sgemm = sgemm_gflops(counts)
    log("  " + ", ".join(f"{t} thread(s): {g:.1f} GFLOP/s" for t, g in sgemm.items()))

    tmpdir = tempfile.mkdtemp(prefix="fastlstm_bench_")
    results, tsweep, accuracy_failures = {}, {}, []
    units_sweep = {}  # cell -> {units: result}

    def build_checked(spec, systems, extra_threads=()):
        """The runners of `spec` whose output matches Keras (a gross mismatch is recorded and
        left out of the timing), with the accuracy report and what could not be built."""
        runners, missing, kmodel, info = build_runners(env, spec, args.seed, tmpdir, threads,
                                                       systems, extra_threads=extra_threads)
        acc = check_accuracy(env, spec, runners, kmodel, args.seed)
        for lab, a in acc.items():
            status = ("ERROR " + a["error"]) if "error" in a else (
                f"max abs err {a['max_abs_err']:.2e} ({a['max_err_over_tol']:.2f}× tol)")
            log(f"  accuracy {lab:22s} {status}")
            if a.get("gross"):
                accuracy_failures.append(f"{spec.id}/{lab}")
                log(f"  !!! GROSS MISMATCH: {spec.id} / {lab} differs from Keras by more than "
                    f"{GROSS} — excluded from timing")
        good = [r for r in runners if not acc.get(r.label, {}).get("gross")]
        x = np.random.default_rng(args.seed + 7).uniform(-1, 1, spec.shape).astype(np.float32)
        return good, missing, acc, info, x

    def release():
        gc.collect()
        env.keras.backend.clear_session()

    try:
        for wname in wnames:
            wl = WORKLOADS[wname]
            for cell in cells:
                spec = Spec(wname, cell=cell, **wl)
                key, budget = f"{cell}/{wname}", wl["budget"] * scale * CELLS[cell]["budget"]
                log(f"[{key}] building models {spec.shape} {cell_title(cell)}({spec.units}) ...")
                sweep_here = thread_sweep and wname in sweep_workloads
                good, missing, acc, info, x = build_checked(
                    spec, systems, extra_threads=counts if sweep_here else ())
                main_r = [r for r in good if r.tag in ("", "main")]
                # main table: plain system names
                timing = time_interleaved(spec, _relabel(main_r, plain=True), x, budget,
                                          args.repeats, min_rounds=min_main,
                                          desc=f"[{key}] main")
                results[key] = dict(workload=wname, dims=spec.dims(), threads=threads,
                                    timing=timing,
                                    accuracy={_plain(k): v for k, v in acc.items()
                                              if k.endswith(f"({threads}t)") or "(" not in k},
                                    missing=missing, info=info, note=wl["note"])
                print("\n" + workload_table(results[key]), flush=True)
                if sweep_here:
                    sw = [r for r in good if r.name in THREADABLE]
                    tt = time_interleaved(spec, _relabel(sw, plain=False), x, budget * 0.6,
                                          args.repeats, min_rounds=min_sweep,
                                          desc=f"[{key}] threads {counts}")
                    tsweep[key] = dict(workload=wname, dims=spec.dims(), timing=tt)
                del good, main_r
                release()

        if thread_sweep and tsweep:
            print("\n### Thread sweep\n\n" + threads_table(tsweep, counts), flush=True)

        if not args.no_units_sweep:
            usys = [s for s in UNITS_SWEEP_SYSTEMS if s in systems]
            for cell in cells:
                sweep = units_sweep[cell] = {}
                for u in units_list:
                    spec = Spec(f"units{u}", units=u, cell=cell, **UNITS_SWEEP_SHAPE)
                    log(f"[units sweep] {cell_title(cell)}({u}) ...")
                    good, missing, acc, _, x = build_checked(spec, usys)
                    budget = (20 if u <= 256 else 35) * scale * CELLS[cell]["budget"]
                    tt = time_interleaved(spec, good, x, budget, args.repeats,
                                          min_rounds=min_sweep, max_rounds=25,
                                          desc=f"[units sweep] {cell} units {u}")
                    sweep[str(u)] = dict(dims=spec.dims(), timing=tt, missing=missing,
                                         accuracy=acc)
                    del good
                    release()
                print(f"\n### Units sweep, {cell_title(cell)} (batch 64, timesteps 100, "
                      f"features 32; {threads} threads)\n\n" + units_table(sweep), flush=True)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    roofline = roofline_table(results, units_sweep, sgemm)

    elapsed = time.time() - t_start
    foreign = run_mon.foreign_cores()
    load1 = os.getloadavg()
    os.makedirs(args.out, exist_ok=True)
    header = [
        "# fastlstm benchmark", "",
        f"- date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M:%S')}, run took "
        f"{elapsed / 60:.1f} min ({'--quick' if args.quick else 'full run'}; command: "
        f"`python bench/run_bench.py {' '.join(sys.argv[1:])}`)",
        f"- machine: {machine.get('Model name', platform.processor())}, "
        f"{machine.get('CPU(s)', os.cpu_count())} CPUs ({machine.get('Core(s) per socket', '?')} "
        f"cores/socket, {machine.get('Thread(s) per core', '?')} thread/core), L1d "
        f"{machine.get('L1d cache', '?')}, L2 {machine.get('L2 cache', '?')}, L3 "
        f"{machine.get('L3 cache', '?')}, {machine.get('simd', '')}"
        + (f", hypervisor {machine['Hypervisor vendor']}" if "Hypervisor vendor" in machine
           else ""),
        f"- fastlstm.build_info(): `{build_info}`; source {machine.get('fastlstm_git', '?')}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in env.versions.items()),
        "- numpy sgemm (n=2048, OpenBLAS): " + ", ".join(
            f"{t} thread{'s' if t > 1 else ''} {g:.1f} GFLOP/s" for t, g in sgemm.items()),
        f"- threads: {threads} for every system in the main tables (torch.set_num_threads, ORT "
        "intra_op_num_threads with inter_op 1 and sequential execution, LiteRT num_threads, TF "
        "intra/inter-op threads, fastlstm.set_num_threads)",
        f"- cells: {', '.join(f'`{cell_title(c)}(units) -> Dense(1)`' for c in cells)}; GRU "
        "timing budgets are half the LSTM ones",
        "- time per call: median over interleaved rounds; each sample is the mean of a block of "
        "k back-to-back calls (k makes a block last ≥ 20 ms). GFLOP/s counts "
        "2·batch·timesteps·G·units·(features+units) per call, G = 4 gates for LSTM, "
        "3 for GRU.",
        f"- machine load: 1-min load average {load0[0]:.2f} at start, {load1[0]:.2f} at end; "
        + (f"other processes used {foreign:.2f} cores on average during the run"
           + (" (**disturbed run**: compare ratios, not absolute times)" if foreign > 0.15
              else "") if foreign is not None else "") + ".",
        "- accuracy: every system's output vs Keras `predict` on the same input (step: 12 "
        f"consecutive stateful steps); tolerance |err| ≤ {ATOL:g} + {RTOL:g}·|keras|.",
    ]
    if env.import_errors:
        header.append("- unavailable peer modules: " + "; ".join(
            f"{k}: {v}" for k, v in env.import_errors.items()))
    if accuracy_failures:
        header.append(f"- **GROSS ACCURACY FAILURES (> {GROSS}):** {', '.join(accuracy_failures)}")
    md = "\n".join(header) + "\n\n## Summary (best peer / fastlstm: > 1 means fastlstm is faster)\n\n"
    md += summary_table(results, sgemm, tsweep)
    if roofline:
        md += ("\n\n## LSTM vs GRU: fraction of the sgemm peak\n\nfastlstm's GFLOP/s (gate "
               f"products) as a share of numpy sgemm at {threads} threads, for each cell; "
               "\"GRU ÷ LSTM fraction\" below 1 means the GRU kernel reaches less of the "
               "machine's matmul rate than the LSTM kernel on the same shape.\n\n" + roofline)
    md += "\n\n## Workloads\n\n"
    md += "\n\n".join(workload_table(res) for res in results.values())
    if tsweep:
        md += ("\n\n## Thread sweep\n\nThe threadable systems (TensorFlow fixes its thread "
               "pools at start-up), timed interleaved at "
               + " and ".join(map(str, counts)) + " threads in one session.\n\n"
               + threads_table(tsweep, counts))
    for cell, sweep in units_sweep.items():
        md += (f"\n\n## Units sweep, {cell_title(cell)}\n\nbatch 64, timesteps 100, features 32, "
               f"{threads} threads.\n\n" + units_table(sweep))
    notes = _notes(results)
    if notes:
        md += "\n\n## Notes\n\n" + notes
    md += "\n\n![bench](bench.png)\n"
    _write(os.path.join(args.out, "results.md"), md)
    blob = dict(date=datetime.datetime.now().isoformat(timespec="seconds"), argv=sys.argv[1:],
                elapsed_s=round(elapsed, 1), machine=machine, build_info=build_info,
                versions=env.versions, import_errors=env.import_errors, sgemm_gflops=sgemm,
                threads=threads, cells=cells, foreign_load_cores=foreign, loadavg_start=load0,
                loadavg_end=load1, workloads=results, thread_sweep=tsweep, units_sweep=units_sweep,
                accuracy_failures=accuracy_failures)
    _write(os.path.join(args.out, "results.json"), json.dumps(blob, indent=1, default=_jsonable))
    try:
        png = os.path.join(args.out, "bench.png")
        make_plot(png + ".tmp", results, units_sweep, tsweep, counts)
        os.replace(png + ".tmp", png)
    except Exception as e:  # noqa: BLE001
        log(f"plot failed: {e}")
    print("\n## Summary (best peer / fastlstm)\n\n" + summary_table(results, sgemm, tsweep), flush=True)
    if roofline:
        print("\n## LSTM vs GRU: fastlstm's fraction of numpy sgemm\n\n" + roofline, flush=True)
    print(f"\nwrote {args.out}/results.md, results.json, bench.png; run took {elapsed:.0f} s",
          flush=True)
    if accuracy_failures:
        print(f"GROSS ACCURACY FAILURES: {accuracy_failures}", flush=True)
        sys.exit(1)


def _foreign_note(timing):
    f = next(iter(timing.values()), {}).get("foreign_load_cores")
    return f"; other processes used {f:.2f} cores meanwhile" if f is not None and f > 0.05 else ""


def _plain(label):
    return label.split(" (")[0]


def _relabel(runners, plain):
    """Main tables use bare system names; the thread sweep 'name (Nt)'."""
    out = []
    for r in runners:
        r.tag = "" if plain else "sweep"
        out.append(r)
    return out


def _notes(results):
    notes = []
    for name, res in results.items():
        for lab, why in res["missing"].items():
            notes.append(f"- {name}: {lab} missing — {why}")
    exporters = sorted({res["info"].get("onnx_exporter") for res in results.values()} - {None})
    if exporters:
        notes.append(f"- ONNX models exported with the {' / '.join(exporters)} exporter of "
                     "torch.onnx.export (opset 17; dynamic batch and time axes except for step).")
    notes.append("- keras.predict is called with batch_size=len(x) (one Keras batch per call); "
                 "the step workload calls the stateful model's predict once per step.")
    notes.append("- LiteRT models come from a frozen concrete function with the workload's fixed "
                 "shapes (Keras 3's LSTM/GRU while-loop does not convert with dynamic shapes); the "
                 "XNNPACK delegate is on (the default).")
    notes.append("- step workload: fastlstm, keras.predict and tf.function run the stateful Keras "
                 "model; ONNX Runtime and LiteRT run models that take and return the state (LSTM "
                 "h, c; GRU h), and PyTorch passes it; the Python loop feeds the state back.")
    notes.append("- PyTorch / ONNX Runtime GRU: nn.GRU computes Keras's reset_after=True GRU "
                 "(n = tanh(W_in x + b_in + r·(W_hn h + b_hn))); Keras gates z, r, h are copied "
                 "to PyTorch's r, z, n, Keras's input and recurrent biases to bias_ih and bias_hh.")
    return "\n".join(notes)


def _write(path, text):
    """Write via path.tmp + rename, so an interrupted run never leaves a half-written file."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def _jsonable(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.bool_):
        return bool(o)
    return str(o)


if __name__ == "__main__":
    main()
