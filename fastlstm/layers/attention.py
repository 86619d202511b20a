"""Keras Attention (Luong, dot-product) and AdditiveAttention (Bahdanau): keras/src/layers/
attention/attention.py and additive_attention.py; tf_keras layers/attention/attention.py,
additive_attention.py and base_dense_attention.py.

Called on [query (B, Tq, d), value (B, Tv, dv)] or [query, value, key (B, Tv, d)]: scores
(B, Tq, Tv) from query and key, masked, softmax over Tv, times value -> (B, Tq, dv); with
``return_attention_scores`` the softmax weights are a second output. Dropout acts on the weights
only in training: the identity here.

Scores: Attention "dot" is ``q @ k^T`` (times the scalar ``scale`` if use_scale); "concat" is
``concat_score_weight * sum(tanh(scale * (q + k)))`` over the features (both weights scalars).
AdditiveAttention is ``sum(scale * tanh(q + k))`` with ``scale`` a vector: its size is the
query's features in Keras 3 (``input_shape[0][-1]``), the value's in tf_keras
(``input_shape[1]``). Weights are ``scale`` then ``concat_score_weight``, as each build adds them.

Masks: positions the value mask or the causal mask (query i sees keys j <= i) exclude get 1e9
subtracted from their score (tf_keras ``scores -= 1e9 * padding_mask``, Keras 3
``where(padding_mask, scores - 1e9, scores)``: the same numbers), and the output is zeroed where
the query mask is False; the output's mask is the query mask. Both Kerases give the layer the
masks of its inputs (Embedding(mask_zero), Masking upstream) as [query_mask, value_mask]; Keras 3
configs do not record them (Layer.__call__ fills ``mask`` from the tensors at run time,
keras/src/layers/layer.py "Populate mask argument(s)"), so the graph passes them (graph.py
``reads_keras_masks``). ``use_causal_mask`` is a call argument in both (recorded in the node);
tf_keras also reads the deprecated config key ``causal`` (base_dense_attention.py pops it).
"""
from __future__ import annotations

import numpy as np

from ..activations import apply_activation
from ..config import CALL_OPTIONS_KEY
from ..errors import ModelFormatError, UnsupportedConfigError
from ..limits import checked_float
from .base import Layer

# tf_keras base_dense_attention.py _apply_scores / Keras 3 attention.py _apply_scores: the bias
# that keeps masked positions out of the softmax (float32 models).
MASKED_SCORE_BIAS = np.float32(1e9)
# The dtypes a convert_to_tensor op node may name (a mask's bool, or a cast).
CONVERT_DTYPES = {"bool": np.bool_, "float32": np.float32, "int32": np.int32}


def causal_mask(t_query: int, t_key: int) -> np.ndarray:
    """(Tq, Tv) True where query i may see key j: j <= i (the cumsum row >= column of both
    Kerases, tf.linalg.band_part(ones, -1, 0) in MultiHeadAttention)."""
    return np.tri(t_query, t_key, dtype=bool)


def call_options(layer: Layer) -> dict:
    """What the layer's call nodes recorded (config.CALL_OPTIONS_KEY)."""
    options = layer.config.get(CALL_OPTIONS_KEY) or {}
    return options if isinstance(options, dict) else {}


def dropout_rate(layer: Layer, key: str = "dropout") -> float:
    rate = checked_float(layer.config.get(key, 0.0) or 0.0,
                         f"layer {layer.name!r} ({layer.keras_class}): {key}", non_negative=True)
    if rate > 1:
        raise ModelFormatError(f"layer {layer.name!r} ({layer.keras_class}): {key}={rate} is "
                               "outside [0, 1]")
    return rate


def merged_dim(layer: Layer, dims, what: str):
    """One size from several inputs' (None: unknown); known sizes must agree."""
    known = {d for d in dims if d is not None}
    if len(known) > 1:
        raise ModelFormatError(f"layer {layer.name!r} ({layer.keras_class}): {what} differ "
                               f"between its inputs: {list(dims)}")
    return known.pop() if known else None


def check_run_shapes(layer: Layer, query, value, key) -> None:
    """The arrays' sizes that build time may have left unknown: one batch size, the value's
    and key's timesteps equal, the query's and key's features equal (compute_output_shapes
    checks the known ones)."""
    if not (query.ndim == value.ndim == key.ndim == 3):
        raise ValueError(f"layer {layer.name!r} ({layer.keras_class}) expects query, value and "
                         f"key of rank 3, got shapes {query.shape}, {value.shape}, {key.shape}")
    problems = []
    if len({query.shape[0], value.shape[0], key.shape[0]}) > 1:
        problems.append("one batch size")
    if value.shape[1] != key.shape[1]:
        problems.append("the value's timesteps equal to the key's")
    if layer.keras_class != "MultiHeadAttention" and query.shape[2] != key.shape[2]:
        problems.append("the query's features equal to the key's")
    if problems:
        raise ValueError(f"layer {layer.name!r} ({layer.keras_class}) expects "
                         f"{' and '.join(problems)}; got query {query.shape}, value "
                         f"{value.shape}, key {key.shape}")


class Attention(Layer):
    keras_class = "Attention"
    supports_masking = True
    reads_keras_masks = True   # graph.py: Keras 3 passes the inputs' masks implicitly
    call_options = ("return_attention_scores", "use_causal_mask")
    additive = False

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.use_scale = bool(config.get("use_scale", self.additive))
        score_mode = "dot" if self.additive else config.get("score_mode", "dot")
        if score_mode not in ("dot", "concat"):
            raise UnsupportedConfigError(f"layer {self.name!r} ({self.keras_class}): score_mode "
                                         f"must be 'dot' or 'concat', got {score_mode!r}")
        self.concat = score_mode == "concat"
        dropout_rate(self)  # checked; the identity at inference
        options = call_options(self)
        self.return_scores = bool(options.get("return_attention_scores", False))
        causal = config.get("causal", False)
        if causal and ctx.keras_major >= 3:
            raise UnsupportedConfigError(f"layer {self.name!r} ({self.keras_class}): the config "
                                         "key 'causal' is tf_keras's; Keras 3 has no such key")
        self.causal = bool(causal) or bool(options.get("use_causal_mask", False))
        self.scale_shape = ()
        self.scale = self.concat_weight = None

    def compute_output_shapes(self, input_shapes):
        if len(input_shapes) not in (2, 3):
            raise ModelFormatError(f"layer {self.name!r} ({self.keras_class}) takes [query, "
                                   f"value] or [query, value, key], got {len(input_shapes)} "
                                   "inputs")
        if any(len(s) != 3 for s in input_shapes):
            raise UnsupportedConfigError(
                f"layer {self.name!r} ({self.keras_class}): fastlstm supports inputs of shape "
                f"(batch, timesteps, features), got {list(input_shapes)}")
        query, value = input_shapes[0], input_shapes[1]
        key = input_shapes[2] if len(input_shapes) > 2 else value
        batch = merged_dim(self, [s[0] for s in input_shapes], "batch sizes")
        t_value = merged_dim(self, [value[1], key[1]], "the value and key timesteps")
        merged_dim(self, [query[2], key[2]], "the query and key features")
        if self.additive and self.use_scale:
            dim = query[2] if self.ctx.keras_major >= 3 else value[2]
            if dim is None:
                raise ModelFormatError(f"layer {self.name!r} ({self.keras_class}): the features "
                                       f"of {list(input_shapes)} must be known")
            if self.ctx.keras_major < 3 and query[2] is not None and dim != query[2]:
                raise ModelFormatError(f"layer {self.name!r} ({self.keras_class}): tf_keras "
                                       f"sizes its scale by the value's features ({dim}), which "
                                       f"must match the query's ({query[2]})")
            self.scale_shape = (dim,)
        return [(batch, query[1], value[2])] + (
            [(batch, query[1], t_value)] if self.return_scores else [])

    def weight_shapes(self):
        shapes = [self.scale_shape] if self.use_scale else []
        return shapes + ([()] if self.concat else [])

    def assign_weights(self, weights):
        self.scale = weights[0] if self.use_scale else None
        self.concat_weight = weights[-1] if self.concat else None

    def tensor_shapes(self):
        shapes = list(self.output_shapes)
        if self.additive or self.concat:   # the (B, Tq, Tv, d) sum of query and key
            batch, t_query, _ = self.input_shapes[0]
            shapes.append((batch, t_query, self.input_shapes[1][1], self.input_shapes[0][2]))
        return shapes

    def run_node(self, inputs, initial_state, in_masks, n_threads, states=None, fused=None):
        masks = list(in_masks) + [None] * (len(inputs) - len(in_masks))
        outs = self.call(inputs, masks=masks)
        return outs, [masks[0] if self.supports_masking else None] + [None] * (len(outs) - 1)

    def _scores(self, q, k):
        if not (self.additive or self.concat):
            scores = np.matmul(q, np.swapaxes(k, -1, -2))
            return scores if self.scale is None else scores * self.scale
        total = q[:, :, None, :] + k[:, None, :, :]          # (B, Tq, Tv, d)
        if self.additive:
            terms = np.tanh(total)
            return (terms if self.scale is None else terms * self.scale).sum(axis=-1)
        if self.scale is not None:
            total = total * self.scale
        return self.concat_weight * np.tanh(total).sum(axis=-1)

    def call(self, inputs, initial_state=None, n_threads=1, masks=None):
        q, v = (np.asarray(x, dtype=np.float32) for x in inputs[:2])
        k = np.asarray(inputs[2], dtype=np.float32) if len(inputs) > 2 else v
        q_mask, v_mask = (masks[0], masks[1]) if masks else (None, None)
        check_run_shapes(self, q, v, k)
        scores = self._scores(q, k).astype(np.float32, copy=False)
        allowed = None if v_mask is None else np.asarray(v_mask, bool)[:, None, :]
        if self.causal:
            tri = causal_mask(scores.shape[1], scores.shape[2])[None]
            allowed = tri if allowed is None else allowed & tri
        if allowed is not None:
            scores = np.where(allowed, scores, scores - MASKED_SCORE_BIAS)
        weights = apply_activation("softmax", scores, self.ctx.keras_major)
        out = np.matmul(weights, v)
        if q_mask is not None:
            out = np.where(np.asarray(q_mask, bool)[:, :, None], out, np.float32(0))
        outs = [np.ascontiguousarray(out, dtype=np.float32)]
        if self.return_scores:
            outs.append(np.ascontiguousarray(weights, dtype=np.float32))
        return outs


class AdditiveAttention(Attention):
    keras_class = "AdditiveAttention"
    additive = True


class ConvertToTensor(Layer):
    """The Keras 3 op (keras/src/ops/core.py ConvertToTensor) that Attention.compute_mask
    records as a node when its output mask (the query's) is passed to a later layer as `mask`:
    the identity, or a cast when the config names a dtype."""

    keras_class = "ConvertToTensor"
    is_operation = True

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        dtype = config.get("dtype")
        if dtype is not None and dtype not in CONVERT_DTYPES:
            raise UnsupportedConfigError(f"op {self.name!r} (convert_to_tensor): dtype "
                                         f"{dtype!r} is not supported (null, "
                                         f"{', '.join(CONVERT_DTYPES)})")
        self.dtype = None if dtype is None else CONVERT_DTYPES[dtype]
        if config.get("sparse") or config.get("ragged"):
            raise UnsupportedConfigError(f"op {self.name!r} (convert_to_tensor): sparse and "
                                         "ragged tensors are not supported")

    def compute_output_shapes(self, input_shapes):
        if len(input_shapes) != 1:
            raise ModelFormatError(f"op {self.name!r} (convert_to_tensor) takes 1 argument, "
                                   f"got {len(input_shapes)}")
        return [tuple(input_shapes[0])]

    def call(self, inputs, initial_state=None, n_threads=1):
        x = np.asarray(inputs[0])
        return [x if self.dtype is None else x.astype(self.dtype)]
