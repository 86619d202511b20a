"""The conversions Keras 2 applies to each layer's weights read from a legacy HDF5 weights group.

tf_keras ``saving/legacy/hdf5_format.py`` ``preprocess_weights_for_loading`` (keras 2.2.4
``keras/engine/saving.py``): weights of layers nested in ``Bidirectional`` (first half forward,
second half backward), ``TimeDistributed`` and models (each sublayer's trainable weights, then
its non-trainable ones) are converted layer by layer; Keras 1 weights (the weights group records
no ``keras_version``) go through keras1_weights; every layer's weights then go through
cudnn_weights (by weight shapes, whatever the version). Layers are matched by their
``keras_class``, as Keras matches ``layer.__class__.__name__``.
"""
from __future__ import annotations

from typing import Sequence

from ..config import MODEL_CLASSES
from . import cudnn_weights, keras1_weights


def _nested_model(model, weights, keras1: bool) -> list:
    n_trainable = model.n_trainable_weights()
    trainable, frozen = list(weights[:n_trainable]), list(weights[n_trainable:])
    new_trainable, new_frozen = [], []
    for sub in model.weighted_layers():
        n_t = sub.n_trainable_weights()
        n_f = len(sub.weight_shapes()) - n_t
        converted = preprocess_weights_for_loading(sub, trainable[:n_t] + frozen[:n_f], keras1)
        new_trainable += converted[:n_t]
        new_frozen += converted[n_t:]
        trainable, frozen = trainable[n_t:], frozen[n_f:]
    return new_trainable + new_frozen


def preprocess_weights_for_loading(layer, weights: Sequence, keras1: bool) -> list:
    """The weights of one layer as the layer expects them; ``keras1`` when they come from a
    Keras 1 file. Arrays may be unread h5py datasets; those that are not converted stay so."""
    weights = list(weights)
    class_name = layer.keras_class
    if class_name == "Bidirectional":
        half = len(weights) // 2
        weights = (preprocess_weights_for_loading(layer.forward, weights[:half], keras1)
                   + preprocess_weights_for_loading(layer.backward, weights[half:], keras1))
    if class_name == "TimeDistributed":
        # Keras runs this a second time for Keras 1 files; a no-op for the wrappable layers.
        weights = preprocess_weights_for_loading(layer.inner, weights, keras1)
    elif class_name in MODEL_CLASSES:
        weights = _nested_model(layer, weights, keras1)
    if keras1:
        weights = keras1_weights.convert(layer, weights)
    return cudnn_weights.convert_rnn_weights(layer, weights)
