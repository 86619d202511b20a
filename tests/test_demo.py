"""The README's main job: the shipped Keras-trained forecaster gives Keras's forecast."""
import subprocess
import sys

import numpy as np

import fastlstm
import keras_fixtures as kf
from fastlstm import demo


def test_demo_forecast_matches_keras():
    case = kf.case("keras3", "demo_forecaster")
    d = kf.data(case)
    ops = [op for op in case["protocol"] if op["op"] == "predict"]
    series = d[ops[0]["inputs"][0]].reshape(-1)
    assert np.array_equal(series, np.load(demo.data_path("forecaster_series.npy")))
    expected = np.array([d[op["outputs"][0]].reshape(-1)[-1] for op in ops], np.float32)
    model = fastlstm.load_model(demo.data_path("forecaster.keras"))
    values, per_step = demo.forecast(model, series, len(ops))
    kf.assert_close(values, expected, "forecast")
    assert per_step > 0


def test_demo_command_runs():
    out = subprocess.run([sys.executable, "-m", "fastlstm", "demo", "--steps", "20"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "time per one-step prediction" in out.stdout
    assert "forecast, next 20 values" in out.stdout
