"""Every instruction set fastlstm has kernels for, as pytest parameters: those this CPU (and
build) cannot run are skipped with a message naming what is missing."""
import pytest

from fastlstm import _kernels


def isa_params():
    supported = _kernels.supported_isas()
    return [pytest.param(name, marks=pytest.mark.skipif(
        name not in supported,
        reason=f"no {name} here: this build has {_kernels.compiled_isas()}, this CPU runs "
               f"{supported}")) for name in _kernels.ISA_NAMES]
