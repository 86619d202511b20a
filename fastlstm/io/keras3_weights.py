"""The Keras 3 weights layout (keras/src/saving/saving_lib.py ``_save_state``): variables sit at
``<object path>/vars/0, 1, ...`` (trainable then non-trainable), and a model's layers are at
``layers/<snake_case(ClassName)>[_N]`` with one counter per class in ``model.layers`` order
(``_save_container_state``), not under the layer names of the config. tf.keras 2.13-era files use
``_layer_checkpoint_dependencies`` instead of ``layers``."""
from __future__ import annotations

import re

import h5py

from ..errors import ModelFormatError
from .h5_safety import file_label, open_child
from .keras_h5 import read_dataset

CONTAINER_KEYS = ("layers", "_layer_checkpoint_dependencies")


def to_snake_case(name: str) -> str:
    """keras/src/utils/naming.py to_snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name


def layer_paths(class_names):
    """The group names Keras gives a list of objects of these classes."""
    used = {}
    paths = []
    for class_name in class_names:
        name = to_snake_case(class_name)
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        paths.append(name)
    return paths


def container(group, where: str):
    for key in CONTAINER_KEYS:
        found = open_child(group, key, where)
        if isinstance(found, h5py.Group):
            return found
        if found is not None:
            raise ModelFormatError(f"{where}/{key} is not a group")
    raise ModelFormatError(f"{where}: no 'layers' group in the Keras 3 weights")


def read_vars(group, where: str):
    """Arrays of ``group/vars`` in index order ([] when there is none)."""
    v = None if group is None else open_child(group, "vars", where)
    if v is None:
        return []
    if not isinstance(v, h5py.Group):
        raise ModelFormatError(f"{where}/vars is not a group")
    keys = list(v.keys())  # link names only (H5Literate): nothing is traversed
    if not all(k.isdigit() for k in keys):
        raise ModelFormatError(f"{where}/vars has unexpected members {sorted(keys)}")
    return [read_dataset(open_child(v, k, where), f"{where}/vars/{k}")
            for k in sorted(keys, key=int)]


def read_path(group, path, where: str, layer_name: str):
    """read_vars of the group at ``path`` (a tuple of keys) below ``group``, which holds the
    weights of layer ``layer_name``."""
    for key in (None,) + tuple(path):
        if key is not None:
            group = child(group, key, where)
            where = f"{where}/{key}"
        if group is None:
            raise ModelFormatError(f"{where}: missing (weights of layer {layer_name!r})")
    return read_vars(group, where)


def child(group, key: str, where: str = None):
    if group is None:
        return None
    obj = open_child(group, key, where or file_label(group))
    return obj if isinstance(obj, h5py.Group) else None
