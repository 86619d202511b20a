"""Opening objects of a Keras HDF5 file without leaving it: every weight read goes through
:func:`open_child`.

HDF5 lets a file point elsewhere, and h5py follows it silently: an external link
(``h5py.ExternalLink``) opens another file when traversed, a dataset with external storage
(``create_dataset(external=...)``, HDF5 ``H5Pset_external``) reads its bytes from another file, a
virtual dataset (``h5py.VirtualLayout``, HDF5 ``H5D_VIRTUAL``) reads from source datasets in other
files and gives its fill value (zeros) when they are missing. Any of these in a weights file
would turn another file's bytes into model weights, so all are refused. Soft links stay in the
file but may point anywhere in it, or at their own ancestor: they are followed only to places
inside the weights group being read (``/model_weights`` of a full-model file, the root of a
weights file), and not to their own ancestors.

Names are resolved one link at a time with the H5L calls, which inspect a link without
traversing it (``H5Lexists`` and ``H5Lget_info`` follow only the links *before* the last part of
a path); only hard links are opened. ``group[name]``, ``name in group`` and ``group.get(name)``
would let libhdf5 traverse soft and external links on the way.
"""
from __future__ import annotations

import h5py

from ..errors import ModelFormatError

# libhdf5's default limit on soft and user-defined link traversals per lookup (H5L_NUM_LINKS,
# H5Pset_nlinks); a longer chain is a loop.
MAX_SOFT_LINKS = 16
LEGACY_WEIGHTS_GROUP = "model_weights"  # tf_keras hdf5_format.save_model_to_hdf5


def open_child(group: h5py.Group, name: str, context: str):
    """The object at ``name`` below ``group`` (``/``-separated parts, as Keras 2 weight names
    like ``lstm/lstm_cell/kernel:0`` are), or None when there is none. Raises ModelFormatError,
    naming the object's HDF5 path, for a link or dataset that reaches outside the weights."""
    return _walk(group, name, context, weights_root(group), 0)


def file_label(group: h5py.Group) -> str:
    """The file's name for messages; h5py names a file opened from a Python file object (the
    weights of a .keras) after its repr."""
    name = group.file.filename
    return "in-memory HDF5 file" if name.startswith("<") else repr(name)


def weights_root(group: h5py.Group) -> str:
    """The HDF5 path of the weights group a Keras file is read from (see KerasH5Reader)."""
    if group.file.id.links.exists(LEGACY_WEIGHTS_GROUP.encode()):
        return "/" + LEGACY_WEIGHTS_GROUP
    return "/"


def _walk(group, name: str, context: str, root: str, hops: int):
    obj = group
    for part in _parts(name, context, group.name):
        if not isinstance(obj, h5py.Group):
            return None
        obj = _step(obj, part, context, root, hops)
        if obj is None:
            return None
    return obj


def _parts(name: str, context: str, where: str) -> list:
    # HDF5 reads repeated "/" as one, and a leading "/" as the file root: parts are looked up
    # below the group whatever the name starts with. "." is the group itself in HDF5 paths.
    parts = [p for p in name.split("/") if p]
    if "." in parts:
        raise ModelFormatError(f"{context}: HDF5 name {name!r} below {where} has a '.' part")
    return parts


def _step(group, part: str, context: str, root: str, hops: int):
    """group's member ``part`` (one link), checked before anything but its link is read."""
    link = part.encode("utf-8")
    path = _join(group.name, part)
    if not group.id.links.exists(link):
        return None
    kind = group.id.links.get_info(link).type
    if kind == h5py.h5l.TYPE_HARD:
        obj = group[part]  # one hard link: nothing else is traversed
        if isinstance(obj, h5py.Dataset):
            check_storage(obj, path, context)
        return obj
    if kind == h5py.h5l.TYPE_SOFT:
        target = group.id.links.get_val(link).decode("utf-8", "replace")
        return _follow_soft(group, path, target, context, root, hops)
    if kind == h5py.h5l.TYPE_EXTERNAL:
        filename, target = group.id.links.get_val(link)
        raise ModelFormatError(
            f"{context}: HDF5 object {path} is an external link to "
            f"{filename.decode('utf-8', 'replace')!r}:{target.decode('utf-8', 'replace')}; "
            "weights are read only from the file itself")
    raise ModelFormatError(f"{context}: HDF5 object {path} is a user-defined link (type "
                           f"{kind}); weights are read only from the file itself")


def _follow_soft(group, path: str, target: str, context: str, root: str, hops: int):
    # A relative soft link value is resolved from the group holding the link (H5Lcreate_soft).
    absolute = target if target.startswith("/") else _join(group.name, target)
    resolved = "/" + "/".join(_parts(absolute, context, group.name))
    problem = None
    if not _inside(resolved, root):
        problem = f"outside the weights group {root}"
    elif _inside(path, resolved):
        problem = "its own ancestor (a cycle)"
    elif hops >= MAX_SOFT_LINKS:
        problem = f"the start of a chain of more than {MAX_SOFT_LINKS} soft links (a cycle)"
    if problem:
        raise ModelFormatError(f"{context}: HDF5 object {path} is a soft link to {target!r}, "
                               f"{problem}")
    return _walk(group.file, resolved, context, root, hops + 1)


def check_storage(ds: h5py.Dataset, path: str, context: str) -> None:
    """Refuse a dataset whose data lives in other files; reads only its creation properties
    (the dataset's object header), none of its data."""
    plist = ds.id.get_create_plist()
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        sources = sorted({plist.get_virtual_filename(i)
                          for i in range(plist.get_virtual_count())})
        raise ModelFormatError(f"{context}: HDF5 dataset {path} is a virtual dataset mapped to "
                               f"{sources}; weights are read only from the file itself")
    if plist.get_external_count() > 0:
        files = [plist.get_external(i)[0].decode("utf-8", "replace")
                 for i in range(plist.get_external_count())]
        raise ModelFormatError(f"{context}: HDF5 dataset {path} keeps its data in external "
                               f"storage {files}; weights are read only from the file itself")


def _join(parent: str, name: str) -> str:
    return parent.rstrip("/") + "/" + name


def _inside(path: str, ancestor: str) -> bool:
    return path == ancestor or path.startswith(ancestor.rstrip("/") + "/")
