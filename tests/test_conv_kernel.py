"""The direct cross-correlation (fastlstm._kernels.correlate_direct, src/conv_simd.h) against
a float64 NumPy reference, its bits across the SIMD instruction sets and thread counts, and the
arguments it refuses."""
import numpy as np
import pytest
from isa_params import isa_params

import fastlstm
from fastlstm import _kernels

PATHS = isa_params()


@pytest.fixture
def kernel_path():
    before = _kernels.get_isa()
    yield fastlstm.set_kernel_path
    _kernels.set_isa(before)


def reference(x, kernel, strides, dilations):
    """The valid correlation in float64, one tap at a time, and the same sum of |terms| (what
    a float32 sum's rounding error is relative to)."""
    rank = kernel.ndim - 2
    x64, k64 = x.astype(np.float64), kernel.astype(np.float64)
    spans = [(k - 1) * d + 1 for k, d in zip(kernel.shape[:rank], dilations)]
    out = [(n - span) // s + 1 for n, span, s in zip(x.shape[1:1 + rank], spans, strides)]
    y = np.zeros((x.shape[0], *out, kernel.shape[-1]))
    scale = np.zeros_like(y)
    for tap in np.ndindex(*kernel.shape[:rank]):
        index = (slice(None),) + tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, o, s in zip(tap, dilations, out, strides))
        y += x64[index] @ k64[tap]
        scale += np.abs(x64[index]) @ np.abs(k64[tap])
    return y, scale


def random_case(rng, batch, spatial, channels, window, filters):
    x = rng.uniform(-1, 1, (batch, *spatial, channels)).astype(np.float32)
    kernel = rng.uniform(-1, 1, (*window, channels, filters)).astype(np.float32)
    return x, kernel


SHAPES = [  # (spatial, window, strides, dilations)
    ((19,), (3,), (1,), (1,)),
    ((23,), (4,), (2,), (3,)),
    ((9, 11), (3, 3), (1, 1), (1, 1)),
    ((12, 10), (3, 2), (2, 3), (2, 1)),
    ((5, 6, 7), (2, 3, 2), (1, 1, 1), (1, 1, 1)),
    ((7, 6, 9), (3, 2, 2), (2, 1, 3), (2, 2, 1)),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("spatial,window,strides,dilations", SHAPES)
@pytest.mark.parametrize("channels", [1, 3, 64])
@pytest.mark.parametrize("filters", [1, 3, 16, 17, 33])
def test_direct_correlation_matches_float64(kernel_path, path, spatial, window, strides,
                                            dilations, channels, filters):
    """Every filter count's vectors and masked tails, every rank, strides and dilations."""
    kernel_path(path)
    rng = np.random.default_rng(channels * 100 + filters)
    x, kernel = random_case(rng, 3, spatial, channels, window, filters)
    got = _kernels.correlate_direct(x, kernel, strides, dilations, 1)
    want, scale = reference(x, kernel, strides, dilations)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.all(np.abs(got - want) <= 1e-5 * scale + 1e-30), np.abs(got - want).max()


def test_direct_correlation_agrees_with_the_numpy_path():
    from fastlstm.layers.conv_ops import correlate

    rng = np.random.default_rng(5)
    x, kernel = random_case(rng, 4, (13, 12), 5, (3, 3), 20)
    got = _kernels.correlate_direct(x, kernel, (2, 1), (1, 2), 1)
    np.testing.assert_allclose(got, correlate(x, kernel, (2, 1), (1, 2)), rtol=1e-5, atol=1e-5)


def test_direct_correlation_gives_the_same_bits_on_every_simd_isa(kernel_path):
    """Each output is one chain of multiply-adds in (taps..., channel) order on 8 and 16 lanes,
    whatever the blocking: AVX2 and AVX-512 agree to the bit."""
    simd = [p for p in _kernels.ISA_NAMES if p != "portable" and p in _kernels.supported_isas()]
    if len(simd) < 2:
        pytest.skip(f"needs two SIMD instruction sets; this machine runs {simd}")
    rng = np.random.default_rng(7)
    for spatial, window, strides, dilations in SHAPES:
        for channels, filters in ((1, 1), (3, 17), (64, 33), (9, 64), (16, 40)):
            x, kernel = random_case(rng, 5, spatial, channels, window, filters)
            outs = []
            for path in simd:
                kernel_path(path)
                outs.append(_kernels.correlate_direct(x, kernel, strides, dilations, 1))
            for out in outs[1:]:
                assert np.array_equal(out, outs[0]), (spatial, channels, filters)


@pytest.mark.parametrize("path", PATHS)
def test_thread_count_does_not_change_the_bits(kernel_path, path):
    """Big enough for a team of two (src/conv.c), and sizes whose split ends mid-block."""
    if _kernels.max_threads() < 2:
        pytest.skip("one thread here (no OpenMP, or one CPU)")
    kernel_path(path)
    rng = np.random.default_rng(11)
    for batch, spatial, channels, filters in ((7, (31, 29), 3, 17), (3, (125,), 64, 64),
                                              (1, (9, 7, 11), 16, 33)):
        window = (3,) * len(spatial)
        x, kernel = random_case(rng, batch, spatial, channels, window, filters)
        ones = (1,) * len(spatial)
        serial = _kernels.correlate_direct(x, kernel, ones, ones, 1)
        assert np.array_equal(_kernels.correlate_direct(x, kernel, ones, ones, 2), serial)


def test_a_team_of_two_shares_the_work():
    """The late-join test hook (src/team.h): the workers start after thread 0's share, and the
    result is the same."""
    if _kernels.max_threads() < 2:
        pytest.skip("one thread here (no OpenMP, or one CPU)")
    rng = np.random.default_rng(13)
    x, kernel = random_case(rng, 8, (20, 20), 8, (3, 3), 16)
    serial = _kernels.correlate_direct(x, kernel, (1, 1), (1, 1), 1)
    _kernels.set_late_join_for_tests(1)
    try:
        shared = _kernels.correlate_direct(x, kernel, (1, 1), (1, 1), 2)
        assert _kernels.last_team_for_tests()[0] == 2
    finally:
        _kernels.set_late_join_for_tests(0)
    assert np.array_equal(shared, serial)


def test_small_cases_edges():
    """A window as large as the input (one output), a stride past the axis, a batch of 0."""
    rng = np.random.default_rng(17)
    x, kernel = random_case(rng, 2, (5, 4), 3, (5, 4), 7)
    want, _ = reference(x, kernel, (1, 1), (1, 1))
    got = _kernels.correlate_direct(x, kernel, (1, 1), (1, 1), 1)
    assert got.shape == (2, 1, 1, 7)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    got = _kernels.correlate_direct(x[:, :, :1], kernel[:, :1], (10**30, 3), (1, 10**30), 1)
    want, _ = reference(x[:, :, :1], kernel[:, :1], (10**30, 3), (1, 10**30))
    assert got.shape == (2, 1, 1, 7)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    empty = _kernels.correlate_direct(x[:0], kernel, (1, 1), (1, 1), 1)
    assert empty.shape == (0, 1, 1, 7) and empty.dtype == np.float32


@pytest.mark.parametrize("x_shape,k_shape,strides,dilations,match", [
    ((2, 8, 3), (3, 3, 3, 4), (1, 1), (1, 1), r"inputs of rank 4 .* got shape \(2, 8, 3\)"),
    ((2, 8, 8, 3), (3, 3, 4), (1,), (1,), r"inputs of rank 3 .* got shape \(2, 8, 8, 3\)"),
    ((2, 3), (3,), (1,), (1,), r"1 to 3 spatial axes .* got shape \(3,\)"),
    ((2, 4, 4, 4, 4, 3), (2, 2, 2, 2, 3, 4), (1,) * 4, (1,) * 4, r"1 to 3 spatial axes"),
    ((2, 8, 5), (3, 3, 4), (1,), (1,), r"the kernel takes 3 channels, the input has 5"),
    ((2, 4, 3), (5, 3, 4), (1,), (1,),
     r"spatial shape \(4,\) is smaller than the dilated window \(5,\)"),
    ((2, 9, 3), (3, 3, 4), (1,), (5,), r"smaller than the dilated window \(11,\)"),
    ((2, 8, 3), (3, 3, 4), (0,), (1,), r"strides must be 1 integers >= 1, got \(0,\)"),
    ((2, 8, 3), (3, 3, 4), (1, 1), (1,), r"strides must be 1 integers >= 1"),
    ((2, 8, 3), (3, 3, 4), (1,), (-1,), r"dilations must be 1 integers >= 1"),
    ((2, 8, 3), (3, 3, 4), ("a",), (1,), r"strides must be 1 integers"),
    ((2, 8, 3), (3, 3, 0), (1,), (1,), r"needs a window, channels and filters"),
    ((2, 8, 0), (3, 0, 4), (1,), (1,), r"needs a window, channels and filters"),
])
def test_bad_arguments_raise_value_error(x_shape, k_shape, strides, dilations, match):
    x = np.zeros(x_shape, np.float32)
    kernel = np.zeros(k_shape, np.float32)
    with pytest.raises(ValueError, match=match):
        _kernels.correlate_direct(x, kernel, strides, dilations, 1)


def test_bad_thread_count_raises_value_error():
    x, kernel = np.zeros((1, 5, 2), np.float32), np.zeros((3, 2, 2), np.float32)
    with pytest.raises(ValueError, match="n_threads must be >= 1, got 0"):
        _kernels.correlate_direct(x, kernel, (1,), (1,), 0)
