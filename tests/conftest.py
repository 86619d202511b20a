import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import pytest  # noqa: E402


@pytest.fixture
def im2col_path():
    """The convolutions' im2col products (conv_ops._correlate_columns), which every ISA without
    the direct C kernel takes: the portable path."""
    from fastlstm import _kernels

    before = _kernels.get_isa()
    _kernels.set_isa("portable")
    yield
    _kernels.set_isa(before)
