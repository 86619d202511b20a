"""Model: the Keras-facing methods over a graph (graph.Graph) and its executor
(executor.Executor); a Model nested in another is a layer of it."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from . import _kernels, _runtime, states
from .budget import check_budget
from .config import MODEL_CLASSES, GraphSpec, check_nesting, parse_model
from .errors import ModelFormatError
from .executor import Executor
from .generate import generate
from .graph import Graph
from .inputs import shape_text, standardize_inputs
from .io import keras1_config, weights_file
from .layers import LAYER_CLASSES, check_supported
from .layers.base import Layer, LoadContext
from .layers.registry import register_container
from .summary import summary_rows, summary_text


class Model(Layer):
    """A loaded Keras model. Build one with :func:`fastlstm.load_model` or
    :func:`fastlstm.model_from_json`."""

    def __init__(self, spec: GraphSpec, ctx: LoadContext, fuse: bool = True):
        super().__init__({"name": spec.name}, ctx)
        self.keras_class = spec.class_name
        self.graph = Graph(spec, ctx)
        self.layers = self.graph.layers
        self.input_layers = self.graph.input_layers
        self.stateful = any(layer.stateful for layer in self.leaf_layers())
        self.fuse = bool(fuse)
        self._own: Optional[states.State] = None  # the carried state (allocate_state)
        self._own_store = None  # its store, looked up once per call by predict's fast path
        self._slots: Dict[bool, Dict[Layer, int]] = {}
        self._executor: Optional[Executor] = None  # made at the first call after the weights
        self._whole = None  # the executor's whole-model plan, for predict's fast path
        self.keras_config = None   # the Keras config it was built from (set by the loaders)
        self.file_format = None    # what it was loaded from, for `fastlstm info`

    @classmethod
    def from_layer_dict(cls, layer_dict: dict, ctx: LoadContext) -> "Model":
        """A nested model, built by the layer table (layers.build_layer)."""
        return cls(parse_model(layer_dict, LAYER_CLASSES), ctx)

    @classmethod
    def from_keras_config(cls, model_config, version: tuple, fuse: bool = True) -> "Model":
        """A whole model from its Keras config, built, bounded and with zero state; weights
        come after (the loaders)."""
        check_nesting(model_config, LAYER_CLASSES)  # before anything recurses into nested models
        graph_config = model_config
        if version[0] < 3:
            # Keras 2 read Keras 1 configs through its legacy constructor keywords (keys decide,
            # not the recorded version, which old files lack); Keras 3 has no such conversion.
            graph_config = keras1_config.convert_model_config(model_config, LAYER_CLASSES)
        check_supported(graph_config)
        model = cls(parse_model(graph_config, LAYER_CLASSES), LoadContext(version), fuse)
        model.build()
        check_budget(model)  # sizes from the config, bounded before they are allocated
        model.allocate_state()
        model.keras_config = model_config  # kept for pickling (rebuilt from it, never evaluated)
        return model

    # -- structure --------------------------------------------------------------------------------
    def sublayers(self) -> List[Layer]:
        return self.graph.sublayers()

    def leaf_layers(self) -> List[Layer]:
        return [leaf for layer in self.layers.values() for leaf in layer.leaf_layers()]

    def nested_graphs(self) -> list:
        return [self.graph]

    def recurrent_layers(self) -> List[Layer]:
        """Every recurrent layer, nested ones included, in execution order: the slots of a
        state handle."""
        return self.graph.recurrent_layers()

    def _stateful_layers(self) -> List[Layer]:
        return [l for l in self.recurrent_layers() if l.stateful]

    def state_slots(self, handle: bool) -> Dict[Layer, int]:
        """Each recurrent layer's slot in a handle's store (handle), or each stateful layer's
        in the model's own."""
        if handle not in self._slots:
            layers = self.recurrent_layers() if handle else self._stateful_layers()
            self._slots[handle] = {layer: i for i, layer in enumerate(layers)}
        return self._slots[handle]

    def tensor_shapes(self):
        return [s for key in self.graph.order for s in self.layers[key[0]].tensor_shapes()]

    # -- shapes -----------------------------------------------------------------------------------
    def build(self, input_shapes=None):
        if input_shapes is None:
            input_shapes = [layer.batch_shape for layer in self.input_layers]
        self.output_shapes = self.graph.build(input_shapes)
        self.input_shapes = list(input_shapes)
        self.built = True
        return self.output_shapes

    def compute_output_shapes(self, input_shapes):
        return self.build(input_shapes)

    # -- weights ----------------------------------------------------------------------------------
    def weighted_layers(self) -> List[Layer]:
        return [l for l in self.sublayers() if l.weight_shapes()]

    def weight_shapes(self):
        # A nested model's weights: every sublayer's trainable ones, then every sublayer's
        # non-trainable ones (tf_keras Model.weights; split back by convert_nested_model).
        layers = self.weighted_layers()
        trainable = [s for l in layers for s in l.weight_shapes()[:l.n_trainable_weights()]]
        frozen = [s for l in layers for s in l.weight_shapes()[l.n_trainable_weights():]]
        return trainable + frozen

    def n_trainable_weights(self) -> int:
        return sum(l.n_trainable_weights() for l in self.weighted_layers())

    def assign_weights(self, weights):
        layers = self.weighted_layers()
        n_trainable = [l.n_trainable_weights() for l in layers]
        frozen_at = sum(n_trainable)
        t = 0
        for layer, n_t in zip(layers, n_trainable):
            n_f = len(layer.weight_shapes()) - n_t
            layer.set_weights(list(weights[t:t + n_t]) + list(weights[frozen_at:frozen_at + n_f]))
            t += n_t
            frozen_at += n_f

    def load_weights(self, path) -> None:
        """Keras ``model.load_weights``: a Keras 1/2 ``save_weights`` .h5, a Keras 3
        ``.weights.h5``, or the weights inside a full .h5/.keras model file. The weights are
        assigned in place, as Keras assigns its variables, so a compiled executor runs on them
        as it is; like ``set_weights``, call it between predictions (no lock guards weights:
        the one lock guards a state)."""
        weights_file.load_weights(self, path)

    def load_keras3_group(self, group, where: str) -> None:
        """A nested model's weights, under its own group."""
        if group is None:
            raise ModelFormatError(f"{where}: missing (weights of nested model {self.name!r})")
        weights_file.load_keras3_weights(self, group, where)

    # -- running ----------------------------------------------------------------------------------
    def _compiled(self) -> Executor:
        if self._executor is None:
            missing = [l.name for l in self.leaf_layers() if l.weight_shapes() and l.weights is None]
            if missing:
                raise ValueError(f"model {self.name!r} has no weights for layers {missing} yet; "
                                 "load them with model.load_weights(path)")
            self._executor = Executor(self, self.fuse)
            self._whole = self._executor.whole
        return self._executor

    def run(self, inputs: List[np.ndarray], n_threads: int, binding=None,
            record: Optional[dict] = None) -> List[np.ndarray]:
        """The outputs for checked float32 inputs. binding: the states.Binding to advance
        (None: the model's own state). record: filled with {layer name: outputs of its
        first call} (``fastlstm verify``), every layer then called on its own."""
        if binding is None and self._own is not None:
            binding = states.Binding(self._own, False, self.state_slots(False))
        fused = None if record is not None else self._compiled().fused
        return self.graph.run(inputs, [None] * len(inputs), n_threads, binding, fused,
                              record)[0]

    def run_node(self, inputs, initial_state, in_masks, n_threads, states=None, fused=None):
        return self.graph.run(inputs, in_masks, n_threads, states, fused)

    def predict(self, x, batch_size: Optional[int] = None, state=None):
        """Keras ``model.predict``.

        Parameters
        ----------
        x : array_like or list or dict
            ``(batch, timesteps, features)`` (any numeric dtype or layout); a list or a dict by
            input name for several inputs.
        batch_size : int, optional
            Stateful models only: equal to the model's fixed batch size, lets ``x`` hold a
            multiple of it, run batch after batch with the state carried over, as Keras does.
        state : State, optional
            A handle from :meth:`new_state` with one row per row of ``x``, used and advanced
            instead of the model's own state.

        Returns
        -------
        numpy.ndarray or list of numpy.ndarray
            float32 outputs; a list when the model has several.

        Raises
        ------
        ValueError, TypeError
            Input of the wrong rank, feature size, timesteps, batch size or dtype.

        Notes
        -----
        A stateful model continues each row from the previous call until
        :meth:`reset_states`. The GIL is released while the kernels run.
        """
        # The streaming fast path: a model that is one fused stack, given an array it takes
        # as is, makes one call into Cython (StackPlan.try_run validates it).
        whole = self._whole
        if whole is not None and batch_size is None and state is None:
            out = whole.try_run(x, self._own_store)
            if out is not None:
                return out
        return self._predict(x, batch_size, state)

    def __call__(self, x, batch_size: Optional[int] = None, state=None):
        return self.predict(x, batch_size, state)

    def _predict(self, x, batch_size, state):
        if state is not None:
            return self._predict_with_handle(x, batch_size, state)
        arrays = standardize_inputs(self.graph, x)
        n_rows = arrays[0].shape[0]
        n_threads = _runtime.get_num_threads()
        if not self.stateful:
            outs = self.run(arrays, n_threads)
        else:
            fixed = self.batch_size
            if batch_size is not None and batch_size != fixed:
                raise ValueError(f"stateful model {self.name!r} has batch size {fixed} "
                                 f"(fixed by its input shape); got batch_size={batch_size}")
            if n_rows != fixed and (batch_size is None or n_rows % fixed or n_rows == 0):
                raise ValueError(
                    f"stateful model {self.name!r} expects batch size {fixed} (fixed by "
                    f"batch_input_shape/batch_shape), got {n_rows} rows"
                    + ("" if n_rows % fixed else
                       f"; pass batch_size={fixed} to run them {fixed} rows at a time"))
            with self._state_lock():
                chunks = [self.run([a[i:i + fixed] for a in arrays], n_threads)
                          for i in range(0, n_rows, fixed)]
            outs = [np.concatenate(parts) if len(chunks) > 1 else parts[0]
                    for parts in zip(*chunks)]
        outs = [np.ascontiguousarray(o, dtype=np.float32) for o in outs]
        return outs[0] if len(outs) == 1 else outs

    def _predict_with_handle(self, x, batch_size, state):
        self._check_handle(state)
        arrays = standardize_inputs(self.graph, x)
        n_rows = arrays[0].shape[0]
        if n_rows != state.batch_size or batch_size not in (None, n_rows):
            raise ValueError(f"the state handle holds {state.batch_size} streams; got "
                             f"{n_rows} rows" + ("" if batch_size is None else
                                                 f" with batch_size={batch_size}"))
        binding = states.Binding(state, True, self.state_slots(True))
        with state._store.lock:
            outs = self.run(arrays, _runtime.get_num_threads(), binding)
        outs = [np.ascontiguousarray(o, dtype=np.float32) for o in outs]
        return outs[0] if len(outs) == 1 else outs

    def generate(self, x, steps: int, state=None) -> np.ndarray:
        """Autoregressive generation, the loop in C.

        Parameters
        ----------
        x : array_like
            ``(batch, timesteps, features)``: the start (stateful models) or the first window
            (stateless models).
        steps : int
            Outputs to produce.
        state : State, optional
            A handle to continue instead of the model's own state.

        Returns
        -------
        numpy.ndarray
            ``(batch, steps, features)``: ``y_1`` is the last step of ``predict(x)``, each next
            one the output for the previous one as input. See
            :func:`fastlstm.generate.generate` for the stateful and sliding-window rules.
        """
        return generate(self, x, steps, state)

    # -- state ------------------------------------------------------------------------------------
    def allocate_state(self) -> None:
        """The zeroed carried state of the stateful layers the model runs (after the budget
        check at load)."""
        layers = self._stateful_layers()
        self._own = states.new_state(self._signature(layers), self.batch_size) if layers else None
        self._own_store = self._own._store if layers else None

    def _state_lock(self):
        """The own state's lock (a stateless model has none to keep consistent)."""
        return self._own._store.lock if self._own is not None else _NO_LOCK

    def reset_states(self, samples=None) -> None:
        """Zero the carried state of the stateful layers (Keras ``model.reset_states()``).

        Parameters
        ----------
        samples : int or sequence of int, optional
            Only these rows: one stream of a batch restarts while the others continue.
        """
        if self._own is not None:  # a stateless model carries nothing to reset, as in Keras
            self._own.reset(samples)

    def get_states(self) -> Dict[str, List[np.ndarray]]:
        """The carried states.

        Returns
        -------
        dict
            ``{layer_name: [h, c]}`` (LSTM, ConvLSTM) or ``{layer_name: [h]}`` (GRU, SimpleRNN)
            copies for each stateful recurrent layer, float32 arrays of shape
            ``(batch_size, units)``, or a ConvLSTM's ``(batch_size, *spatial, filters)``
            (``(batch_size, filters, *spatial)`` with channels_first), as Keras holds them.
        """
        return {} if self._own is None else self._own.as_dict()  # under the state's lock

    def set_states(self, values: Dict[str, Sequence]) -> None:
        """Set carried states.

        Parameters
        ----------
        values : dict
            ``{layer_name: [h, c]}`` as :meth:`get_states` returns; layers not named keep their
            state. Every shape is checked, as :meth:`get_states` gives it, before any is
            written.
        """
        with self._state_lock():
            states.set_states(self._own or _NO_STATE, values, self._state_classes())

    def _signature(self, layers) -> tuple:
        names = states.state_names(self.graph.recurrent_paths())
        return states.signature((names[l], l) for l in layers)

    def _state_classes(self) -> Dict[str, str]:
        names = states.state_names(self.graph.recurrent_paths())
        return {names[l]: l.keras_class for l in self._stateful_layers()}

    def save_states(self, path) -> None:
        """Write the carried states to an HDF5 file at ``path`` (Keras's ``model.save`` drops
        them)."""
        with self._state_lock():
            states.save_states(self._own or _NO_STATE, path, self.name)

    def load_states(self, path) -> None:
        """Read states written by :meth:`save_states` (into any instance of the same model)."""
        with self._state_lock():
            states.load_states(self._own or _NO_STATE, path, self._state_classes())

    def new_state(self, batch_size: int) -> "states.State":
        """A zero state handle for independent streams.

        Parameters
        ----------
        batch_size : int
            Streams (rows) the handle holds.

        Returns
        -------
        State
            ``predict(x, state=s)`` and ``generate(x, steps, state=s)`` advance it instead of the
            model's own state, so any number of streams (or a stateless-trained model served step
            by step) share these weights.
        """
        return states.new_state(self._signature(self.recurrent_layers()), batch_size)

    def _check_handle(self, state) -> None:
        if not isinstance(state, states.State):
            raise TypeError(f"state must be a fastlstm.State from model.new_state(), got "
                            f"{type(state).__name__}")
        expected = self._signature(self.recurrent_layers())
        if state._signature != expected:
            raise ValueError(f"{state!r} belongs to another model (its layers "
                             f"{list(state._signature)}, this model's {list(expected)})")

    @property
    def batch_size(self) -> Optional[int]:
        """The batch size a stateful model is fixed to (None for stateless models)."""
        if not self.stateful:
            return None
        sizes = {l.batch_size for l in self.leaf_layers() if l.stateful}
        return sizes.pop() if len(sizes) == 1 else None

    def check_input_values(self, x: np.ndarray) -> None:
        """A nested model's input values, as its own first layers check them."""
        if len(self.input_layers) == 1:
            for layer in self.graph.consumers[self.input_layers[0].name]:
                layer.check_input_values(x)

    # -- pickling ---------------------------------------------------------------------------------
    def __reduce__(self):
        """Pickles as the Keras config, the weights of every layer and the carried states, so a
        model travels to multiprocessing/joblib/Dask/Ray workers; the kernels are rebuilt there."""
        if self.keras_config is None:
            raise TypeError("only models made by fastlstm.load_model/model_from_json pickle")
        weights = [None if l.weights is None else [np.asarray(w) for w in l.weights]
                   for l in self.leaf_layers()]
        return (_rebuild, (self.keras_config, self.ctx.keras_version, self.file_format, weights,
                           self.get_states() if self.stateful else None, self.fuse))

    # -- description ------------------------------------------------------------------------------
    def count_params(self) -> int:
        return int(sum(l.count_params() for l in self.sublayers()))

    def summary_rows(self) -> List[dict]:
        """What :meth:`summary` prints, as data (see fastlstm/summary.py)."""
        return summary_rows(self)

    def summary(self, print_fn=print) -> None:
        """Print the layers, their output shapes and parameter counts, as Keras does."""
        print_fn(summary_text(self))

    def __repr__(self) -> str:
        shapes = ", ".join(shape_text(l.batch_shape) for l in self.input_layers)
        return (f"<fastlstm.Model {self.name!r}: {len(self.sublayers())} layers, inputs {shapes}, "
                f"{self.count_params():,} params{', stateful' if self.stateful else ''}>")


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_NO_LOCK = _NoLock()
# What a model without stateful layers checks state values against: no layer at all.
_NO_STATE = states.State((), _kernels.StateStore(1, ()))

register_container(MODEL_CLASSES, Model)


def _rebuild(keras_config, keras_version, file_format, weights, carried_states, fuse=True):
    model = Model.from_keras_config(keras_config, keras_version, fuse)
    for layer, arrays in zip(model.leaf_layers(), weights):
        if arrays is not None:
            layer.set_weights(arrays)
    if carried_states:
        model.set_states(carried_states)
    model.file_format = file_format
    return model
