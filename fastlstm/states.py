"""Recurrent state outside the weights: the model's own carried state (get/set/reset/save/load)
and explicit state handles that let many independent streams share one model.

Keras keeps the state of a stateful layer inside the layer (keras/src/layers/rnn/rnn.py,
``self.states``) and ``model.save`` does not store it; here it can be read, written, reset row
by row and saved. A :class:`State` handle holds the same arrays for every recurrent layer of a
model, for any batch size, and ``model.predict(x, state=s)`` advances the handle instead of the model.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from . import _kernels

STATES_FORMAT = "fastlstm-states"
STATES_FORMAT_VERSION = 1
# The names of a slot's states by their number (keras/src/layers/rnn/lstm.py state_size
# [units, units]: h then c; gru.py and simple_rnn.py: h only; conv_lstm.py: h then c).
STATE_NAMES = {1: ("h",), 2: ("h", "c")}


class State:
    """The state of every recurrent layer of one model (``[h, c]`` for an LSTM or a ConvLSTM,
    ``[h]`` for a GRU or SimpleRNN), for ``batch_size`` streams (rows).

    Create one with :meth:`fastlstm.Model.new_state`, advance it with
    ``model.predict(x, state=s)`` or ``model.generate(x, steps, state=s)``. Any number of handles
    can serve one model, from several threads at once; a handle itself is used by one call at a
    time (its store's lock serialises concurrent calls on the same handle). Rows can be taken out
    (:meth:`rows`) and put together (:func:`fastlstm.stack_states`) so that a server can advance
    whichever streams are ready in one batched call. A stateful model's own carried state is
    a State too, over its stateful layers.
    """

    def __init__(self, signature: Sequence[tuple], store: "_kernels.StateStore"):
        # ((layer name, state shape, number of states), ...) in execution order, one per store
        # slot; a state shape is one row's: (units,), or a ConvLSTM's (*spatial, filters). The
        # store holds each row flattened.
        self._signature = tuple(signature)
        self._store = store

    @classmethod
    def zeros(cls, signature: Sequence[tuple], batch_size: int) -> "State":
        signature = tuple(signature)
        return cls(signature, _kernels.StateStore(batch_size, _layout(signature)))

    @property
    def batch_size(self) -> int:
        return self._store.batch_size

    @property
    def layer_names(self) -> List[str]:
        return [name for name, _, _ in self._signature]

    def as_dict(self) -> Dict[str, List[np.ndarray]]:
        """``{layer_name: [h, c]}`` (LSTM, ConvLSTM) or ``{layer_name: [h]}`` copies, arrays of
        shape ``(batch_size, units)`` (a ConvLSTM's: ``(batch_size, *spatial, filters)``, as Keras
        holds them), taken while no call advances the state."""
        with self._store.lock:
            return {name: [a.copy() for a in self._slot_arrays(i)]
                    for i, (name, _, _) in enumerate(self._signature)}

    def _slot_arrays(self, slot: int) -> List[np.ndarray]:
        """Views of one slot's states in the store, shaped (batch_size, *state shape)."""
        shape = self._signature[slot][1]
        return [a.reshape((-1,) + shape) for a in self._store.arrays[slot]]

    def rows(self, start: int, stop: Optional[int] = None) -> "State":
        """A new handle holding copies of rows ``start:stop`` (one row when ``stop`` is None)."""
        n = self.batch_size
        stop = start + 1 if stop is None else stop
        if not (0 <= start < stop <= n):
            raise ValueError(f"rows({start}, {stop}) is outside a state of {n} rows")
        with self._store.lock:
            return _from_slots(self._signature, [[a[start:stop] for a in arrays]
                                                 for arrays in self._store.arrays])

    def copy(self) -> "State":
        with self._store.lock:
            return State(self._signature, _kernels.StateStore(
                self.batch_size, self._store.layout, self._store.data))

    def reset(self, samples=None) -> None:
        """Zero every row, or only the rows listed in ``samples`` (an int or a sequence)."""
        rows = sample_rows(samples, self.batch_size)
        with self._store.lock:
            for arrays in self._store.arrays:
                for a in arrays:
                    a[rows] = 0.0

    def __repr__(self) -> str:
        layers = ", ".join(f"{name}({'x'.join(map(str, shape))})"
                           for name, shape, _ in self._signature)
        return f"<fastlstm.State batch_size={self.batch_size} layers=[{layers}]>"


def _shape_text(shape) -> str:
    """What a state's shape is made of, for messages."""
    return "(batch_size, units)" if len(shape) == 1 else "(batch_size, *spatial, filters)"


def _layout(signature) -> tuple:
    return tuple((int(np.prod(shape)), n_states) for _, shape, n_states in signature)


def _from_slots(signature, slots) -> State:
    """A State holding copies of these per-slot arrays (each (rows, units), row-major)."""
    data = np.concatenate([np.ravel(a) for arrays in slots for a in arrays])
    return State(signature, _kernels.StateStore(len(slots[0][0]), _layout(signature), data))


def stack_states(states: Sequence[State]) -> State:
    """Join handles of one model by rows.

    Parameters
    ----------
    states : sequence of State
        Handles from the same model.

    Returns
    -------
    State
        Their rows one after the other (copies); split it back with :meth:`State.rows`.
    """
    states = list(states)
    if not states or not all(isinstance(s, State) for s in states):
        raise TypeError("stack_states takes a non-empty list of fastlstm.State handles")
    sig = states[0]._signature
    for s in states[1:]:
        if s._signature != sig:
            raise ValueError(f"cannot stack states of different models: {states[0]!r} and {s!r}")
    parts = []
    for s in states:  # each read while no call advances it
        with s._store.lock:
            parts.append([[a.copy() for a in arrays] for arrays in s._store.arrays])
    return _from_slots(sig, [[np.concatenate([p[i][k] for p in parts])
                              for k in range(len(parts[0][i]))] for i in range(len(sig))])


def sample_rows(samples, batch_size: int) -> np.ndarray:
    """Row indices for ``samples`` (None: all rows), each checked against ``batch_size``."""
    if samples is None:
        return np.arange(batch_size)
    rows = np.atleast_1d(np.asarray(samples))
    if rows.ndim != 1 or (rows.size and rows.dtype.kind not in "iu"):
        raise TypeError(f"samples must be an int or a sequence of ints, got {samples!r}")
    bad = rows[(rows < 0) | (rows >= batch_size)]
    if bad.size:
        raise ValueError(f"samples {bad.tolist()} are outside the batch of {batch_size} rows")
    return rows.astype(np.intp)


def new_state(signature: tuple, batch_size: int) -> State:
    """A zero State for signature (see signature)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not signature:
        raise ValueError("the model has no recurrent layer, so it has no state")
    return State.zeros(signature, int(batch_size))


def signature(named_layers) -> tuple:
    """What a state must match: for each (name, recurrent layer), the name its states go by,
    the shape of one row of a state (``state_shape``: (units,), or a ConvLSTM's (*spatial,
    filters)) and the state count."""
    out = []
    for name, layer in named_layers:
        shape = tuple(layer.state_shape)
        if None in shape:  # a Keras 2 ConvLSTM over spatial axes the model leaves open
            raise ValueError(f"layer {name!r} ({layer.keras_class}) has a state of unknown "
                             f"shape (batch, {', '.join(map(str, shape))}): a state handle "
                             "needs the model's input to fix its spatial axes")
        out.append((name, shape, layer.n_states))
    return tuple(out)


def state_names(paths) -> Dict[object, str]:
    """The name each recurrent layer's states go by (get_states keys, save_states groups): its
    own name, or, where two layers share one (Keras allows a nested model's layer the name of
    an outer one), its path through the nested models, "encoder/lstm". paths: (path, layer)
    pairs, a path being the names from the outer model down to the layer."""
    paths = list(paths)
    count: Dict[str, int] = {}
    for path, _ in paths:
        count[path[-1]] = count.get(path[-1], 0) + 1
    return {layer: path[-1] if count[path[-1]] == 1 else "/".join(path) for path, layer in paths}


# -- the model's own state (a State over its stateful layers) -----------------------------------
def set_states(own: State, states: Dict[str, Sequence], classes: Dict[str, str]) -> None:
    """Copies into the store in place; every value is checked before any is written.
    classes: each layer's Keras class, for the messages."""
    if not isinstance(states, dict):
        raise TypeError(f"states must be a dict {{layer_name: [h, c] or [h]}}, got "
                        f"{type(states).__name__}")
    slot_of = {name: i for i, (name, _, _) in enumerate(own._signature)}
    unknown = sorted(set(states) - set(slot_of))
    if unknown:
        raise ValueError(f"no stateful recurrent layer named {unknown}; the model's are "
                         f"{sorted(slot_of)}")
    checked = []
    for name, value in states.items():
        targets = own._slot_arrays(slot_of[name])
        names = STATE_NAMES[len(targets)]
        if not isinstance(value, (list, tuple)) or len(value) != len(names):
            got = type(value).__name__ + ("" if not isinstance(value, (list, tuple))
                                          else f" of {len(value)}")
            raise ValueError(f"states[{name!r}] must be [{', '.join(names)}] ({classes[name]}), "
                             f"got {got}")
        for part, arr, target in zip(names, value, targets):
            a = np.asarray(arr)
            if a.dtype.kind not in "fiu":
                raise TypeError(f"states[{name!r}] {part} must be numeric, got dtype {a.dtype}")
            if a.shape != target.shape:
                raise ValueError(f"states[{name!r}] {part} has shape {a.shape}, expected "
                                 f"{target.shape} {_shape_text(target.shape[1:])}")
            checked.append((target, a))
    for target, value in checked:
        np.copyto(target, value, casting="unsafe")


def save_states(own: State, path, model_name: str) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["format"] = STATES_FORMAT
        f.attrs["format_version"] = STATES_FORMAT_VERSION
        f.attrs["model_name"] = model_name
        for slot, (name, _, _) in enumerate(own._signature):
            g = f.create_group(name)
            arrays = own._slot_arrays(slot)
            for part, arr in zip(STATE_NAMES[len(arrays)], arrays):
                g.create_dataset(part, data=arr)


def load_states(own: State, path, classes: Dict[str, str]) -> None:
    """Reads a save_states file: datasets only, every layer present and checked."""
    import h5py

    from .io.h5_attrs import str_attr
    from .io.h5_guard import check_global_heaps_in_file
    from .io.h5_safety import open_child

    if not os.path.exists(path):
        raise FileNotFoundError(f"no such states file: {path!s}")
    check_global_heaps_in_file(path, os.fspath(path))
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise FileNotFoundError(f"no such states file: {path!s}") from None
    except OSError as e:
        raise ValueError(f"{path!s} is not a fastlstm states file (HDF5): {e}") from None
    with f:
        found = str_attr(f, "format")
        if found != STATES_FORMAT:
            raise ValueError(f"{path!s} is not a fastlstm states file (format attribute "
                             f"{found!r}, expected {STATES_FORMAT!r})")
        states = {}
        where = f"states file {os.fspath(path)!r}"
        for slot, (name, _, _) in enumerate(own._signature):
            targets = own._slot_arrays(slot)
            names = STATE_NAMES[len(targets)]
            # Through open_child, as weights are: no link or storage outside the file is read
            # (ModelFormatError, a ValueError, names the object).
            g = open_child(f, name, where)
            arrays = [open_child(g, k, where) if isinstance(g, h5py.Group) else None
                      for k in names]
            if not all(isinstance(a, h5py.Dataset) and a.dtype.kind in "fiu" for a in arrays):
                raise ValueError(f"{path!s} has no {' and '.join(names)} states for layer "
                                 f"{name!r}")
            for k, a in zip(names, arrays):  # before reading: a file may declare any shape
                if a.shape != targets[0].shape:
                    raise ValueError(f"{path!s}: state {k} of layer {name!r} has shape "
                                     f"{a.shape}, expected {targets[0].shape} "
                                     f"{_shape_text(targets[0].shape[1:])}")
            states[name] = [a[()] for a in arrays]
        set_states(own, states, classes)


class Binding:
    """The state arrays one call advances: a State's store and the model's slot of each of
    its recurrent layers in it (the model's own state: its stateful layers; a handle: every
    recurrent layer). Layers absent from slots start from zeros and keep nothing."""

    __slots__ = ("store", "handle", "slots")

    def __init__(self, state: State, handle: bool, slots: Dict[object, int]):
        self.store = state._store
        self.handle = handle
        self.slots = slots

    def arrays(self, layer) -> Optional[List[np.ndarray]]:
        slot = self.slots.get(layer)
        return None if slot is None else self.store.arrays[slot]
