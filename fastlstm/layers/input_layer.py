"""Keras InputLayer: declares a model input's shape (batch_input_shape in Keras 1/2, batch_shape
in Keras 3); a fixed batch size there is what stateful layers are built for."""
from __future__ import annotations

from ..errors import ModelFormatError
from .base import Layer

MAX_DIM = 1 << 24


def declared_batch_shape(config: dict, name: str):
    """The (batch, ...) shape a layer config declares, or None when it declares none."""
    if config.get("batch_shape") is not None:
        shape = config["batch_shape"]
    elif config.get("batch_input_shape") is not None:
        shape = config["batch_input_shape"]
    elif config.get("shape") is not None:  # Keras 3 Input(shape=...) configs written by hand
        shape = [config.get("batch_size")] + list(config["shape"])
    else:
        return None
    if not isinstance(shape, (list, tuple)) or not shape:
        raise ModelFormatError(f"layer {name!r}: input shape {shape!r} is not a list")
    out = []
    for dim in shape:
        if dim is None:
            out.append(None)
        elif isinstance(dim, bool) or not isinstance(dim, int) or not 0 < dim <= MAX_DIM:
            raise ModelFormatError(f"layer {name!r}: input shape {shape!r} has an invalid "
                                   f"dimension {dim!r}")
        else:
            out.append(dim)
    return tuple(out)


class InputLayer(Layer):
    keras_class = "InputLayer"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        shape = declared_batch_shape(config, self.name)
        if shape is None:
            raise ModelFormatError(f"InputLayer {self.name!r} declares no shape")
        self.batch_shape = shape
        self.build([shape])

    def call(self, inputs, initial_state=None, n_threads=1):
        return inputs
