"""Keras MultiHeadAttention (keras/src/layers/attention/multi_head_attention.py; tf_keras
layers/attention/multi_head_attention.py), on inputs of shape (batch, timesteps, features) with
attention over the timesteps (attention_axes None, i.e. (1,)).

Called as ``mha(query, value[, key], attention_mask=..., return_attention_scores=...,
use_causal_mask=...)``; the node's tensors arrive in the order of ``call_tensor_args``
(config.py ``_parse_named_tensors``). Projections are EinsumDense sublayers, weights in this
order: query kernel (d_q, N, key_dim) and bias (N, key_dim), key kernel (d_k, N, key_dim) and
bias, [Keras 3 ``use_gate``: gate kernel (d_q, N, value_dim) and bias], value kernel
(d_v, N, value_dim) and bias, attention_output kernel (N, value_dim, *output_shape) and bias
(biases only with use_bias). Keras 3 files keep them at ``query_dense``, ``key_dense``,
``_gate_dense``, ``value_dense``, ``output_dense`` below the layer's group; tf_keras .keras files
at ``_query_dense``, ``_key_dense``, ``_value_dense``, ``_output_dense``.

Scores (B, N, T, S) = softmax over S of (q . k) / sqrt(key_dim), masked by the AND of the query
mask (B, T, 1), the value and key masks (B, 1, S), the causal mask, Keras 3's ``sliding_window``
band (|i - j| < window) and ``attention_mask`` (B, T, S). Masked positions differ by version and
path, which matters for rows with nothing left to attend to (padded query steps):
- tf_keras Softmax adds ``(1 - mask) * -1e9`` (``softmax_robust_masking``: where(mask, x, -1e9))
  and normalizes: a fully masked row becomes uniform.
- Keras 3 without dropout or returned scores calls ``ops.dot_product_attention``
  (backend/tensorflow/nn.py ``_apply_masks``: where(mask, logits, -0.7 * 3.38953e38), scale after
  the product): a fully masked row is uniform too.
- Keras 3 with dropout > 0 or return_attention_scores uses its Softmax layer: where(mask, x,
  -1e9), softmax, then zero where masked, so a fully masked row attends to nothing.
Keras 3.15's path choice is reproduced for every Keras 3 file (Keras 3.0-3.6 had only the
Softmax-layer path; files saved by ``to_json`` record no version to tell them apart). The output's
mask is the query's. Keras 3 reads the masks its input tensors carry at run time and then clears
them (``backend.set_keras_mask(query, None)``): graph.py ``reads_keras_masks`` and
``clears_keras_masks``.
"""
from __future__ import annotations

import math

import numpy as np

from ..activations import apply_activation
from ..errors import ModelFormatError, UnsupportedConfigError
from ..io import keras3_weights
from .attention import (
    call_options,
    causal_mask,
    check_run_shapes,
    dropout_rate,
    merged_dim,
)
from .base import Layer, config_int
from .softmax import masked_softmax

MAX_HEADS = 1 << 12
MAX_HEAD_DIM = 1 << 16
MAX_PROJECTED = 1 << 20   # num_heads * key_dim (and value_dim): far above real models
MAX_OUTPUT_DIM = 1 << 20
# keras/src/backend/tensorflow/nn.py _apply_masks: -0.7 * _get_large_negative (float32).
DOT_PRODUCT_MASK_VALUE = np.float32(3.38953e38 * -0.7)


class MultiHeadAttention(Layer):
    keras_class = "MultiHeadAttention"
    supports_masking = True
    reads_keras_masks = True

    @property
    def clears_keras_masks(self) -> bool:
        """Keras 3's call clears its input tensors' masks (graph.py); tf_keras's does not."""
        return self.ctx.keras_major >= 3

    call_tensor_args = ("query", "value", "key", "attention_mask")
    call_options = ("return_attention_scores", "use_causal_mask")

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.num_heads = config_int(config, "num_heads", self.name, maximum=MAX_HEADS)
        self.key_dim = config_int(config, "key_dim", self.name, maximum=MAX_HEAD_DIM)
        value_dim = config.get("value_dim")
        self.value_dim = (self.key_dim if value_dim in (None, 0) else
                          config_int(config, "value_dim", self.name, maximum=MAX_HEAD_DIM))
        for what, dim in (("key_dim", self.key_dim), ("value_dim", self.value_dim)):
            if self.num_heads * dim > MAX_PROJECTED:
                raise ModelFormatError(
                    f"layer {self.name!r} (MultiHeadAttention): num_heads * {what} = "
                    f"{self.num_heads * dim} is above fastlstm's limit of {MAX_PROJECTED}")
        self.dropout = dropout_rate(self)
        self.use_bias = bool(config.get("use_bias", True))
        self.use_gate = bool(config.get("use_gate", False))
        self.robust_masking = bool(config.get("softmax_robust_masking", False))
        self.output_dims = self._output_dims(config.get("output_shape"))
        self._check_attention_axes(config.get("attention_axes"))
        window = config.get("sliding_window")
        self.sliding_window = None if window is None else config_int(
            config, "sliding_window", self.name, maximum=1 << 30)
        options = call_options(self)
        self.return_scores = bool(options.get("return_attention_scores", False))
        self.causal = bool(options.get("use_causal_mask", False))
        passed = options.get("tensor_args", ["query", "value"])
        if not isinstance(passed, list) or passed[:2] != ["query", "value"]:
            raise ModelFormatError(f"layer {self.name!r} (MultiHeadAttention) is called without "
                                   f"a query and a value (its call passes {passed!r})")
        self.has_key = "key" in passed
        self.has_attention_mask = "attention_mask" in passed
        self.kernels = {}
        self.biases = {}
        self.dims = None

    def _output_dims(self, value):
        if value in (None, [], ()):
            return None
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        return tuple(config_int({"output_shape": d}, "output_shape", self.name,
                                maximum=MAX_OUTPUT_DIM) for d in items)

    def _check_attention_axes(self, value):
        """Attention over the timesteps of (batch, timesteps, features) inputs: None, 1 or [1]
        (Keras 3 also accepts -2, which its _build_attention makes (rank - 1) - 2 = 1)."""
        items = [] if value is None else (list(value) if isinstance(value, (list, tuple))
                                          else [value])
        allowed = (1, -2) if self.ctx.keras_major >= 3 else (1,)
        if len(items) > 1 or (items and items[0] not in allowed):
            raise UnsupportedConfigError(
                f"layer {self.name!r} (MultiHeadAttention): attention_axes={value!r}; fastlstm "
                "supports attention over the timesteps of (batch, timesteps, features) inputs "
                "(attention_axes None or [1])")

    # -- shapes and weights -------------------------------------------------------------------
    def compute_output_shapes(self, input_shapes):
        wanted = 2 + int(self.has_key) + int(self.has_attention_mask)
        if len(input_shapes) != wanted:
            raise ModelFormatError(f"layer {self.name!r} (MultiHeadAttention): its call passes "
                                   f"{wanted} tensors, got {len(input_shapes)}")
        query, value = input_shapes[0], input_shapes[1]
        key = input_shapes[2] if self.has_key else value
        if any(len(s) != 3 for s in (query, value, key)):
            raise UnsupportedConfigError(
                f"layer {self.name!r} (MultiHeadAttention): fastlstm supports query, value and "
                "key of shape (batch, timesteps, features), got "
                f"{[tuple(s) for s in (query, value, key)]}")
        batch = merged_dim(self, [query[0], value[0], key[0]], "batch sizes")
        t_key = merged_dim(self, [value[1], key[1]], "the value and key timesteps")
        if self.has_attention_mask:
            mask_shape = input_shapes[-1]
            if len(mask_shape) != 3:
                raise ModelFormatError(f"layer {self.name!r} (MultiHeadAttention): "
                                       f"attention_mask must be (batch, T, S), got {mask_shape}")
            for got, want in zip(mask_shape[1:], (query[1], t_key)):
                if got is not None and want is not None and got not in (1, want):
                    raise ModelFormatError(
                        f"layer {self.name!r} (MultiHeadAttention): attention_mask of shape "
                        f"{mask_shape} does not fit query {query} and value {value}")
        unknown = [s for s in (query, value, key) if s[2] is None]
        if unknown:
            raise ModelFormatError(f"layer {self.name!r} (MultiHeadAttention): the features of "
                                   f"its inputs must be known, got {unknown[0]}")
        self.dims = {"query": query[2], "key": key[2], "value": value[2]}
        out_dims = self.output_dims or (query[2],)
        outputs = [(batch, query[1]) + tuple(out_dims)]
        if self.return_scores:
            outputs.append((batch, self.num_heads, query[1], t_key))
        return outputs

    def _projections(self):
        """(name, Keras 3 group, kernel shape, bias shape) in Keras's weight order."""
        n, hk, hv = self.num_heads, self.key_dim, self.value_dim
        out = self.output_dims or (self.dims["query"],)
        # Keras 3 saves the sublayers under their properties (query_dense, ...), tf_keras,
        # which has no such properties, under the attributes (_query_dense, ...).
        prefix = "" if self.ctx.keras_major >= 3 else "_"
        items = [("query", prefix + "query_dense", (self.dims["query"], n, hk), (n, hk)),
                 ("key", prefix + "key_dense", (self.dims["key"], n, hk), (n, hk))]
        if self.use_gate:
            items.append(("gate", "_gate_dense", (self.dims["query"], n, hv), (n, hv)))
        items.append(("value", prefix + "value_dense", (self.dims["value"], n, hv), (n, hv)))
        items.append(("output", prefix + "output_dense", (n, hv) + tuple(out), tuple(out)))
        return items

    def weight_shapes(self):
        shapes = []
        for _, _, kernel, bias in self._projections():
            shapes += [kernel, bias] if self.use_bias else [kernel]
        return shapes

    def assign_weights(self, weights):
        i = 0
        for name, _, _, _ in self._projections():
            self.kernels[name] = weights[i]
            self.biases[name] = weights[i + 1] if self.use_bias else None
            i += 2 if self.use_bias else 1

    def load_keras3_group(self, group, where: str) -> None:
        arrays = []
        for _, sub, _, _ in self._projections():
            arrays += keras3_weights.read_path(group, (sub,), where, self.name)
        self.set_weights(arrays)

    def tensor_shapes(self):
        batch, t_query = self.input_shapes[0][:2]
        t_key = self.input_shapes[1][1]
        return list(self.output_shapes) + [(batch, self.num_heads, t_query, t_key)]

    # -- running ------------------------------------------------------------------------------
    def run_node(self, inputs, initial_state, in_masks, n_threads, states=None, fused=None):
        masks = list(in_masks) + [None] * (len(inputs) - len(in_masks))
        outs = self.call(inputs, masks=masks)
        return outs, [masks[0]] + [None] * (len(outs) - 1)

    def _project(self, x, name):
        """EinsumDense "abc,cde->abde" (+ bias "de"), as one matmul over the features."""
        kernel = self.kernels[name]
        y = np.matmul(x, kernel.reshape(kernel.shape[0], -1))
        y = y.reshape(x.shape[:2] + kernel.shape[1:])
        return y if self.biases[name] is None else y + self.biases[name]

    def _allowed(self, masks, inputs, t_query, t_key):
        """The (B or 1, T, S) positions each query may attend to, or None for all."""
        allowed = None

        def both(a, b):
            return b if a is None else a & b

        q_mask, v_mask = masks[0], masks[1]
        k_mask = masks[2] if self.has_key else None
        if q_mask is not None:
            allowed = both(allowed, np.asarray(q_mask, bool)[:, :, None])
        for m in (v_mask, k_mask):
            if m is not None:
                allowed = both(allowed, np.asarray(m, bool)[:, None, :])
        if self.causal:
            allowed = both(allowed, causal_mask(t_query, t_key)[None])
        if self.sliding_window is not None:
            offsets = np.abs(np.arange(t_query)[:, None] - np.arange(t_key)[None, :])
            allowed = both(allowed, (offsets < self.sliding_window)[None])
        if self.has_attention_mask:
            given = np.asarray(inputs[-1]) != 0   # ops.cast(attention_mask, "bool")
            allowed = given if allowed is None else given & allowed
        return allowed

    def _softmax(self, logits):
        return apply_activation("softmax", logits, self.ctx.keras_major)

    def call(self, inputs, initial_state=None, n_threads=1, masks=None):
        masks = masks or [None] * len(inputs)
        query = np.asarray(inputs[0], dtype=np.float32)
        value = np.asarray(inputs[1], dtype=np.float32)
        key = np.asarray(inputs[2], dtype=np.float32) if self.has_key else value
        check_run_shapes(self, query, value, key)
        if self.has_attention_mask:
            given = np.shape(inputs[-1])
            want = (query.shape[0], query.shape[1], key.shape[1])
            if len(given) != 3 or any(g not in (1, w) for g, w in zip(given, want)):
                raise ValueError(f"layer {self.name!r} (MultiHeadAttention): attention_mask must "
                                 f"be of shape {want} (or 1 on any axis), got {given}")
        q = self._project(query, "query")          # (B, T, N, H)
        k = self._project(key, "key")              # (B, S, N, H)
        v = self._project(value, "value")          # (B, S, N, Hv)
        allowed = self._allowed(masks, inputs, q.shape[1], k.shape[1])
        if allowed is not None:
            allowed = allowed[:, None]             # over the heads: (B, 1, T, S)
        scale = np.float32(1.0 / math.sqrt(float(self.key_dim)))
        qh = np.transpose(q, (0, 2, 1, 3))          # (B, N, T, H)
        kh = np.transpose(k, (0, 2, 3, 1))          # (B, N, H, S)
        keras3_dot_product = (self.ctx.keras_major >= 3 and not self.dropout > 0
                              and not self.return_scores)
        if keras3_dot_product:
            logits = np.matmul(qh, kh) * scale
            if allowed is not None:
                logits = np.where(allowed, logits, DOT_PRODUCT_MASK_VALUE)
            scores = self._softmax(logits)
        else:
            # _masked_softmax: the layer's Softmax over the key axis with the mask.
            scores = masked_softmax(np.matmul(qh * scale, kh), allowed, self.ctx.keras_major,
                                    self.robust_masking, self._softmax)
        context = np.matmul(scores, np.transpose(v, (0, 2, 1, 3)))   # (B, N, T, Hv)
        context = np.transpose(context, (0, 2, 1, 3))                # (B, T, N, Hv)
        if self.use_gate:
            gate = self._project(query, "gate")     # EinsumDense(activation="sigmoid")
            context = context * apply_activation("sigmoid", gate, self.ctx.keras_major)
        kernel = self.kernels["output"]
        n_out = int(np.prod(kernel.shape[2:]))
        out = np.matmul(context.reshape(context.shape[:2] + (-1,)),
                        kernel.reshape(-1, n_out)).reshape(context.shape[:2] + kernel.shape[2:])
        if self.biases["output"] is not None:
            out = out + self.biases["output"]
        outs = [np.ascontiguousarray(out, dtype=np.float32)]
        if self.return_scores:
            outs.append(np.ascontiguousarray(scores, dtype=np.float32))
        return outs
