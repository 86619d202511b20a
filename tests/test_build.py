"""The package builds everywhere: strict C99 sources, and a build on a compiler without OpenMP
and without the AVX2 path still works (serial, with a loud warning) and gives Keras's results."""
import os
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
