"""Processes: a child forked after multi-threaded calls (gunicorn --preload with a warm-up
call, Celery prefork, multiprocessing's fork start method) must work, with the same results,
without the user doing anything. GNU libgomp's thread pool does not survive fork, so such a
child runs serial (src/team.c); each scenario runs in a fresh interpreter with a deadline, so
a hang fails the test instead of stalling the suite."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import fastlstm
from fastlstm import _kernels

TESTS = os.path.dirname(os.path.abspath(__file__))

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

# Models large enough that the parent's warm-up really runs a two-thread team: batch 1 splits
# unit blocks, batch 9 splits rows; generation and sequences both.
PRELUDE = textwrap.dedent("""
    import os, sys, warnings
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    import fastlstm
    from small_models import chain_model

    def models():
        return {batch: chain_model((batch, None, 4), 128, 4, stateful=True, td=True,
                                   return_sequences=True, seed=batch)
                for batch in (1, 9)}

    def run_all(ms):
        out = []
        for batch, m in ms.items():
            x = np.random.default_rng(batch).uniform(-1, 1, (batch, 40, 4)).astype(np.float32)
            m.reset_states()
            out.append(m.predict(x))
            out.append(m.generate(x[:, :3], 25))
        return out

    def same(got):
        return all(np.array_equal(a, b) for a, b in zip(expected, got))

    def in_child(check):  # check() in a forked child; its exit status: did it return True
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = 0 if check() else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status

    fastlstm.set_num_threads(1)
    expected = run_all(models())
    fastlstm.set_num_threads(2)
    warm = models()
    assert same(run_all(warm))
""")


def _run(body, timeout=120):
    """The scenario in a fresh interpreter and session: on the deadline the whole process group
    is killed, so a fork child that hangs cannot outlive the test."""
    script = PRELUDE + textwrap.dedent(body)
    proc = subprocess.Popen([sys.executable, "-c", script, TESTS], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the scenario did not finish within {timeout} s (a hang):\n{out}{err}")
    assert proc.returncode == 0, out + err
    return out


needs_threads = pytest.mark.skipif(
    not fastlstm.build_info()["openmp"] or _kernels.max_threads() < 2,
    reason="needs OpenMP and two processors this process may use")


@needs_threads
def test_os_fork_child_after_multithreaded_calls_works_and_matches():
    out = _run("""
        def check():
            # the warmed-up models, and a fresh one made in the child
            ok = same(run_all(warm)) and same(run_all(models()))
            print("child threads", fastlstm.get_num_threads(),
                  fastlstm.build_info()["fork_serial"], flush=True)
            return ok

        in_child(check)
        # the parent keeps its threads
        assert fastlstm.get_num_threads() == 2
        assert same(run_all(warm))
        print("parent ok")
    """)
    assert "parent ok" in out
    info = fastlstm.build_info()
    # A libgomp build keeps the child serial; LLVM's libomp survives fork and keeps two.
    assert "child threads 1 True" in out or "child threads 2 False" in out, out
    assert info["fork_serial"] is False


@needs_threads
def test_fork_pool_workers_after_multithreaded_calls():
    out = _run("""
        import multiprocessing as mp

        def work(i):
            return [a.tolist() for a in run_all(models())]

        with mp.get_context("fork").Pool(2) as pool:
            results = pool.map(work, range(4))
        for r in results:
            assert same([np.asarray(a, np.float32) for a in r])
        print("pool ok", len(results))
    """)
    assert "pool ok 4" in out


@needs_threads
def test_set_num_threads_in_a_serial_fork_child_warns_and_stays_correct():
    out = _run("""
        def check():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fastlstm.set_num_threads(2)
            if fastlstm.build_info()["fork_serial"]:
                assert fastlstm.get_num_threads() == 1
                assert any("spawn" in str(w.message) for w in caught), caught
            return same(run_all(warm))

        in_child(check)
        print("ok")
    """)
    assert "ok" in out


def test_spawn_pool_workers_use_threads():
    """spawn (and forkserver) start fresh interpreters: they keep every thread a fresh process
    gets (OMP_NUM_THREADS, else every processor), whatever their parent ran before."""
    out = _run("""
        import multiprocessing as mp
        from fastlstm import _kernels
        from fork_helpers import spawn_work
        fresh = max(1, min(_kernels.default_num_threads(), _kernels.max_threads()))
        with mp.get_context("spawn").Pool(1) as pool:
            threads, serial = pool.apply(spawn_work)
        print("spawn", threads, serial, "fresh", fresh)
    """)
    threads, serial, _, fresh = out.split("spawn", 1)[1].split()
    assert (threads, serial) == (fresh, "False")
