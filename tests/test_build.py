"""The package builds everywhere: strict C99 sources, kernels written once and stamped out per
ISA, and a build on a compiler without OpenMP and without the AVX2 path (or without only the
AVX-512 one) still works (serial, with a loud warning) and gives Keras's results."""
import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CC = shutil.which(os.environ.get("CC", "") or sysconfig.get_config_var("CC").split()[0] or "cc")


@pytest.mark.skipif(CC is None, reason="no C compiler on PATH")
@pytest.mark.parametrize("source", sorted(f for f in os.listdir(os.path.join(ROOT, "src"))
                                          if f.endswith(".c")))
def test_sources_are_strict_c99(source):
    cmd = [CC, "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
           "-I", os.path.join(ROOT, "src"), os.path.join(ROOT, "src", source)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _src(name):
    with open(os.path.join(ROOT, "src", name)) as f:
        return f.read()


def test_no_call_site_tests_an_isa():
    """The ISA is chosen once, with its kernel table (cpu.c); every other file calls through
    fl_kernels()."""
    for path in glob.glob(os.path.join(ROOT, "src", "*.[ch]")):
        name = os.path.basename(path)
        if name in ("cpu.c", "fastlstm.h"):
            continue
        code = re.sub(r"/\*.*?\*/", "", _src(name), flags=re.DOTALL)
        assert not re.search(r"fl_get_isa|FL_ISA_(PORTABLE|AVX|COUNT)", code), name


def test_kernel_bodies_are_written_once_against_the_vector_operations():
    """No body names an ISA's intrinsics or types: they come from simd_<isa>.h through
    FLV/FLG, and each kernels_<isa>.c stamps out all of them through kernel_bodies.h."""
    bodies = [os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "src", "*_simd.h"))]
    assert {"lstm_step_simd.h", "gru_step_simd.h", "gru_reset_before_simd.h",
            "rnn_project_simd.h", "dense_simd.h", "lstm_update_simd.h",
            "gru_update_simd.h"} <= set(bodies)
    for name in bodies + ["simd_math.h", "kernel_bodies.h"]:
        code = re.sub(r"/\*.*?\*/", "", _src(name), flags=re.DOTALL)
        assert not re.search(r"_mm(256|512)?_|__m(128|256|512)", code), name
    included = set(re.findall(r'#include "(\w+_simd\.h)"', _src("kernel_bodies.h")))
    assert included == set(bodies), set(bodies) - included
    for isa in ("portable", "avx2", "avx512"):
        assert '#include "kernel_bodies.h"' in _src(f"kernels_{isa}.c"), isa
    # No second copy of a cell's step anywhere: each one is named only in its body.
    for path in glob.glob(os.path.join(ROOT, "src", "*.[ch]")):
        name = os.path.basename(path)
        if not name.endswith("_simd.h"):
            assert not re.search(r"fl_(lstm|gru|simple_rnn)_step_(portable|avx2|avx512)\b",
                                 _src(name)), name


@pytest.mark.skipif(CC is None, reason="no C compiler on PATH")
def test_build_without_openmp_and_avx2(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    for item in ("setup.py", "pyproject.toml", "README.md", "src", "fastlstm"):
        src = os.path.join(ROOT, item)
        if os.path.isdir(src):
            shutil.copytree(src, tree / item, ignore=shutil.ignore_patterns("*.so", "*.c.bak",
                                                                            "__pycache__"))
        else:
            shutil.copy(src, tree / item)
    for so in (tree / "fastlstm").glob("_kernels*.so"):
        so.unlink()
    # A compiler that rejects -fopenmp, as Apple clang without libomp does.
    fake_cc = tmp_path / "cc-without-openmp"
    fake_cc.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        for a in "$@"; do
          if [ "$a" = "-fopenmp" ]; then echo "unsupported option -fopenmp" >&2; exit 1; fi
        done
        exec {CC} "$@"
        """))
    fake_cc.chmod(0o755)
    env = dict(os.environ, CC=str(fake_cc), FASTLSTM_NO_AVX2="1")
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tree,
                           env=env, capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert "does not support OpenMP; building a SERIAL version" in build.stderr + build.stdout

    check = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        sys.path.insert(0, sys.argv[2])
        import fastlstm, keras_fixtures as kf
        assert fastlstm.__file__.startswith(sys.argv[1]), fastlstm.__file__
        info = fastlstm.build_info()
        assert info["openmp"] is False and info["isas_compiled"] == ["portable"], info
        assert info["kernel_path"] == "portable", info
        n = 0
        for case in kf.cases():
            if case["name"] in ("stacked", "stateful_batches", "encoder_decoder_state"):
                n += kf.replay(kf.load(case, "h5"), case)
        assert n >= 6, n
        print("ok", n)
        """)
    run = subprocess.run([sys.executable, "-c", check, str(tree), os.path.join(ROOT, "tests")],
                         cwd=tmp_path, capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("ok")


_ISA_PROBE = r"""
#include <stdio.h>
#include "fastlstm.h"
int main(void) {
    float x[2 * 5], w[5 * 11], b[11], y[2 * 11], scratch[11];
    const fl_activation_spec tanh_act = {FL_ACT_TANH, {0.0f, 0.0f, 0.0f}};
    for (int i = 0; i < 10; i++) x[i] = (float)(i % 7) * 0.25f - 0.5f;
    for (int i = 0; i < 55; i++) w[i] = (float)((i * 13) % 17) * 0.125f - 1.0f;
    for (int i = 0; i < 11; i++) b[i] = (float)i * 0.1f;
    printf("%d %d\n", fl_isa_compiled(FL_ISA_AVX2), fl_isa_compiled(FL_ISA_AVX512));
    for (int isa = 0; isa < FL_ISA_COUNT; isa++) {
        if (fl_set_isa(isa) != FL_OK) continue;
        if (fl_dense_forward(x, 2, 5, w, b, 11, &tanh_act, y, scratch) != FL_OK) return 1;
        printf("%d", isa);
        for (int i = 0; i < 22; i++) printf(" %.9g", y[i]);
        printf("\n");
    }
    return 0;
}
"""


@pytest.mark.skipif(CC is None, reason="no C compiler on PATH")
@pytest.mark.parametrize("macro, compiled", [(None, (1, 1)), ("FASTLSTM_NO_AVX512", (1, 0)),
                                             ("FASTLSTM_NO_AVX2", (0, 0))])
def test_each_isa_can_be_left_out_of_the_build(tmp_path, macro, compiled):
    """FASTLSTM_NO_AVX512 leaves out the AVX-512 table, FASTLSTM_NO_AVX2 both SIMD ones; what
    remains links and computes (Dense + tanh against float64) on every ISA this CPU runs."""
    import numpy as np

    if sysconfig.get_config_var("HOST_GNU_TYPE") and "x86_64" not in sysconfig.get_config_var(
            "HOST_GNU_TYPE"):
        compiled = (0, 0)
    probe = tmp_path / "probe.c"
    probe.write_text(_ISA_PROBE)
    sources = sorted(glob.glob(os.path.join(ROOT, "src", "*.c")))
    cmd = [CC, "-std=c99", "-O0", "-I", os.path.join(ROOT, "src"), str(probe), *sources, "-lm",
           "-o", str(tmp_path / "probe")] + ([f"-D{macro}=1"] if macro else [])
    build = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr
    out = subprocess.run([str(tmp_path / "probe")], capture_output=True, text=True, check=True)
    lines = out.stdout.split("\n")
    assert tuple(int(v) for v in lines[0].split()) == compiled
    x = np.array([(i % 7) * 0.25 - 0.5 for i in range(10)]).reshape(2, 5)
    w = np.array([((i * 13) % 17) * 0.125 - 1.0 for i in range(55)]).reshape(5, 11)
    expected = np.tanh(x @ w + np.arange(11) * 0.1).ravel()
    ran = [line.split() for line in lines[1:] if line]
    assert ran and ran[0][0] == "0"  # the portable path runs everywhere
    for row in ran:
        np.testing.assert_allclose(np.array(row[1:], dtype=np.float64), expected, atol=2e-6)
