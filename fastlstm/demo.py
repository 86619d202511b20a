"""The README's main job: load the Keras-trained stateful forecaster shipped in the package,
warm its state up on the known series, forecast ahead by feeding each prediction back, and time
each prediction."""
from __future__ import annotations

import time
from importlib import resources

import numpy as np

from .loading import load_model


def data_path(name: str) -> str:
    return str(resources.files("fastlstm").joinpath("data", name))


def forecast(model, series: np.ndarray, steps: int):
    """Keras's stateful forecasting protocol: one predict over the known series sets the state,
    then each one-step prediction is fed back as the next input. Returns (forecast, seconds per
    one-step prediction)."""
    model.reset_states()
    y = model.predict(series.reshape(1, -1, 1))
    out = np.empty(steps, np.float32)
    out[0] = y[0, 0]
    step = np.empty((1, 1, 1), np.float32)
    t0 = time.perf_counter()
    for k in range(1, steps):
        step[0, 0, 0] = out[k - 1]
        out[k] = model.predict(step)[0, 0]
    per_step = (time.perf_counter() - t0) / max(steps - 1, 1)
    return out, per_step


def main(steps: int = 50) -> int:
    model = load_model(data_path("forecaster.keras"))
    series = np.load(data_path("forecaster_series.npy"))
    model.summary()
    values, per_step = forecast(model, series, steps)
    last = "  ".join(f"{v:+.4f}" for v in series[-5:])
    print(f"\nknown series: {len(series)} values, the last five: {last}")
    print(f"forecast, next {steps} values (each prediction fed back as the next input):")
    for i in range(0, steps, 10):
        print("  " + "  ".join(f"{v:+.4f}" for v in values[i:i + 10]))
    print(f"\ntime per one-step prediction: {per_step * 1e6:.1f} us "
          f"(model.predict on a (1, 1, 1) input, stateful)")
    return 0
