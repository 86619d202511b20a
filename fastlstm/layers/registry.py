"""The one table from Keras class names to fastlstm layer classes, and building a layer from
its config through it. Filled when fastlstm.layers is imported (its layers) and when
fastlstm.model is (nested Sequential/Functional models); wrappers build their inner layers
through it, so it imports no layer module."""
from __future__ import annotations

from ..errors import ModelFormatError, UnsupportedConfigError
from .base import Layer, LoadContext

LAYER_CLASSES = {}
# Nested models: a Model builds its layers through this table, so the table cannot import it.
CONTAINER_CLASSES = {}


def layer_class(class_name):
    """The class for a Keras class name, or None (also for a name that is no string: a file's
    config may hold anything there)."""
    return LAYER_CLASSES.get(class_name) if isinstance(class_name, str) else None


def register_layers(classes) -> None:
    for cls in classes:
        LAYER_CLASSES[cls.keras_class] = cls


def register_container(class_names, cls) -> None:
    for name in class_names:
        CONTAINER_CLASSES[name] = cls


def build_layer(layer_dict: dict, ctx: LoadContext) -> Layer:
    class_name = layer_dict.get("class_name")
    if isinstance(class_name, str) and class_name in CONTAINER_CLASSES:
        return CONTAINER_CLASSES[class_name].from_layer_dict(layer_dict, ctx)
    cls = layer_class(class_name)
    if cls is None:
        raise UnsupportedConfigError(f"unsupported layer class {class_name!r}")
    config = layer_dict.get("config")
    if not isinstance(config, dict):
        raise ModelFormatError(f"layer of class {class_name!r} has no config dict")
    return cls(config, ctx)
