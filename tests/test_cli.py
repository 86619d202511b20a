"""The `fastlstm` command line."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from fastlstm.cli import main
import keras_fixtures as kf

STACKED = kf.path(kf.case("keras2", "stacked")["files"]["h5"])          # (None, 7, 3) -> 2
STATEFUL = kf.path(kf.case("keras3", "stacked_stateful")["files"]["keras"])  # batch 2
FORECAST = kf.path(kf.case("keras3", "stateful_forecasting")["files"]["keras"])


def test_info_describes_file_layers_and_kernel_path(capsys):
    assert main(["info", STACKED]) == 0
    out = capsys.readouterr().out
    assert "HDF5, Keras 1/2 legacy weights layout, Keras 2.21" in out
    for text in ("lstm_1", "(None, 7, 6)", "360", "dense", "930 parameters",
                 "one C call for the whole stack"):
        assert text in out
    assert main(["info", STATEFUL]) == 0
    out = capsys.readouterr().out
    assert "Keras 3 .keras zip" in out and "stateful, batch 2" in out


@pytest.mark.parametrize("ext", [".npy", ".npz", ".csv"])
def test_predict_files_in_and_out(tmp_path, ext, capsys):
    import fastlstm

    x = np.random.default_rng(0).uniform(-1, 1, (37, 7, 3)).astype(np.float32)
    src = tmp_path / f"x{ext}"
    if ext == ".npy":
        np.save(src, x)
    elif ext == ".npz":
        np.savez(src, samples=x)
    else:
        np.savetxt(src, x.reshape(37, -1), delimiter=",", fmt="%.9g")
    out = tmp_path / f"y{ext}"
    assert main(["predict", STACKED, str(src), "-o", str(out), "--batch-size", "8"]) == 0
    y = (np.load(out) if ext == ".npy" else np.load(out)["y"] if ext == ".npz"
         else np.loadtxt(out, delimiter=",", dtype=np.float32))
    expected = fastlstm.load_model(STACKED).predict(x)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-7)


def test_predict_feeds_a_stateful_model_in_order(tmp_path):
    import fastlstm

    x = np.random.default_rng(1).uniform(-1, 1, (6, 4, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["predict", STATEFUL, str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 0
    model = fastlstm.load_model(STATEFUL)
    expected = np.concatenate([model.predict(x[i:i + 2]) for i in range(0, 6, 2)])
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected)
    np.save(tmp_path / "odd.npy", x[:5])
    assert main(["predict", STATEFUL, str(tmp_path / "odd.npy"), "-o",
                 str(tmp_path / "y.npy")]) == 1


def test_csv_of_one_sequence_for_models_without_fixed_timesteps(tmp_path):
    import fastlstm

    seq = np.random.default_rng(2).uniform(-1, 1, (9, 2)).astype(np.float32)
    np.savetxt(tmp_path / "s.csv", seq, delimiter=",", fmt="%.9g")
    assert main(["predict", FORECAST, str(tmp_path / "s.csv"), "-o", str(tmp_path / "y.npy")]) == 0
    expected = fastlstm.load_model(FORECAST).predict(seq[None])
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-6, atol=1e-7)


def test_user_errors_exit_1_with_one_line_and_no_traceback(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.h5")]) == 1
    err = capsys.readouterr().err
    assert "fastlstm info: error: no such model file" in err and "Traceback" not in err
    np.save(tmp_path / "x.npy", np.zeros((2, 5, 3), np.float32))
    assert main(["predict", STACKED, str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 1
    assert "timesteps: expected 7, got 5" in capsys.readouterr().err
    assert main(["predict", STACKED, str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.txt")]) == 1
    with pytest.raises(SystemExit) as e:
        main(["predict", STACKED])
    assert e.value.code == 2


def test_bench_prints_a_table(capsys, tmp_path):
    assert main(["bench", STACKED, "--batch-sizes", "1,4", "--repeats", "3"]) == 0
    out = capsys.readouterr().out
    assert "batch  fastlstm/call" in out and "\n      4 " in out
    plot = tmp_path / "b.png"
    code = main(["bench", STACKED, "--batch-sizes", "1", "--repeats", "2", "--plot", str(plot)])
    if importlib.util.find_spec("matplotlib"):
        assert code == 0 and plot.stat().st_size > 0
    else:
        assert code == 1 and "needs matplotlib" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("keras") is not None
                    or importlib.util.find_spec("tf_keras") is not None,
                    reason="Keras installed: verify runs for real (see bench/ and the fixtures)")
def test_verify_without_keras_says_what_to_install(capsys):
    assert main(["verify", STACKED]) == 1
    assert "pip install tensorflow-cpu" in capsys.readouterr().err


def test_console_script_and_module_entry_points():
    script = os.path.join(os.path.dirname(sys.executable), "fastlstm")
    for cmd in ([script], [sys.executable, "-m", "fastlstm"]):
        r = subprocess.run(cmd + ["--threads", "1", "info", STACKED], capture_output=True,
                           text=True)
        assert r.returncode == 0 and "lstm_2" in r.stdout, r.stderr
    r = subprocess.run([script, "demo", "--steps", "3"], capture_output=True, text=True)
    assert r.returncode == 0 and "one-step prediction" in r.stdout, r.stderr
