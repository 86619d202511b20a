"""The convolution arithmetic every convolution layer shares (Conv1D, Conv2D, the ConvLSTM
cells): output lengths and padding as TensorFlow computes them, and an N-D cross-correlation of
a channels_last input with a Keras kernel (``(*kernel_size, in_channels // groups, filters)``,
keras/src/layers/convolutional/base_conv.py build, tf_keras layers/convolutional/base_conv.py).

The correlation runs in C where it can (correlate), else as one matrix product per group over
im2col rows (every tap's channels side by side, in the kernel's (taps..., channels) order), made
for a bounded number of output positions at a time so that the column buffer stays small however
large the input is.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .. import _kernels

# Floats of im2col columns made at once (64 MB).
COLUMN_BUDGET = 1 << 24


def conv_output_length(n_steps, window, padding, stride, dilation=1):
    """tf_keras utils/conv_utils.py conv_output_length (keras/src/ops/operation_utils.py
    compute_conv_output_shape gives the same): None stays None; "causal" keeps the length."""
    if n_steps is None:
        return None
    if padding == "valid":
        n_steps -= (window - 1) * dilation
    return (n_steps + stride - 1) // stride


def same_padding(n_steps, window, stride, dilation=1):
    """Steps TensorFlow adds before the input for padding="same": half the total, the odd one
    after (tensorflow/core/framework/kernel_shape_util.cc GetWindowedOutputSizeVerbose)."""
    n_out = (n_steps + stride - 1) // stride
    total = max((n_out - 1) * stride + (window - 1) * dilation + 1 - n_steps, 0)
    return total // 2, total - total // 2


def pad_amounts(n_steps, window, padding, stride, dilation=1) -> tuple[int, int]:
    """(before, after) that padding adds to one spatial axis before a valid correlation."""
    if padding == "same":
        return same_padding(n_steps, window, stride, dilation)
    if padding == "causal":   # keras conv1d.py _compute_causal_padding: all of it before
        return (window - 1) * dilation, 0
    return 0, 0


def pad_input(x, windows, padding, strides, dilations):
    """x (batch, *spatial, channels) padded with zeros as ``padding`` asks, per spatial axis."""
    pads = [pad_amounts(x.shape[1 + i], k, padding, s, d)
            for i, (k, s, d) in enumerate(zip(windows, strides, dilations))]
    if any(p != (0, 0) for p in pads):
        x = np.pad(x, [(0, 0)] + pads + [(0, 0)])
    return x


def correlate(x, kernel, strides: Sequence[int], dilations: Sequence[int], groups: int = 1,
              n_threads: int = 1):
    """The valid cross-correlation of x (batch, *spatial, channels), already padded, with kernel
    (*window, channels // groups, filters): (batch, *out_spatial, filters), float32.

    Ungrouped correlations on a SIMD ISA run in the C kernel (src/conv_simd.h: each output's
    multiply-adds in one chain, no column buffer, on n_threads); grouped ones, and every one on
    the portable path (no FMA: slower there than the BLAS products), as im2col products.
    Raises ValueError when a spatial axis is shorter than its dilated window."""
    if groups == 1 and _kernels.get_isa() != "portable":
        return _kernels.correlate_direct(x, kernel, tuple(strides), tuple(dilations), n_threads)
    return _correlate_columns(x, kernel, strides, dilations, groups)


def _correlate_columns(x, kernel, strides, dilations, groups):
    """correlate as one matrix product per group over im2col rows, COLUMN_BUDGET at a time."""
    n_dims = kernel.ndim - 2
    windows = kernel.shape[:n_dims]
    n_batch, spatial, n_channels = x.shape[0], x.shape[1:1 + n_dims], x.shape[-1]
    n_filters = kernel.shape[-1]
    spans = [(k - 1) * d + 1 for k, d in zip(windows, dilations)]
    out = tuple((n - span) // s + 1 for n, span, s in zip(spatial, spans, strides))
    if any(n < span for n, span in zip(spatial, spans)):
        raise ValueError(f"an input of spatial shape {tuple(spatial)} is smaller than the "
                         f"dilated window {tuple(spans)}")
    n_cg, n_fg = n_channels // groups, n_filters // groups
    n_taps = int(np.prod(windows))
    # (groups, taps * channels per group, filters per group), rows in the kernel's tap order.
    w = kernel.reshape(n_taps, n_cg, groups, n_fg).transpose(2, 0, 1, 3)
    w = w.reshape(groups, n_taps * n_cg, n_fg)
    lead = (n_batch,) + out          # the output positions
    y = np.empty(lead + (n_filters,), np.float32)
    if 0 in lead:
        return y
    # Windows as a view: (batch, *out_positions, channels, *spans), then the dilated taps.
    view = np.lib.stride_tricks.sliding_window_view(x, spans, axis=tuple(range(1, 1 + n_dims)))
    view = view[(slice(None),) + tuple(slice(None, None, s) for s in strides)
                + (slice(None),) + tuple(slice(None, None, d) for d in dilations)]
    # -> (batch, *out, *taps, channels): the kernel's (taps..., channels) order per row.
    order = ((0,) + tuple(range(1, 1 + n_dims)) + tuple(range(2 + n_dims, 2 + 2 * n_dims))
             + (1 + n_dims,))
    view = view.transpose(order)
    axis, step = _chunking(lead, n_taps * n_channels)
    for outer in np.ndindex(*lead[:axis]):
        for a0 in range(0, lead[axis], step):
            part = outer + (slice(a0, min(lead[axis], a0 + step)),)
            cols = np.ascontiguousarray(view[part], dtype=np.float32)
            cols = cols.reshape(-1, n_taps, groups, n_cg)
            if groups == 1:
                rows = cols.reshape(-1, n_taps * n_cg) @ w[0]
            else:
                cols = cols.transpose(2, 0, 1, 3).reshape(groups, -1, n_taps * n_cg)
                # (groups, rows, filters per group) -> (rows, filters)
                rows = np.matmul(cols, w).transpose(1, 0, 2).reshape(-1, n_filters)
            y[part] = rows.reshape(y[part].shape)
    return y


def _chunking(lead: tuple, per_position: int) -> tuple:
    """How correlate cuts the output positions (batch, *out) into blocks whose im2col columns
    (per_position floats each) fit COLUMN_BUDGET: the first axis whose trailing positions fit,
    in steps along it, every index of the axes before it one at a time. One position whose
    columns exceed the budget on their own is made alone."""
    axis = 0
    while axis < len(lead) - 1 and per_position * math.prod(lead[axis + 1:]) > COLUMN_BUDGET:
        axis += 1
    # The columns of one index of that axis.
    return axis, max(1, COLUMN_BUDGET // (per_position * math.prod(lead[axis + 1:])))


def keras3_bias_on_last_axis(out_shape, data_format: str, n_filters: int, groups: int,
                             keras_major: int) -> bool:
    """Whether Keras 3's predict adds a channels_first convolution's bias along the last
    spatial axis instead of the channels.

    keras/src/layers/convolutional/base_conv.py reshapes the bias to (1, filters, 1, ...) and
    calls ops.add, whose TensorFlow version (keras/src/backend/tensorflow/numpy.py add) makes
    the sum a tf.nn.bias_add in NHWC whenever the output's static last axis equals the bias
    length. A grouped convolution runs compiled apart (keras/src/backend/tensorflow/nn.py conv,
    needs_xla), so predict keeps that bias_add and the bias goes along the last axis (the
    conv2d_channels_first fixture records it). An ungrouped one is fused with its BiasAdd by
    TensorFlow's graph optimizer into one convolution in the layer's NCHW, so predict adds the
    bias along the channels, though an eager call does not: Keras 3 disagrees with itself there,
    and fastlstm follows predict. A bias of one filter is a plain broadcast. tf_keras's
    bias_add is given the layer's data format (conv2d_channels_first_bias fixture)."""
    return (keras_major >= 3 and data_format == "channels_first" and groups > 1
            and n_filters > 1 and out_shape[-1] == n_filters)
