"""Keras merge layers (keras/src/layers/merging/, tf_keras layers/merging/): Add, Subtract,
Multiply, Average, Maximum, Minimum combine their inputs element by element, Concatenate joins
them along one axis.

Element-wise merges broadcast as base_merge.py does: the shapes after the batch axis align from
the right, and an input of lower rank gains axes right after the batch axis (expand_dims(x, 1))
until the ranks agree. Inputs are folded left to right, as Keras's ``_merge_function`` loops.

The recorded output shapes differ where a dimension is unknown in one input only: Keras 3 computes
them with ``compute_output_shape`` (unknown wins: (None, 4) + (6, 4) -> (None, 4)); tf_keras takes
them from TensorFlow's shape inference of the traced op (a known size wins: (6, 4); for
Concatenate the non-concatenated axes take the first known size). Both are reproduced, by the
Keras version of the file.
"""
from __future__ import annotations

from functools import reduce

import numpy as np

from ..errors import ModelFormatError, UnsupportedConfigError
from .base import Layer


def _keras3_dim(a, b):
    """keras/src/layers/merging/base_merge.py _compute_elemwise_op_output_shape."""
    if a is None or b is None:
        return None
    if a == 1:
        return b
    if b == 1 or a == b:
        return a
    raise ValueError


def _tensorflow_dim(a, b):
    """tensorflow/core/framework/common_shape_fns.cc BroadcastBinaryOpOutputShapeFnHelper."""
    if a is not None and b is not None and a > 1 and b > 1 and a != b:
        raise ValueError
    if a is not None and a > 1:
        return a
    if b is not None and b > 1:
        return b
    if a == 1:
        return b
    return a if b == 1 else None


class _Merge(Layer):
    """Element-wise merge of any number of inputs."""

    min_inputs, max_inputs = 1, None
    supports_masking = True

    def compute_mask(self, inputs, masks, outputs):
        """tf_keras base_merge.py: the AND of the inputs' timestep masks; the values are merged
        as if unmasked. Keras 3 instead merges masked values apart (base_merge.py
        _apply_merge_op_and_or_mask) and ORs the masks, which fastlstm does not reproduce."""
        if all(m is None for m in masks):
            return [None]
        if self.ctx.keras_major >= 3:
            raise UnsupportedConfigError(
                f"layer {self.name!r} ({self.keras_class}) receives masked inputs; Keras 3 "
                "merges masked timesteps specially, which fastlstm does not support")
        return [self._keras2_mask(inputs, masks)]

    def _keras2_mask(self, inputs, masks):
        return np.logical_and.reduce([m for m in masks if m is not None])

    def _check_count(self, input_shapes):
        n = len(input_shapes)
        if n < self.min_inputs or (self.max_inputs is not None and n > self.max_inputs):
            wanted = (f"exactly {self.min_inputs}" if self.min_inputs == self.max_inputs
                      else f"at least {self.min_inputs}")
            raise ModelFormatError(f"layer {self.name!r} ({self.keras_class}) takes {wanted} "
                                   f"inputs, got {n}")

    def _batch_dim(self, input_shapes):
        sizes = {s[0] for s in input_shapes} - {None}
        if len(sizes) > 1:
            raise ModelFormatError(f"layer {self.name!r} ({self.keras_class}) cannot merge "
                                   f"inputs with different batch sizes {list(input_shapes)}")
        return sizes.pop() if sizes else None

    def compute_output_shapes(self, input_shapes):
        self._check_count(input_shapes)
        merge_dim = _keras3_dim if self.ctx.keras_major >= 3 else _tensorflow_dim
        out = tuple(input_shapes[0][1:])
        for shape in input_shapes[1:]:
            a, b = (out, tuple(shape[1:])) if len(out) >= len(shape) - 1 else \
                (tuple(shape[1:]), out)
            lead = len(a) - len(b)
            try:
                out = a[:lead] + tuple(merge_dim(i, j) for i, j in zip(a[lead:], b))
            except ValueError:
                raise ModelFormatError(
                    f"layer {self.name!r} ({self.keras_class}): inputs of shapes "
                    f"{list(input_shapes)} cannot be combined element-wise (after the batch "
                    "axis, sizes must be equal or 1, aligned from the right)") from None
        return [(self._batch_dim(input_shapes),) + out]

    op = None   # the binary numpy ufunc Keras's _merge_function folds with

    def _merge(self, xs):
        return reduce(self.op, xs)

    def call(self, inputs, initial_state=None, n_threads=1):
        xs = [np.asarray(x, dtype=np.float32) for x in inputs]
        rank = max(x.ndim for x in xs)
        xs = [x.reshape(x.shape[:1] + (1,) * (rank - x.ndim) + x.shape[1:]) for x in xs]
        try:
            y = self._merge(xs)
        except ValueError:
            raise ValueError(f"layer {self.name!r} ({self.keras_class}): inputs of shapes "
                             f"{[x.shape for x in inputs]} cannot be combined") from None
        return [np.ascontiguousarray(y, dtype=np.float32)]


class Add(_Merge):
    keras_class, op = "Add", np.add


class Subtract(_Merge):
    keras_class, op = "Subtract", np.subtract
    min_inputs = max_inputs = 2


class Multiply(_Merge):
    keras_class, op = "Multiply", np.multiply


class Average(_Merge):
    keras_class, op = "Average", np.add

    def _merge(self, xs):
        return super()._merge(xs) / np.float32(len(xs))


class Maximum(_Merge):
    keras_class, op = "Maximum", np.maximum


class Minimum(_Merge):
    keras_class, op = "Minimum", np.minimum


class Concatenate(_Merge):
    """Inputs of one rank, equal except along ``axis`` (keras/src/layers/merging/concatenate.py)."""

    keras_class = "Concatenate"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.raw_axis = config.get("axis", -1)
        if isinstance(self.raw_axis, bool) or not isinstance(self.raw_axis, int):
            raise ModelFormatError(f"layer {self.name!r} (Concatenate): axis must be an integer, "
                                   f"got {self.raw_axis!r}")
        self.axis = None

    def compute_output_shapes(self, input_shapes):
        self._check_count(input_shapes)
        rank = len(input_shapes[0])
        if any(len(s) != rank for s in input_shapes) or not -rank <= self.raw_axis < rank:
            raise ModelFormatError(
                f"layer {self.name!r} (Concatenate): axis={self.raw_axis} needs inputs of one "
                f"rank that has that axis, got shapes {list(input_shapes)}")
        self.axis = self.raw_axis % rank
        if self.axis == 0:
            raise UnsupportedConfigError(f"layer {self.name!r} (Concatenate): joining along the "
                                         "batch axis (axis=0) is not supported")
        out = [self._batch_dim(input_shapes)]
        for i in range(1, rank):
            dims = [s[i] for s in input_shapes]
            if i == self.axis:
                out.append(None if None in dims else sum(dims))
                continue
            known = {d for d in dims if d is not None}
            if len(known) > 1:
                raise ModelFormatError(
                    f"layer {self.name!r} (Concatenate) needs inputs equal on every axis but "
                    f"axis {self.axis}, got shapes {list(input_shapes)}")
            out.append(dims[0] if self.ctx.keras_major >= 3 or not known else known.pop())
        return [tuple(out)]

    def _merge(self, xs):
        return np.concatenate(xs, axis=self.axis)

    def _keras2_mask(self, inputs, masks):
        """tf_keras concatenate.py compute_mask: every input's mask (all True when it has none)
        spread over its values, joined along the axis, then all() over the last axis."""
        full = []
        for x, m in zip(inputs, masks):
            if m is None:
                full.append(np.ones(np.shape(x), bool))
            else:
                m = np.asarray(m, bool)
                full.append(np.broadcast_to(m[..., None] if m.ndim < np.ndim(x) else m,
                                            np.shape(x)))
        return np.all(np.concatenate(full, axis=self.axis), axis=-1)
