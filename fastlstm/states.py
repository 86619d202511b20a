"""Recurrent state outside the weights: the model's own carried state (get/set/reset/save/load)
and explicit state handles that let many independent streams share one model.

Keras keeps the state of a stateful layer inside the layer (keras/src/layers/rnn/rnn.py,
``self.states``) and ``model.save`` does not store it; here it can be read, written, reset row
by row and saved. A :class:`State` handle holds the same arrays for every recurrent layer of a
model, for any batch size, and ``model.predict(x, state=s)`` advances the handle instead of the model.
"""
from __future__ import annotations

import os
import threading
from typing import Dict, List, Optional, Sequence

import numpy as np

STATES_FORMAT = "fastlstm-states"
STATES_FORMAT_VERSION = 1


class State:
    """The state of every recurrent layer of one model (``[h, c]`` for an LSTM, ``[h]`` for a GRU
    or SimpleRNN), for ``batch_size`` streams (rows).

    Create one with :meth:`fastlstm.Model.new_state`, advance it with
    ``model.predict(x, state=s)`` or ``model.generate(x, steps, state=s)``. Any number of handles
    can serve one model, from several threads at once; a handle itself is used by one call at a
    time (a lock inside it serialises concurrent calls on the same handle). Rows can be taken out
    (:meth:`rows`) and put together (:func:`fastlstm.stack_states`) so that a server can advance
    whichever streams are ready in one batched call.
    """

    def __init__(self, signature: Sequence[tuple], arrays: List[np.ndarray]):
        # ((layer name, units, number of states), ...) in execution order
        self._signature = tuple(signature)
        # [h0, c0, h1, c1, ...], C-contiguous float32; a GRU's or SimpleRNN's c is carried
        # unused, so that every recurrent op of a compiled stack takes an [h, c] pair.
        self._arrays = arrays
        self._lock = threading.Lock()

    @property
    def batch_size(self) -> int:
        return self._arrays[0].shape[0]

    @property
    def layer_names(self) -> List[str]:
        return [name for name, _, _ in self._signature]

    def as_dict(self) -> Dict[str, List[np.ndarray]]:
        """``{layer_name: [h, c]}`` (LSTM) or ``{layer_name: [h]}`` copies, arrays of shape
        ``(batch_size, units)``."""
        return {name: [a.copy() for a in self._arrays[2 * i:2 * i + n]]
                for i, (name, _, n) in enumerate(self._signature)}

    def rows(self, start: int, stop: Optional[int] = None) -> "State":
        """A new handle holding copies of rows ``start:stop`` (one row when ``stop`` is None)."""
        n = self.batch_size
        stop = start + 1 if stop is None else stop
        if not (0 <= start < stop <= n):
            raise ValueError(f"rows({start}, {stop}) is outside a state of {n} rows")
        return State(self._signature, [np.ascontiguousarray(a[start:stop]) for a in self._arrays])

    def copy(self) -> "State":
        return State(self._signature, [a.copy() for a in self._arrays])

    def reset(self, samples=None) -> None:
        """Zero every row, or only the rows listed in ``samples`` (an int or a sequence)."""
        rows = sample_rows(samples, self.batch_size)
        with self._lock:
            for a in self._arrays:
                a[rows] = 0.0

    def __repr__(self) -> str:
        layers = ", ".join(f"{name}({units})" for name, units, _ in self._signature)
        return f"<fastlstm.State batch_size={self.batch_size} layers=[{layers}]>"


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
    return State(sig, [np.concatenate([s._arrays[i] for s in states])
                       for i in range(len(states[0]._arrays))])


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


def new_state(recurrent_layers, batch_size: int) -> State:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not recurrent_layers:
        raise ValueError("the model has no recurrent layer, so it has no state")
    arrays = []
    for layer in recurrent_layers:
        arrays += [np.zeros((batch_size, layer.units), np.float32) for _ in range(2)]
    return State(signature(recurrent_layers), arrays)


def signature(recurrent_layers) -> tuple:
    """What a state handle must match: each recurrent layer's name, units and state count."""
    return tuple((l.name, l.units, l.n_states) for l in recurrent_layers)


# -- the model's own state (stateful layers) ---------------------------------------------------
def get_states(stateful_layers) -> Dict[str, List[np.ndarray]]:
    return {l.name: [l.h.copy(), l.c.copy()][:l.n_states] for l in stateful_layers}


def set_states(stateful_layers, states: Dict[str, Sequence]) -> None:
    """Copies into the layers' arrays in place (compiled stacks hold pointers to them); every
    value is checked before any is written."""
    if not isinstance(states, dict):
        raise TypeError(f"states must be a dict {{layer_name: [h, c] or [h]}}, got "
                        f"{type(states).__name__}")
    by_name = {l.name: l for l in stateful_layers}
    unknown = sorted(set(states) - set(by_name))
    if unknown:
        raise ValueError(f"no stateful recurrent layer named {unknown}; the model's are "
                         f"{sorted(by_name)}")
    checked = []
    for name, value in states.items():
        layer = by_name[name]
        names = layer.state_names
        if not isinstance(value, (list, tuple)) or len(value) != len(names):
            got = type(value).__name__ + ("" if not isinstance(value, (list, tuple))
                                          else f" of {len(value)}")
            raise ValueError(f"states[{name!r}] must be [{', '.join(names)}] "
                             f"({layer.keras_class}), got {got}")
        pair = []
        for part, arr in zip(names, value):
            a = np.asarray(arr)
            if a.dtype.kind not in "fiu":
                raise TypeError(f"states[{name!r}] {part} must be numeric, got dtype {a.dtype}")
            if a.shape != layer.h.shape:
                raise ValueError(f"states[{name!r}] {part} has shape {a.shape}, expected "
                                 f"{layer.h.shape} (batch_size, units)")
            pair.append(a)
        checked.append((layer, pair))
    for layer, values in checked:
        for target, value in zip((layer.h, layer.c), values):
            np.copyto(target, value, casting="unsafe")


def reset_rows(stateful_layers, samples, batch_size) -> None:
    rows = sample_rows(samples, batch_size)
    for l in stateful_layers:
        l.h[rows] = 0.0
        l.c[rows] = 0.0


def save_states(stateful_layers, path, model_name: str) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["format"] = STATES_FORMAT
        f.attrs["format_version"] = STATES_FORMAT_VERSION
        f.attrs["model_name"] = model_name
        for l in stateful_layers:
            g = f.create_group(l.name)
            for part, arr in zip(l.state_names, (l.h, l.c)):
                g.create_dataset(part, data=arr)


def load_states(stateful_layers, path) -> None:
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
        for l in stateful_layers:
            names = l.state_names
            # Through open_child, as weights are: no link or storage outside the file is read
            # (ModelFormatError, a ValueError, names the object).
            g = open_child(f, l.name, where)
            arrays = [open_child(g, k, where) if isinstance(g, h5py.Group) else None
                      for k in names]
            if not all(isinstance(a, h5py.Dataset) and a.dtype.kind in "fiu" for a in arrays):
                raise ValueError(f"{path!s} has no {' and '.join(names)} states for layer "
                                 f"{l.name!r}")
            for k, a in zip(names, arrays):  # before reading: a file may declare any shape
                if a.shape != l.h.shape:
                    raise ValueError(f"{path!s}: state {k} of layer {l.name!r} has shape "
                                     f"{a.shape}, expected {l.h.shape} (batch_size, units)")
            states[l.name] = [a[()] for a in arrays]
        set_states(stateful_layers, states)
