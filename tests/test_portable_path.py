"""The Keras-parity suite passes on every instruction set this machine runs, each chosen by
FASTLSTM_ISA in a fresh interpreter (the rest of the suite runs on the default, the best one);
FASTLSTM_FORCE_PORTABLE, its older form, still picks the portable path (what a CPU without
AVX2+FMA runs)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastlstm
import keras_fixtures as kf
from fastlstm import _kernels
from isa_params import isa_params

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ISA = _kernels.supported_isas()[-1]


def _isa_in(env) -> str:
    check = subprocess.run(
        [sys.executable, "-c", "import fastlstm; print(fastlstm.build_info()['isa'])"],
        env=env, capture_output=True, text=True)
    return check.stdout.strip() + check.stderr


def test_the_default_is_the_best_isa_and_the_environment_chooses():
    env = {k: v for k, v in os.environ.items() if k not in ("FASTLSTM_ISA",
                                                              "FASTLSTM_FORCE_PORTABLE")}
    assert _isa_in(env) == DEFAULT_ISA
    assert _isa_in(dict(env, FASTLSTM_FORCE_PORTABLE="1")) == "portable"
    for name in _kernels.supported_isas():
        assert _isa_in(dict(env, FASTLSTM_ISA=name)) == name
        assert _isa_in(dict(env, FASTLSTM_ISA=f" {name.upper()} ", FASTLSTM_FORCE_PORTABLE="1")) \
            == name  # the newer variable wins, case and spaces aside
    # A value this machine cannot run warns and keeps the best: the import never breaks.
    assert _isa_in(dict(env, FASTLSTM_ISA="sse9")).startswith(DEFAULT_ISA)
    with pytest.raises(ValueError, match=r"instruction set must be one of \['portable', 'avx2', "
                                         r"'avx512'\], got 'sse9'"):
        fastlstm.set_isa("sse9")


@pytest.mark.parametrize("isa", isa_params())
def test_parity_suite_on_every_isa(isa):
    if isa == DEFAULT_ISA:
        pytest.skip(f"{isa} is the default: the whole suite runs on it")
    env = dict(os.environ, FASTLSTM_ISA=isa)
    env.pop("FASTLSTM_FORCE_PORTABLE", None)
    assert _isa_in(env) == isa
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


def test_switching_isa_under_a_loaded_model_needs_no_repacking():
    """Packed weights do not depend on the ISA (8-unit blocks on every one), so models loaded
    and compiled on one ISA replay Keras's protocol on every other, stateful ones included,
    and the SIMD ISAs give the same bits as each other."""
    before = _kernels.get_isa()
    try:
        for name in ("stacked", "stateful_batches", "encoder_decoder_state", "gru_reset_before",
                     "gru_wide", "simple_rnn_stateful"):
            case = kf.case("keras3", name)
            model = kf.load(case, "keras")
            d = kf.data(case)
            op = next(op for op in case["protocol"] if op["op"] == "predict")
            xs = [d[k] for k in op["inputs"]]
            simd_out = []
            for isa in _kernels.supported_isas()[::-1]:
                fastlstm.set_isa(isa)
                if hasattr(model, "reset_states"):
                    model.reset_states()
                assert kf.replay(model, case, label=isa) >= 1, (name, isa)
                if isa != "portable":
                    if hasattr(model, "reset_states"):
                        model.reset_states()
                    out = model.predict(xs if len(xs) > 1 else xs[0],
                                        batch_size=op.get("batch_size"))
                    simd_out.append(out if isinstance(out, list) else [out])
            for other in simd_out[1:]:
                for a, b in zip(simd_out[0], other):
                    assert np.array_equal(a, b), name
    finally:
        fastlstm.set_isa(before)
