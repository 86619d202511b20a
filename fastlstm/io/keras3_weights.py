"""The Keras 3 weights layout (keras/src/saving/saving_lib.py ``_save_state``): variables sit at
``<object path>/vars/0, 1, ...`` (trainable then non-trainable), and a model's layers are at
``layers/<snake_case(ClassName)>[_N]`` with one counter per class in ``model.layers`` order
(``_save_container_state``), not under the layer names of the config. tf.keras 2.13-era files use
``_layer_checkpoint_dependencies`` instead of ``layers``.

Files saved on Windows by tf.keras/tf_keras's saving_lib (tf_keras/src/saving/saving_lib.py
``_save_state``: ``inner_path=tf.io.gfile.join(inner_path, child_attr)``, which is
``os.path.join`` for a local path, so ``\\`` on Windows; H5IOStore.make then calls
``h5_file.create_group(path).create_group("vars")``) hold each object's group as one *flat*
group at the root whose name contains backslashes, ``layers\\lstm\\cell/vars/0``, and no
``layers`` group (Keras 3's saving_lib replaces ``\\`` by ``/`` since 3.0). :func:`child` and
:func:`container` find such a group when the nested one is missing: the backslash name is only
an HDF5 link name looked up at the file's root (open_child, one link), never a filesystem path."""
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


class FlatPrefix:
    """A group of the Windows layout that exists only as the prefix of flat group names
    (``layers`` of ``layers\\lstm``): it holds no variables of its own."""

    def __init__(self, root: h5py.Group, parts):
        self.root = root
        self.parts = list(parts)


def _logical_parts(group):
    """(root, the object path's parts) of a nested, flat or prefix group."""
    if isinstance(group, FlatPrefix):
        return group.root, group.parts
    return group.file["/"], [p for p in re.split(r"[/\\]", group.name) if p]


def _flat_child(group, key: str, where: str):
    """The Windows-layout group (or prefix) of ``key`` below ``group``, or None."""
    root, parts = _logical_parts(group)
    name = "\\".join(parts + [key])
    found = open_child(root, name, where) if "/" not in name else None
    if isinstance(found, h5py.Group):
        return found
    if any(k.startswith(name + "\\") for k in root.keys()):   # link names only
        return FlatPrefix(root, parts + [key])
    return None


def container(group, where: str):
    for key in CONTAINER_KEYS:
        found = open_child(group, key, where)
        if isinstance(found, h5py.Group):
            return found
        if found is not None:
            raise ModelFormatError(f"{where}/{key} is not a group")
        found = _flat_child(group, key, where)
        if found is not None:
            return found
    raise ModelFormatError(f"{where}: no 'layers' group in the Keras 3 weights")


def read_vars(group, where: str):
    """Arrays of ``group/vars`` in index order ([] when there is none)."""
    if group is None or isinstance(group, FlatPrefix):
        return []
    v = open_child(group, "vars", where)
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
    where = where or (file_label(group.root if isinstance(group, FlatPrefix) else group))
    obj = None if isinstance(group, FlatPrefix) else open_child(group, key, where)
    if isinstance(obj, h5py.Group):
        return obj
    return _flat_child(group, key, where) if obj is None else None
