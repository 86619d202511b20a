#!/usr/bin/env python3
"""fastlstm on two layer mixes of published models, against Keras and ONNX Runtime.

    python bench/bench_real_models.py [--budget 20] [--out bench/results]

- ``cnn_lstm``: a human-activity classifier (UCI HAR shape, 128 steps of 9 sensor channels):
  Conv1D(64, 3, relu) -> Conv1D(64, 3, relu) -> Dropout -> MaxPooling1D(2) -> LSTM(100) ->
  Dense(100, relu) -> Dense(6, softmax).
- ``lstm_attention``: a forecaster with Keras's own dot-product attention over its LSTM's
  sequence (50 steps of 16 features): LSTM(64, return_sequences) -> Attention()([seq, seq]) ->
  GlobalAveragePooling1D -> Dense(1).
- ``lrcn``: a CNN-LSTM video classifier (LRCN; 8 frames of 32x32x3): TimeDistributed(Conv2D(16,
  3, relu)) -> TimeDistributed(MaxPooling2D(2)) -> TimeDistributed(Conv2D(16, 3, relu)) ->
  TimeDistributed(GlobalAveragePooling2D) -> LSTM(64) -> Dense(5, softmax).

Each is built with Keras 3, given seeded random weights and saved as ``.keras``; fastlstm loads
that file. The peers run the same weights: Keras ``predict`` and a ``tf.function`` of the model,
PyTorch modules with the Keras weights copied in, and ONNX Runtime on their ONNX export. Every
output is checked against Keras before timing; then the systems are timed interleaved in this one
process (run_bench.time_interleaved: blocks of calls, rotated order, medians) at batch 1 and 64
on one thread (numpy's BLAS too: OPENBLAS_NUM_THREADS=1). Writes bench/results/real_models.md
and .json with the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback

# One thread for every system, numpy's BLAS included (fastlstm's convolutions and attention
# products go through it); read by OpenBLAS/MKL when numpy is first imported.
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_bench as rb  # noqa: E402  (sets TensorFlow's environment before importing it)

import numpy as np  # noqa: E402

BATCHES = (1, 64)
MODELS = {
    "cnn_lstm": dict(shape=(128, 9), note="Conv1D x2 -> MaxPooling1D -> LSTM(100) -> Dense x2"),
    "lstm_attention": dict(shape=(50, 16),
                           note="LSTM(64, rs) -> Attention([seq, seq]) -> GAP1D -> Dense(1)"),
    "lrcn": dict(shape=(8, 32, 32, 3),
                 note="TD(Conv2D(16,3)) -> TD(MaxPool2D) -> TD(Conv2D(16,3)) -> TD(GAP2D) -> "
                      "LSTM(64) -> Dense(5)"),
}


class Spec:
    """What run_bench's timing and Keras runners ask of a workload."""

    stateful = False

    def __init__(self, name, batch):
        self.name, self.batch = name, batch
        self.shape = (batch,) + MODELS[name]["shape"]


def keras_model(keras, name):
    L = keras.layers
    if name == "cnn_lstm":
        inp = keras.Input(MODELS[name]["shape"])
        x = L.Conv1D(64, 3, activation="relu")(inp)
        x = L.Conv1D(64, 3, activation="relu")(x)
        x = L.MaxPooling1D(2)(L.Dropout(0.5)(x))
        x = L.Dense(100, activation="relu")(L.LSTM(100)(x))
        return keras.Model(inp, L.Dense(6, activation="softmax")(x))
    if name == "lstm_attention":
        inp = keras.Input(MODELS[name]["shape"])
        seq = L.LSTM(64, return_sequences=True)(inp)
        att = L.Attention()([seq, seq])
        return keras.Model(inp, L.Dense(1)(L.GlobalAveragePooling1D()(att)))
    inp = keras.Input(MODELS[name]["shape"])
    x = L.TimeDistributed(L.Conv2D(16, 3, activation="relu"))(inp)
    x = L.TimeDistributed(L.MaxPooling2D(2))(x)
    x = L.TimeDistributed(L.Conv2D(16, 3, activation="relu"))(x)
    x = L.TimeDistributed(L.GlobalAveragePooling2D())(x)
    return keras.Model(inp, L.Dense(5, activation="softmax")(L.LSTM(64)(x)))


def torch_model(torch, name, kmodel):
    """The same network in PyTorch, with the Keras model's weights copied in."""
    nn = torch.nn
    w = {layer.name: [np.asarray(v) for v in layer.get_weights()] for layer in kmodel.layers}
    by_class = {}
    for layer in kmodel.layers:
        inner = getattr(layer, "layer", layer)
        by_class.setdefault(type(inner).__name__, []).append(layer.name)

    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a))

    def lstm(weights):
        kernel, recurrent, bias = weights
        units = recurrent.shape[0]
        m = nn.LSTM(kernel.shape[0], units, batch_first=True)   # gates i,f,g,o = Keras i,f,c,o
        m.weight_ih_l0.data, m.weight_hh_l0.data = t(kernel.T), t(recurrent.T)
        m.bias_ih_l0.data, m.bias_hh_l0.data = t(bias), torch.zeros(4 * units)
        return m

    def linear(weights):
        m = nn.Linear(*weights[0].shape)
        m.weight.data, m.bias.data = t(weights[0].T), t(weights[1])
        return m

    def conv(weights, dims):
        kernel, bias = weights   # Keras (*k, cin, cout) -> PyTorch (cout, cin, *k)
        cls = nn.Conv1d if dims == 1 else nn.Conv2d
        m = cls(kernel.shape[-2], kernel.shape[-1], kernel.shape[:dims])
        m.weight.data = t(np.moveaxis(kernel, (-1, -2), (0, 1)))
        m.bias.data = t(bias)
        return m

    dense = [linear(w[n]) for n in by_class["Dense"]]
    rnn = lstm(w[by_class["LSTM"][0]])

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense, self.rnn = nn.ModuleList(dense), rnn
            if name in ("cnn_lstm", "lrcn"):
                self.convs = nn.ModuleList(conv(w[n], 1 if name == "cnn_lstm" else 2)
                                           for n in by_class["Conv1D" if name == "cnn_lstm"
                                                             else "Conv2D"])

        def forward(self, x):
            if name == "cnn_lstm":
                x = x.transpose(1, 2)
                x = torch.relu(self.convs[1](torch.relu(self.convs[0](x))))
                x = nn.functional.max_pool1d(x, 2).transpose(1, 2)
                _, (h, _) = self.rnn(x)
                x = torch.relu(self.dense[0](h[0]))
                return torch.softmax(self.dense[1](x), -1)
            if name == "lstm_attention":
                seq, _ = self.rnn(x)
                scores = torch.softmax(seq @ seq.transpose(1, 2), -1)   # Attention(): q.k, no scale
                return self.dense[0]((scores @ seq).mean(1))
            n, steps = x.shape[0], x.shape[1]
            f = x.reshape((n * steps,) + tuple(x.shape[2:])).permute(0, 3, 1, 2)
            f = nn.functional.max_pool2d(torch.relu(self.convs[0](f)), 2)
            f = torch.relu(self.convs[1](f)).mean((2, 3)).reshape(n, steps, -1)
            _, (h, _) = self.rnn(f)
            return torch.softmax(self.dense[0](h[0]), -1)

    return Net().eval()


class TorchNet(rb.Runner):
    name = "torch"

    def __init__(self, torch, net):
        self.torch, self.net = torch, net

    def before(self):
        self.torch.set_num_threads(1)

    def predict(self, x):
        with self.torch.inference_mode():
            return self.net(self.torch.from_numpy(x)).numpy()


class OrtNet(rb.Runner):
    name = "onnxruntime"

    def __init__(self, env, torch, net, shape, path):
        with rb.warnings.catch_warnings():
            rb.warnings.simplefilter("ignore")
            torch.onnx.export(net, (torch.zeros(shape),), path, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "batch"}}, dynamo=False,
                              opset_version=17)
        so = env.ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
        so.log_severity_level = 3
        self.sess = env.ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def predict(self, x):
        return self.sess.run(None, {"x": x})[0]


class Fastlstm(rb.Runner):
    name = "fastlstm"

    def __init__(self, fl, path):
        self.fl, self.model = fl, fl.load_model(path)

    def before(self):
        self.fl.set_num_threads(1)

    def predict(self, x):
        return self.model.predict(x)


def run_model(env, name, budget, tmp):
    keras = env.keras
    keras.utils.set_random_seed(7)
    kmodel = keras_model(keras, name)
    rng = np.random.default_rng(7)
    kmodel.set_weights([rng.uniform(-0.3, 0.3, w.shape).astype(np.float32)
                        for w in kmodel.get_weights()])
    path = os.path.join(tmp, f"{name}.keras")
    kmodel.save(path)
    result = {"note": MODELS[name]["note"], "batches": {}, "missing": {}}
    runners = []
    for label, make in (
            ("fastlstm", lambda: Fastlstm(env.fastlstm, path)),
            ("torch", lambda: TorchNet(env.torch, torch_model(env.torch, name, kmodel))),
            ("onnxruntime", lambda: OrtNet(env, env.torch, torch_model(env.torch, name, kmodel),
                                           Spec(name, 1).shape, os.path.join(tmp, f"{name}.onnx"))),
            ("keras.predict", lambda: rb.KerasPredictRunner(env, Spec(name, 1), kmodel, 1)),
            ("tf.function", lambda: rb.TfFunctionRunner(env, Spec(name, 1), kmodel, 1))):
        try:
            runners.append(make())
        except Exception as e:  # noqa: BLE001
            result["missing"][label] = f"{type(e).__name__}: {str(e)[:300]}"
            rb.log(f"  {name}: {label} missing: {result['missing'][label]}")
            traceback.print_exc()
    env.tf.config.threading.set_intra_op_parallelism_threads(1)
    for batch in BATCHES:
        spec = Spec(name, batch)
        x = rng.uniform(-1, 1, spec.shape).astype(np.float32)
        expected = np.asarray(kmodel(x, training=False))
        kmodel.predict_function = None   # Keras 3 re-traces predict stale for a new shape
        agreed = []
        for r in runners:
            err = float(np.max(np.abs(np.asarray(r.predict(x)) - expected)))
            result["batches"].setdefault(str(batch), {}).setdefault("max_abs_diff", {})[
                r.name] = err
            if err < 1e-4:
                agreed.append(r)
            else:
                rb.log(f"  {name} b{batch}: {r.name} disagrees with Keras by {err:.2e}: not timed")
        timing = rb.time_interleaved(spec, agreed, x, budget, desc=f"{name} b{batch}")
        result["batches"][str(batch)]["median_s"] = {
            v["system"]: v["median_s"] for v in timing.values()}
    return result


def report(results, machine, sgemm, out):
    lines = ["# fastlstm on real-model layer mixes", "",
             f"Machine: {machine.get('Model name', '?')}, {machine.get('CPU(s)', '?')} CPUs, "
             f"{machine.get('simd', '')}; L1d {machine.get('L1d cache', '?')}, L2 "
             f"{machine.get('L2 cache', '?')}; numpy sgemm {sgemm.get(1, 0):.0f} GFLOP/s on one "
             f"core; fastlstm {machine.get('fastlstm_git', '?')}. One thread for every system. "
             "Ratios are the peer's median time over fastlstm's (above 1: fastlstm is faster).",
             ""]
    for name, res in results.items():
        lines += [f"## {name}: {res['note']}", ""]
        for label, why in res["missing"].items():
            lines.append(f"- {label} could not run: {why}")
        peers = sorted({s for b in res["batches"].values() for s in b.get("median_s", {})}
                       - {"fastlstm"})
        lines += ["", "| batch | fastlstm | " + " | ".join(f"{p} / fastlstm" for p in peers)
                  + " |", "|---" * (len(peers) + 2) + "|"]
        for batch, b in res["batches"].items():
            t = b.get("median_s", {})
            base = t.get("fastlstm")
            cells = [f"{t[p] / base:.1f}x" if base and p in t else "-" for p in peers]
            lines.append(f"| {batch} | {base * 1e6:.0f} us | " if base else f"| {batch} | - | ")
            lines[-1] += " | ".join(cells) + " |"
        lines.append("")
        diffs = {b: v.get("max_abs_diff", {}) for b, v in res["batches"].items()}
        lines += ["Largest |difference| from Keras's own call, per batch: "
                  + "; ".join(f"batch {b}: " + ", ".join(f"{k} {e:.1e}" for k, e in d.items())
                              for b, d in diffs.items()), ""]
    with open(os.path.join(out, "real_models.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(out, "real_models.json"), "w") as f:
        json.dump({"machine": machine, "sgemm_gflops": sgemm, "results": results}, f, indent=1)
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=20.0, help="seconds of timing per batch")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    env = rb.Env(1)
    machine, sgemm = rb.machine_info(), rb.sgemm_gflops([1])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            results[name] = run_model(env, name, args.budget, tmp)
    os.makedirs(args.out, exist_ok=True)
    report(results, machine, sgemm, args.out)


if __name__ == "__main__":
    main()
