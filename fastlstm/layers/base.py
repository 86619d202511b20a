"""What every layer provides to the model that runs it.

A layer is built from its Keras config, then ``build(input_shapes)`` fixes its weight shapes from
the shapes flowing into it (batch and timesteps may be None), then ``set_weights`` receives the
arrays in Keras's order (trainable, then non-trainable), then ``call`` runs it on NumPy arrays.
Shapes are tuples whose first entry is the batch size.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from .. import _kernels
from ..errors import ModelFormatError, UnsupportedConfigError
from ..io import legacy_weights
from ..limits import checked_int

Shape = Tuple[Optional[int], ...]


class LoadContext:
    """Facts about the file being loaded that change layer semantics."""

    def __init__(self, keras_version=(3, 0)):
        self.keras_version = tuple(keras_version)

    @property
    def keras_major(self) -> int:
        return self.keras_version[0]


class Layer:
    """Base class; subclasses set ``keras_class`` and override what they need."""

    weights: Optional[List[np.ndarray]] = None  # the float32 arrays last given to set_weights

    keras_class = "Layer"
    stateful = False
    # Keras masks (a (batch, timesteps) bool array per tensor, from Embedding(mask_zero) or
    # Masking): a layer that supports masking passes its input's mask on; one that does not
    # drops it, as Keras 3 does (keras/src/layers/layer.py warns "will therefore destroy the
    # mask information"; Keras 2 refused to build such models, so their files never have one).
    supports_masking = False
    # Layers whose call takes the mask (mask=...): recurrent layers, masked pooling.
    uses_mask = False
    # A Keras 3 operation recorded as a node (keras/src/ops), not a layer: Keras's
    # model.layers and summary leave it out.
    is_operation = False
    # Asked of the class by config.py while it reads raw configs, before any layer exists.
    # A call's tensors after the input are its initial state: Keras 2 nodes list them as inputs
    # (tf_keras layers/rnn/base_rnn.py RNN.__call__ and Bidirectional.__call__ fold
    # initial_state into the inputs), Keras 3 nodes may pass them positionally.
    takes_initial_state = False
    # The config keys that hold wrapped layers' {"class_name", "config"} dicts (wrappers).
    wrapped_config_keys: Tuple[str, ...] = ()
    # The Keras 2 legacy interface (keras/legacy/interfaces.py) that renames this class's Keras 1
    # config keys (io/keras1_config.py); None: only the base Layer's input_dtype -> dtype.
    keras1_interface: Optional[tuple] = None

    def __init__(self, config: dict, ctx: LoadContext):
        self.config = config
        self.name = str(config.get("name", self.keras_class.lower()))
        self.ctx = ctx
        self.built = False
        self.input_shapes: List[Shape] = []
        self.output_shapes: List[Shape] = []

    # -- structure --------------------------------------------------------------------------------
    def build(self, input_shapes: Sequence[Shape]) -> List[Shape]:
        """Fix weight shapes for these input shapes and return the output shapes."""
        self.input_shapes = list(input_shapes)
        self.output_shapes = self.compute_output_shapes(self.input_shapes)
        self.built = True
        return self.output_shapes

    def compute_output_shapes(self, input_shapes: List[Shape]) -> List[Shape]:
        return [input_shapes[0]]

    def weight_shapes(self) -> List[Tuple[int, ...]]:
        """Expected weight shapes, Keras order: trainable weights then non-trainable ones."""
        return []

    def n_trainable_weights(self) -> int:
        # A frozen layer (trainable: false, also written into every sublayer of a frozen
        # nested model) lists all its weights as non-trainable, which orders a nested model's
        # weights (tf_keras engine/base_layer.py non_trainable_weights).
        if self.config.get("trainable") is False:
            return 0
        return len(self.weight_shapes())

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        expected = self.weight_shapes()
        if len(weights) != len(expected):
            raise ModelFormatError(
                f"layer {self.name!r} ({self.keras_class}) expects {len(expected)} weight arrays "
                f"with shapes {expected}, the file has {len(weights)} with shapes "
                f"{[tuple(np.shape(w)) for w in weights]}"
            )
        arrays = []
        for i, (w, shape) in enumerate(zip(weights, expected)):
            # Files give h5py datasets, read only now: a hostile file may declare any shape, and
            # nothing is allocated for one that disagrees with the config.
            if not (hasattr(w, "shape") and hasattr(w, "dtype")):
                w = np.asarray(w)
            if tuple(w.shape) != tuple(shape):
                raise ModelFormatError(
                    f"layer {self.name!r} ({self.keras_class}) weight {i} has shape "
                    f"{tuple(w.shape)} in the file, expected {tuple(shape)} from the config"
                )
            # Integer and boolean arrays are cast, as both Keras versions cast what they assign
            # to the variable's float32 (keras/src/backend/common/variables.py assign ->
            # convert_to_tensor(value, dtype=self.dtype); tf_keras backend.batch_set_value ->
            # np.asarray(value, dtype=dtype_numpy(x))).
            if w.dtype.kind not in "biuf":
                raise ModelFormatError(
                    f"layer {self.name!r} weight {i} has dtype {w.dtype}, expected numbers"
                )
            # A copy of the caller's values, as Keras's variable.assign copies: the layer's
            # arrays are its own (aligned for the kernels), and later set_weights calls write
            # into them.
            arrays.append(_kernels.aligned_copy(w[()] if not isinstance(w, np.ndarray) else w))
        self.weights = arrays  # as Keras holds them; pickling rebuilds from these
        self.assign_weights(arrays)

    def assign_weights(self, weights: List[np.ndarray]) -> None:
        """Take validated float32 weights (override in layers that have weights)."""

    def keras3_weights_path(self) -> Tuple[str, ...]:
        """Where this layer's ``vars`` sit below its group in a Keras 3 weights file."""
        return ()

    def load_keras3_group(self, group, where: str) -> None:
        """This layer's weights from its group (None when absent) of a Keras 3 weights file."""
        from ..io import keras3_weights

        self.set_weights(keras3_weights.read_path(group, self.keras3_weights_path(), where,
                                                  self.name))

    def convert_legacy_weights(self, arrays: List, keras1: bool) -> list:
        """This layer's arrays from a Keras 1/2 (legacy) HDF5 weights group, converted as Keras 2
        converts them on loading (io/legacy_weights.py); ``keras1`` for a Keras 1 file. Arrays
        may be unread h5py datasets: those not converted stay so, for set_weights to check.

        A layer without sublayers keeps its arrays. One with sublayers holds theirs as Keras
        orders a layer's weights (tf_keras base_layer.py ``weights``: every sublayer's trainable
        ones, then every sublayer's non-trainable ones), and each sublayer converts its share,
        as Keras converts a nested model (``convert_nested_model``). Layers whose weights Keras
        converts otherwise (Bidirectional, TimeDistributed, the recurrent layers) override this.
        """
        weighted = [layer for layer in self.sublayers() if layer.weight_shapes()]
        if not weighted:
            return list(arrays)
        return legacy_weights.convert_nested_model(weighted, arrays, keras1)

    def count_params(self) -> int:
        return int(sum(int(np.prod(s)) for s in self.weight_shapes()))

    def sublayers(self) -> List["Layer"]:
        return []

    # -- running ----------------------------------------------------------------------------------
    def call(self, inputs: List[np.ndarray], initial_state: Optional[List[np.ndarray]] = None,
             n_threads: int = 1) -> List[np.ndarray]:
        raise NotImplementedError

    def run_node(self, inputs, initial_state, in_masks, n_threads: int, states=None,
                 fused=None):
        """One call of this layer in a graph walk (graph.Graph.run): its outputs and their
        masks. states: the state binding its recurrent layers advance; fused: the executor's
        fused chains (used by nested models)."""
        kwargs = {}
        if self.uses_mask and any(m is not None for m in in_masks):
            kwargs["mask"] = in_masks[0]
        if states is not None and self.recurrent_layers():
            kwargs["states"] = states
        outs = self.call(inputs, initial_state, n_threads, **kwargs)
        return outs, self.compute_mask(inputs, in_masks, outs)

    def check_input_values(self, x: np.ndarray) -> None:
        """Checks a model input this layer is called on, in the dtype the caller passed it (the
        model converts it to float32 afterwards); raises ValueError naming a bad value."""

    def compute_mask(self, inputs: List[np.ndarray], masks: List[Optional[np.ndarray]],
                     outputs: List[np.ndarray]) -> List[Optional[np.ndarray]]:
        """The mask of each output, from the inputs' masks (None: no mask)."""
        first = masks[0] if masks else None
        return [first if self.supports_masking else None for _ in outputs]

    # -- protocols the model asks of its layers ---------------------------------------------
    def recurrent_layers(self) -> List["Layer"]:
        """The recurrent layers this layer runs, in order: each holds one slot of a state
        store (a model's own state or a handle)."""
        return []

    def leaf_layers(self) -> List["Layer"]:
        """The layers that hold weights of their own, as pickling and the budget see them:
        this layer, or a nested model's layers."""
        return [self]

    def tensor_shapes(self) -> List[Shape]:
        """The shape of every tensor one call computes (its outputs; a nested model's every
        layer output), for the allocation budget."""
        return list(self.output_shapes)

    def nested_graphs(self) -> list:
        """The graphs of models nested in this layer (graph.Graph), fused by the executor."""
        return []

    def stack_ops(self, stack) -> bool:
        """Add what this layer computes to a compiled stack (executor.StackBuilder: add_rnn,
        add_dense, add_activation) and return True, or ``return stack.decline(reason)`` (False)
        when it is not a stack op: the graph walk then calls it, and ``fastlstm info`` shows
        the reason."""
        return stack.decline("no compiled stack op for this layer, runs as its own call")

    def __repr__(self) -> str:
        return f"<{self.keras_class} {self.name!r}>"


def single_input(layer: Layer, input_shapes: Sequence[Shape]) -> Shape:
    if len(input_shapes) != 1:
        raise UnsupportedConfigError(
            f"layer {layer.name!r} ({layer.keras_class}) takes one input, got {len(input_shapes)}"
        )
    return input_shapes[0]


def config_int(layer_config: dict, key: str, layer_name: str, minimum: int = 1,
               maximum: int = 1 << 20) -> int:
    """An integer config entry within sane bounds (checked before any allocation)."""
    return checked_int(layer_config.get(key), f"layer {layer_name!r}: {key}", minimum, maximum)
