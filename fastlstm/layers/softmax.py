"""Keras Softmax layer (keras/src/layers/activations/softmax.py, tf_keras/src/layers/activation/
softmax.py): softmax over ``axis``, an integer or a list of them.

Over the last axis alone it is the C softmax activation, so it joins compiled chains. Over other
axes the axes are moved to the end and flattened, and the same C softmax runs over each row: a
softmax over several axes is exp(x - logsumexp(x, axes)), as both versions compute it, which is
the softmax of the flattened axes.

A mask changes the logits first (``masked_softmax``, shared with MultiHeadAttention): Keras 3
puts -1e9 where the mask is False and zeroes those outputs afterwards; Keras 2 adds
(1 - mask) * -1e9 (or, with ``robust_masking``, puts -1e9) and keeps the outputs. The mask
broadcasts against the input from the last axis, as in both.
"""
from __future__ import annotations

import numpy as np

from ..activations import apply_c_activation, c_activation
from ..errors import ModelFormatError, UnsupportedConfigError
from .base import Layer, single_input
from .layer_args import normalize_axes, raw_axes

# _large_negative_number (Keras 3 softmax.py) and _large_compatible_negative (tf_keras
# softmax.py) for float32: the logit a masked position gets.
MASKED_LOGIT = np.float32(-1e9)


def masked_softmax(x: np.ndarray, mask, keras_major: int, robust_masking: bool,
                   softmax) -> np.ndarray:
    """The Softmax layer's call with a mask (None: none), which MultiHeadAttention's
    _masked_softmax also runs: Keras 3 puts MASKED_LOGIT where the mask is False (a non-bool
    mask: where it is not > 0.5) and zeroes those outputs after ``softmax``; tf_keras adds
    ``(1 - mask) * MASKED_LOGIT``, or with ``robust_masking`` puts MASKED_LOGIT, and keeps the
    outputs. ``mask`` broadcasts against ``x`` from the last axis; ``softmax`` maps the masked
    logits to the probabilities (over the layer's axes)."""
    if mask is None:
        return softmax(x)
    mask = np.asarray(mask)
    if keras_major < 3 and not robust_masking:
        return softmax(x + (np.float32(1) - mask.astype(np.float32)) * MASKED_LOGIT)
    keep = mask if mask.dtype == np.bool_ else mask > 0.5
    out = softmax(np.where(keep, x, MASKED_LOGIT))
    return np.where(keep, out, np.float32(0)) if keras_major >= 3 else out


class Softmax(Layer):
    keras_class = "Softmax"
    supports_masking = True
    uses_mask = True

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.raw_axes = raw_axes(self)
        robust = config.get("robust_masking", False)
        if ctx.keras_major >= 3 and "robust_masking" in config:
            raise UnsupportedConfigError(
                f"layer {self.name!r} (Softmax): robust_masking is a Keras 2 key; Keras 3's "
                f"Softmax does not take it (got robust_masking={robust!r})")
        if not isinstance(robust, bool):
            raise ModelFormatError(f"layer {self.name!r} (Softmax): robust_masking must be true "
                                   f"or false, got {robust!r}")
        self.robust_masking = robust
        self.axes = self.rank = None
        self.softmax = c_activation("softmax", ctx.keras_major)

    def compute_output_shapes(self, input_shapes):
        shape = single_input(self, input_shapes)
        self.axes = sorted(normalize_axes(self, self.raw_axes, shape))
        self.rank = len(shape)
        return [shape]

    def stack_ops(self, stack) -> bool:
        if self.axes != [self.rank - 1]:
            axis = self.config.get("axis", -1)
            return stack.decline(f"axis={axis!r} is not the last axis alone, run by numpy")
        stack.add_activation(self.softmax)
        return True

    def call(self, inputs, initial_state=None, n_threads=1, mask=None):
        x = np.asarray(inputs[0], dtype=np.float32)
        if x.ndim != self.rank:
            raise ValueError(f"layer {self.name!r} (Softmax) expects rank {self.rank} input, "
                             f"got shape {x.shape}")
        if mask is not None:
            mask = np.asarray(mask)
            # Each mask axis, from the last, is 1 or the input's (Keras 3 Softmax.call's check).
            if mask.ndim > x.ndim or any(m not in (1, i) for m, i in
                                         zip(mask.shape[::-1], x.shape[::-1])):
                raise ValueError(f"layer {self.name!r} (Softmax): the mask of shape "
                                 f"{mask.shape} does not broadcast to the input {x.shape}")
        out = masked_softmax(x, mask, self.ctx.keras_major, self.robust_masking, self._softmax)
        return [out.astype(np.float32, copy=False)]

    def _softmax(self, x: np.ndarray) -> np.ndarray:
        rest = [a for a in range(x.ndim) if a not in self.axes]
        moved = np.transpose(x, rest + self.axes)
        lead = moved.shape[:len(rest)]
        rows = moved.reshape(lead + (int(np.prod(moved.shape[len(rest):])),))
        y = apply_c_activation(self.softmax, rows).reshape(moved.shape)
        return np.transpose(y, np.argsort(rest + self.axes))
