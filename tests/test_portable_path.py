"""The Keras-parity suite also passes on the portable C path, forced by FASTLSTM_FORCE_PORTABLE
(the path a CPU without AVX2+FMA runs)."""
import os
import subprocess
import sys

import numpy as np

import fastlstm
import keras_fixtures as kf

HERE = os.path.dirname(os.path.abspath(__file__))


def test_parity_suite_on_the_portable_path():
    env = dict(os.environ, FASTLSTM_FORCE_PORTABLE="1")
    check = subprocess.run(
        [sys.executable, "-c", "import fastlstm; print(fastlstm.build_info()['kernel_path'])"],
        env=env, capture_output=True, text=True)
    assert check.stdout.strip() == "portable", check.stdout + check.stderr
    suite = [os.path.join(HERE, f) for f in ("test_formats.py", "test_stateful.py",
                                             "test_layers.py", "test_models.py")]
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                          *suite], env=env, capture_output=True, text=True, cwd=HERE)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout


def test_thread_count_does_not_change_model_results():
    """Whole models, compiled stacks and the general path alike: 1 and 2 threads give the
    same bits."""
    before = fastlstm.get_num_threads()
    try:
        for name in ("stacked", "many_to_many_td", "encoder_decoder_state"):
            case = kf.case("keras3", name)
            d = kf.data(case)
            op = next(op for op in case["protocol"] if op["op"] == "predict")
            xs = [np.repeat(d[k], 8, axis=0) for k in op["inputs"]]
            model = kf.load(case, "keras")
            results = []
            for n in (1, 2):
                fastlstm.set_num_threads(n)
                out = model.predict(xs if len(xs) > 1 else xs[0])
                results.append(out if isinstance(out, list) else [out])
            for a, b in zip(*results):
                assert np.array_equal(a, b), name
    finally:
        fastlstm.set_num_threads(before)
