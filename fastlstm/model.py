"""Model: runs a Sequential or Functional graph of layers, and is itself a layer when nested."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _kernels, _runtime
from .config import OP_CLASSES, GraphSpec, NodeSpec, Ref, node_offsets
from .errors import ModelFormatError
from .io import keras3_weights, legacy_weights
from .layers import build_layer
from .layers.base import Layer, LoadContext, Shape
from .layers.input_layer import InputLayer
from .layers.bidirectional import Bidirectional
from .layers.recurrent import RecurrentLayer
from . import states

NodeKey = Tuple[str, int]


class Model(Layer):
    """A loaded Keras model. Build one with :func:`fastlstm.load_model` or
    :func:`fastlstm.model_from_json`."""

    def __init__(self, graph: GraphSpec, ctx: LoadContext):
        super().__init__({"name": graph.name}, ctx)
        self.keras_class = graph.class_name
        self.graph = graph
        self.layers: Dict[str, Layer] = {}
        for spec in graph.layers:
            layer_dict = {"class_name": spec.class_name, "config": spec.config}
            self.layers[spec.name] = build_layer(layer_dict, ctx)
            self.layers[spec.name].name = spec.name
        offsets = node_offsets(graph)
        self._nodes: Dict[NodeKey, NodeSpec] = {}
        for spec in graph.layers:
            for i, node in enumerate(spec.nodes):
                self._nodes[(spec.name, i + offsets[spec.name])] = node
        for ref in graph.inputs:
            if not isinstance(self.layers.get(ref[0]), InputLayer):
                raise ModelFormatError(f"model {graph.name!r}: input {ref[0]!r} is not an "
                                       "InputLayer")
        self.input_layers: List[InputLayer] = [self.layers[r[0]] for r in graph.inputs]
        self._order = self._topological_order()
        # The layers called directly on each input: they check its values before conversion.
        self._consumers = {l.name: self._input_consumers(l.name) for l in self.input_layers}
        # Keras 3 Functional configs record every mask a layer was called with (as the `mask`
        # argument, computed by op nodes), and only those: Keras 3 passes a mask implicitly
        # only to a layer called on one tensor (keras/src/layers/layer.py __call__, "Populate
        # mask argument(s)"), so an RNN given initial_state runs unmasked. Keras 2 records
        # none and passes them implicitly (tf_keras base_layer.py), as Sequential models do.
        self._explicit_masks = ctx.keras_major >= 3 and graph.class_name == "Functional"
        self.stateful = any(layer.stateful for layer in self._all_layers())
        # Stateful models carry state from call to call; one call at a time keeps it consistent
        # when several threads share the model.
        self._lock = _kernels.StateLock()
        self._plan = None          # compiled StackPlan, False when the model is no plain chain
        self.keras_config = None   # the Keras config it was built from (set by the loaders)
        self.file_format = None    # what it was loaded from, for `fastlstm info`

    # -- graph ------------------------------------------------------------------------------------
    def _topological_order(self) -> List[NodeKey]:
        """Nodes needed for the outputs, each after its inputs (iterative DFS; a cycle in a
        hostile config raises instead of recursing forever)."""
        order, done, active = [], set(), set()
        for out_ref in self.graph.outputs:
            stack = [((out_ref[0], out_ref[1]), False)]
            while stack:
                key, expanded = stack.pop()
                if key in done:
                    continue
                if isinstance(self.layers.get(key[0]), InputLayer):
                    if key[1] != 0:
                        raise ModelFormatError(f"reference to node {key[1]} of InputLayer "
                                               f"{key[0]!r}")
                    done.add(key)
                    continue
                if key not in self._nodes:
                    raise ModelFormatError(f"model {self.name!r} refers to node {key[1]} of "
                                           f"layer {key[0]!r}, which does not exist")
                if expanded:
                    active.discard(key)
                    done.add(key)
                    order.append(key)
                    continue
                if key in active:
                    raise ModelFormatError(f"model {self.name!r} has a cycle through layer "
                                           f"{key[0]!r}")
                active.add(key)
                stack.append((key, True))
                node = self._nodes[key]
                for ref in node.refs():
                    if (ref[0], ref[1]) not in done:
                        stack.append(((ref[0], ref[1]), False))
        return order

    def _all_layers(self):
        for layer in self.layers.values():
            yield layer
            if isinstance(layer, Model):
                yield from layer._all_layers()

    def sublayers(self) -> List[Layer]:
        return [l for l in self.layers.values() if not isinstance(l, InputLayer)]

    # -- shapes -----------------------------------------------------------------------------------
    def build(self, input_shapes: Optional[Sequence[Shape]] = None) -> List[Shape]:
        if input_shapes is None:
            input_shapes = [layer.batch_shape for layer in self.input_layers]
        if len(input_shapes) != len(self.input_layers):
            raise ModelFormatError(f"model {self.name!r} takes {len(self.input_layers)} inputs, "
                                   f"got {len(input_shapes)}")
        shapes: Dict[Ref, Shape] = {}
        for layer, given in zip(self.input_layers, input_shapes):
            declared = layer.batch_shape
            if len(given) != len(declared) or any(
                    g is not None and d is not None and g != d for g, d in zip(given, declared)):
                raise ModelFormatError(f"model {self.name!r}: input {layer.name!r} declares "
                                       f"shape {declared}, is fed {tuple(given)}")
            shapes[(layer.name, 0, 0)] = tuple(g if g is not None else d
                                               for g, d in zip(given, declared))
        for key in self._order:
            layer, node = self.layers[key[0]], self._nodes[key]
            if node.op_args is not None:
                in_shapes = [shapes[a] if isinstance(a, tuple) else () for a in node.op_args]
            else:
                in_shapes = [shapes[r] for r in node.inputs + node.initial_state]
            if layer.built:
                before = layer.weight_shapes()
                out_shapes = layer.compute_output_shapes(in_shapes)
                if layer.weight_shapes() != before:
                    raise ModelFormatError(f"shared layer {layer.name!r} is called on inputs of "
                                           "incompatible shapes")
            else:
                out_shapes = layer.build(in_shapes)
            for i, s in enumerate(out_shapes):
                shapes[(key[0], key[1], i)] = s
        missing = [r for r in self.graph.outputs if r not in shapes]
        if missing:
            raise ModelFormatError(f"model {self.name!r}: outputs {missing} are not produced")
        self.input_shapes = list(input_shapes)
        self.output_shapes = [shapes[r] for r in self.graph.outputs]
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

    def load_legacy_weights(self, layer_weights, source: str, keras1: bool = False) -> None:
        """Weights from a Keras 1/2-style HDF5 group, matched to layers by position and
        converted as Keras 2 converts them (Keras 1 per-gate and CuDNN layouts, see
        io/legacy_weights.py); ``keras1`` when the group records no Keras 2+ version."""
        layers = self.weighted_layers()
        if len(layer_weights) != len(layers):
            raise ModelFormatError(
                f"{source} holds weights for {len(layer_weights)} layers "
                f"({[n for n, _ in layer_weights]}), the model has {len(layers)} layers with "
                f"weights ({[l.name for l in layers]})")
        for layer, (_, arrays) in zip(layers, layer_weights):
            layer.set_weights(
                legacy_weights.preprocess_weights_for_loading(layer, arrays, keras1))

    def load_weights(self, path) -> None:
        """Keras ``model.load_weights``: a Keras 1/2 ``save_weights`` .h5, a Keras 3
        ``.weights.h5``, or the weights inside a full .h5/.keras model file."""
        from .loading import load_weights

        with self._lock:
            load_weights(self, path)
            self._plan = None
            self.__dict__.pop("predict", None)

    def load_keras3_weights(self, group, source: str) -> None:
        """Weights from the Keras 3 object-path layout (see io/keras3_weights.py)."""
        layers = list(self.layers.values())
        if self.keras_class == "Sequential":
            layers = self.sublayers()
        container = keras3_weights.container(group, source)
        paths = keras3_weights.layer_paths([l.keras_class for l in layers])
        for layer, path in zip(layers, paths):
            where = f"{source}/{path}"
            sub = keras3_weights.child(container, path, source)
            if isinstance(layer, Model):
                if layer.weight_shapes():
                    if sub is None:
                        raise ModelFormatError(f"{where}: missing (weights of nested model "
                                               f"{layer.name!r})")
                    layer.load_keras3_weights(sub, where)
                continue
            if layer.weight_shapes():
                layer.load_keras3_group(sub, where)

    # -- running ----------------------------------------------------------------------------------
    def run(self, inputs: List[np.ndarray], n_threads: int, carry=None,
            record: Optional[dict] = None) -> List[np.ndarray]:
        """carry: {recurrent layer: [h, c]} of a state handle, used instead of the layers' state.
        record: filled with {layer name: outputs of its first call} (``fastlstm verify``)."""
        return self.run_masked(inputs, [None] * len(inputs), n_threads, carry, record)[0]

    def run_masked(self, inputs, in_masks, n_threads: int, carry=None,
                   record: Optional[dict] = None):
        """run() that also carries Keras masks from tensor to tensor (Layer.compute_mask):
        returns (outputs, their masks)."""
        values: Dict[Ref, np.ndarray] = {}
        masks: Dict[Ref, Optional[np.ndarray]] = {}
        in_masks = list(in_masks) + [None] * (len(inputs) - len(in_masks))
        for layer, x, m in zip(self.input_layers, inputs, in_masks):
            values[(layer.name, 0, 0)] = x
            masks[(layer.name, 0, 0)] = m
        for key in self._order:
            layer, node = self.layers[key[0]], self._nodes[key]
            states = [values[r] for r in node.initial_state] or None
            if node.op_args is not None:
                ins = [values[a] if isinstance(a, tuple) else a for a in node.op_args]
            else:
                ins = [values[r] for r in node.inputs]
            if self._explicit_masks:
                in_mask = [values[node.mask] if node.mask else None]
            else:
                in_mask = [masks[r] for r in node.inputs]
            kwargs = {}
            if carry is not None and (isinstance(layer, (Model, Bidirectional)) or layer in carry):
                # Models and wrappers find their own recurrent layers' states in the dict.
                kwargs["carry"] = carry if isinstance(layer, (Model, Bidirectional)) else \
                    carry[layer]
            if isinstance(layer, Model):
                outs, out_masks = layer.run_masked(ins, in_mask, n_threads, kwargs.get("carry"))
            else:
                if layer.uses_mask and any(m is not None for m in in_mask):
                    kwargs["mask"] = in_mask[0]
                outs = layer.call(ins, states, n_threads, **kwargs)
                out_masks = layer.compute_mask(ins, in_mask, outs)
            for i, out in enumerate(outs):
                values[(key[0], key[1], i)] = out
                masks[(key[0], key[1], i)] = out_masks[i] if i < len(out_masks) else None
            if record is not None and key[0] not in record:
                record[key[0]] = list(outs)
        return ([values[r] for r in self.graph.outputs], [masks[r] for r in self.graph.outputs])

    def call(self, inputs, initial_state=None, n_threads=1, carry=None):
        return self.run(list(inputs), n_threads, carry)

    # -- state ------------------------------------------------------------------------------------
    def _recurrent_layers(self) -> list:
        """Every recurrent layer, nested ones included, in execution order (the order of a
        compiled stack's recurrent ops)."""
        found = []
        for key in self._order:
            layer = self.layers[key[0]]
            if isinstance(layer, Model):
                inner = layer._recurrent_layers()
            elif isinstance(layer, Bidirectional):
                inner = layer.sublayers()
            else:
                inner = [layer] if isinstance(layer, RecurrentLayer) else []
            found += [l for l in inner if l not in found]
        return found

    def _stateful_layers(self) -> list:
        return [l for l in self._recurrent_layers() if l.stateful]

    def reset_states(self, samples=None) -> None:
        """Zero the carried state of the stateful layers (Keras ``model.reset_states()``).

        Parameters
        ----------
        samples : int or sequence of int, optional
            Only these rows: one stream of a batch restarts while the others continue.
        """
        with self._lock:
            if samples is None:
                # The layers the model runs (a stateful layer no output needs holds no state).
                for layer in self._stateful_layers():
                    layer.reset_states()
            else:
                states.reset_rows(self._stateful_layers(), samples, self.batch_size)

    def get_states(self) -> Dict[str, List[np.ndarray]]:
        """The carried states.

        Returns
        -------
        dict
            ``{layer_name: [h, c]}`` (LSTM) or ``{layer_name: [h]}`` (GRU, SimpleRNN) copies for
            each stateful recurrent layer, float32 arrays of shape
            ``(batch_size, units)``.
        """
        with self._lock:
            return states.get_states(self._stateful_layers())

    def set_states(self, values: Dict[str, Sequence]) -> None:
        """Set carried states.

        Parameters
        ----------
        values : dict
            ``{layer_name: [h, c]}`` as :meth:`get_states` returns; layers not named keep their
            state. Every shape is checked, ``(batch_size, units)``, before any is written.
        """
        with self._lock:
            states.set_states(self._stateful_layers(), values)

    def save_states(self, path) -> None:
        """Write the carried states to an HDF5 file at ``path`` (Keras's ``model.save`` drops
        them)."""
        with self._lock:
            states.save_states(self._stateful_layers(), path, self.name)

    def load_states(self, path) -> None:
        """Read states written by :meth:`save_states` (into any instance of the same model)."""
        with self._lock:
            states.load_states(self._stateful_layers(), path)

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
        return states.new_state(self._recurrent_layers(), batch_size)

    def _check_handle(self, state) -> None:
        if not isinstance(state, states.State):
            raise TypeError(f"state must be a fastlstm.State from model.new_state(), got "
                            f"{type(state).__name__}")
        expected = states.signature(self._recurrent_layers())
        if state._signature != expected:
            raise ValueError(f"{state!r} belongs to another model (its layers "
                             f"{list(state._signature)}, this model's {list(expected)})")

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
        from .generate import generate

        return generate(self, x, steps, state)

    @property
    def batch_size(self) -> Optional[int]:
        """The batch size a stateful model is fixed to (None for stateless models)."""
        if not self.stateful:
            return None
        sizes = {l.batch_size for l in self._all_layers() if l.stateful and
                 not isinstance(l, Model)}
        return sizes.pop() if len(sizes) == 1 else None

    def _standardize_inputs(self, x) -> List[np.ndarray]:
        n_inputs = len(self.input_layers)
        if isinstance(x, dict):
            names = [l.name for l in self.input_layers]
            missing = [n for n in names if n not in x]
            if missing:
                raise ValueError(f"inputs {missing} missing from the dict; expected keys {names}")
            items = [x[n] for n in names]
        elif n_inputs > 1:
            if not isinstance(x, (list, tuple)) or len(x) != n_inputs:
                got = f"a list of {len(x)}" if isinstance(x, (list, tuple)) else type(x).__name__
                raise ValueError(f"model {self.name!r} takes {n_inputs} inputs "
                                 f"{[l.name for l in self.input_layers]}; got {got}")
            items = list(x)
        elif isinstance(x, (list, tuple)) and len(x) == 1 and np.ndim(x[0]) == len(
                self.input_layers[0].batch_shape):
            items = [x[0]]
        else:
            items = [x]
        arrays = []
        for layer, item in zip(self.input_layers, items):
            arrays.append(_as_input_array(item, layer, self._consumers[layer.name]))
        n = {a.shape[0] for a in arrays}
        if len(n) > 1:
            raise ValueError(f"all inputs must have the same batch size; got "
                             f"{[a.shape[0] for a in arrays]}")
        return arrays

    def _input_consumers(self, input_name: str) -> List[Layer]:
        """The layers called directly on this input."""
        ref = (input_name, 0, 0)
        return [self.layers[key[0]] for key in self._order if ref in self._nodes[key].inputs]

    def check_input_values(self, x: np.ndarray) -> None:
        """A nested model's input values, as its own first layers check them."""
        if len(self.input_layers) == 1:
            for layer in self._consumers[self.input_layers[0].name]:
                layer.check_input_values(x)

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
        if self._plan is None:
            self._compile()
        # The compiled fast path, also for callers holding this bound method from before the
        # first call (the instance attribute shadows it only for later lookups).
        fast = self.__dict__.get("predict")
        if fast is not None:
            return fast(x, batch_size, state)
        return self._predict_general(x, batch_size, state)

    def _compiled_plan(self):
        if self._plan is None:
            self._compile()
        return self._plan or None

    def _predict_general(self, x, batch_size: Optional[int] = None, state=None):
        """predict for any model and input (the compiled fast path falls back to this)."""
        if state is not None:
            return self._predict_with_handle(x, batch_size, state)
        arrays = self._standardize_inputs(x)
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
            with self._lock:
                chunks = [self.run([a[i:i + fixed] for a in arrays], n_threads)
                          for i in range(0, n_rows, fixed)]
            outs = [np.concatenate(parts) if len(chunks) > 1 else parts[0]
                    for parts in zip(*chunks)]
        outs = [np.ascontiguousarray(o, dtype=np.float32) for o in outs]
        return outs[0] if len(outs) == 1 else outs

    def _predict_with_handle(self, x, batch_size, state):
        self._check_handle(state)
        arrays = self._standardize_inputs(x)
        n_rows = arrays[0].shape[0]
        if n_rows != state.batch_size or batch_size not in (None, n_rows):
            raise ValueError(f"the state handle holds {state.batch_size} streams; got "
                             f"{n_rows} rows" + ("" if batch_size is None else
                                                 f" with batch_size={batch_size}"))
        n_threads = _runtime.get_num_threads()
        plan = self._compiled_plan()
        with state._lock:
            if plan is not None:
                outs = [plan.run(arrays[0], n_threads, state._arrays)]
            else:
                a = state._arrays
                carry = {l: a[2 * i:2 * i + 2] for i, l in enumerate(self._recurrent_layers())}
                outs = self.run(arrays, n_threads, carry)
        outs = [np.ascontiguousarray(o, dtype=np.float32) for o in outs]
        return outs[0] if len(outs) == 1 else outs

    # -- pickling ---------------------------------------------------------------------------------
    def __reduce__(self):
        """Pickles as the Keras config, the weights of every layer and the carried states, so a
        model travels to multiprocessing/joblib/Dask/Ray workers; the kernels are rebuilt there."""
        if self.keras_config is None:
            raise TypeError("only models made by fastlstm.load_model/model_from_json pickle")
        leaves = [l for l in self._all_layers() if not isinstance(l, Model)]
        weights = [None if l.weights is None else [np.asarray(w) for w in l.weights]
                   for l in leaves]
        return (_rebuild, (self.keras_config, self.ctx.keras_version, self.file_format, weights,
                           self.get_states() if self.stateful else None))

    def __call__(self, x, batch_size: Optional[int] = None, state=None):
        return self.predict(x, batch_size, state)

    def _compile(self):
        from .stack_plan import compile_chain

        plan = compile_chain(self)
        self._plan = plan if plan is not None else False
        if plan is not None:
            # An instance attribute shadows the predict method: streaming calls skip a Python
            # frame (see _kernels.FastPredict).
            self.predict = _kernels.FastPredict(plan, self._lock if self.stateful else None,
                                                self._predict_general)
        return self._plan

    # -- description ------------------------------------------------------------------------------
    def count_params(self) -> int:
        return int(sum(l.count_params() for l in self.sublayers()))

    def summary_rows(self) -> List[dict]:
        """What :meth:`summary` prints, as data: one dict per layer of Keras's ``model.layers``
        (InputLayers included for Functional models, as Keras lists them) with ``name``,
        ``class``, ``output_shapes`` (of the layer's first call) and ``params``."""
        shown = self.sublayers() if self.keras_class == "Sequential" else list(
            self.layers.values())
        # Op nodes (mask computations) are operations, not layers, in Keras's model.layers.
        shown = [layer for layer in shown if layer.keras_class not in OP_CLASSES]
        return [{"name": layer.name, "class": layer.keras_class,
                 "output_shapes": [tuple(s) for s in layer.output_shapes],
                 "params": layer.count_params()} for layer in shown]

    def summary(self, print_fn=print) -> None:
        """Print the layers, their output shapes and parameter counts, as Keras does."""
        rows = []
        for row in self.summary_rows():
            shapes = row["output_shapes"]
            shape_text = ", ".join(_shape_text(s) for s in shapes)
            if len(shapes) > 1:
                shape_text = f"[{shape_text}]"
            rows.append((f"{row['name']} ({row['class']})", shape_text, str(row["params"])))
        widths = [max([len(h)] + [len(r[i]) for r in rows]) + 2
                  for i, h in enumerate(("Layer (type)", "Output Shape", "Param #"))]
        line = "_" * sum(widths)
        out = [f'Model: "{self.name}"', line,
               "".join(h.ljust(w) for h, w in zip(("Layer (type)", "Output Shape", "Param #"),
                                                  widths)),
               "=" * sum(widths)]
        for r in rows:
            out.append("".join(c.ljust(w) for c, w in zip(r, widths)))
        out += ["=" * sum(widths), f"Total params: {self.count_params():,}",
                f"Stateful: {self.stateful}" + (f" (batch size {self.batch_size})"
                                                if self.stateful else ""), line]
        print_fn("\n".join(out))

    def __repr__(self) -> str:
        shapes = ", ".join(_shape_text(l.batch_shape) for l in self.input_layers)
        return (f"<fastlstm.Model {self.name!r}: {len(self.sublayers())} layers, inputs {shapes}, "
                f"{self.count_params():,} params{', stateful' if self.stateful else ''}>")


def _shape_text(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def _as_input_array(item, layer: InputLayer, consumers=()) -> np.ndarray:
    """The input as C-contiguous float32, after its shape and, in the dtype the caller gave,
    its values are checked by the layers that take it (consumers)."""
    declared = layer.batch_shape
    try:
        arr = np.asarray(item)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"input {layer.name!r}: could not make an array of shape "
                         f"{_shape_text(declared)} from the data ({e})") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"input {layer.name!r} must be numeric with shape "
                        f"{_shape_text(declared)}; got dtype {arr.dtype}")
    if arr.ndim != len(declared):
        raise ValueError(f"input {layer.name!r} expects {len(declared)}-D data of shape "
                         f"{_shape_text(declared)}; got shape {arr.shape}")
    for axis, (d, g) in enumerate(zip(declared[1:], arr.shape[1:]), start=1):
        if d is not None and d != g:
            what = "timesteps" if axis == 1 and len(declared) == 3 else f"axis {axis}"
            raise ValueError(f"input {layer.name!r} expects shape {_shape_text(declared)}; got "
                             f"shape {arr.shape} ({what}: expected {d}, got {g})")
    if arr.ndim == 3 and arr.shape[1] == 0:
        raise ValueError(f"input {layer.name!r} has 0 timesteps; expected at least 1")
    for consumer in consumers:
        consumer.check_input_values(arr)
    return _kernels.as_float32(arr)


def _rebuild(keras_config, keras_version, file_format, weights, carried_states):
    from .loading import build_model

    model = build_model(keras_config, keras_version)
    leaves = [l for l in model._all_layers() if not isinstance(l, Model)]
    for layer, arrays in zip(leaves, weights):
        if arrays is not None:
            layer.set_weights(arrays)
    if carried_states:
        model.set_states(carried_states)
    model.file_format = file_format
    return model
