"""The conversions Keras 2 applies to each layer's weights read from a legacy HDF5 weights group.

tf_keras ``saving/legacy/hdf5_format.py`` ``preprocess_weights_for_loading`` (keras 2.2.4
``keras/engine/saving.py``): weights of layers nested in ``Bidirectional`` (first half forward,
second half backward), ``TimeDistributed`` and models (each sublayer's trainable weights, then
its non-trainable ones) are converted layer by layer; Keras 1 weights (the weights group records
no ``keras_version``) go through keras1_weights; every layer's weights then go through
cudnn_weights (by weight shapes, whatever the version).

Keras decides by ``layer.__class__.__name__``; here each layer answers
``Layer.convert_legacy_weights`` (layers/base.py: none for a plain layer, ``convert_nested_model``
for one with sublayers; Bidirectional, TimeDistributed and the recurrent layers override it), and
this module holds how nested weights are split between sublayers.
"""
from __future__ import annotations

from typing import Sequence


def convert_nested_bidirectional(forward, backward, weights: Sequence, keras1: bool) -> list:
    """``convert_nested_bidirectional``: the first half of the weights is the forward layer's,
    the second the backward layer's (Keras splits by count, not by either layer's shapes)."""
    half = len(weights) // 2
    return (forward.convert_legacy_weights(list(weights[:half]), keras1)
            + backward.convert_legacy_weights(list(weights[half:]), keras1))


def convert_nested_model(layers: Sequence, weights: Sequence, keras1: bool) -> list:
    """``convert_nested_model``: the weights of a container of these sublayers (those with
    weights, in order), every sublayer's trainable weights then every one's non-trainable ones;
    each sublayer converts its share, and the result keeps that order."""
    n_trainable = sum(sub.n_trainable_weights() for sub in layers)
    trainable, frozen = list(weights[:n_trainable]), list(weights[n_trainable:])
    new_trainable, new_frozen = [], []
    for sub in layers:
        n_t = sub.n_trainable_weights()
        n_f = len(sub.weight_shapes()) - n_t
        converted = sub.convert_legacy_weights(trainable[:n_t] + frozen[:n_f], keras1)
        new_trainable += converted[:n_t]
        new_frozen += converted[n_t:]
        trainable, frozen = trainable[n_t:], frozen[n_f:]
    return new_trainable + new_frozen
