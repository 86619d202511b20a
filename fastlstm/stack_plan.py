"""Compile a chain-shaped model (Sequential, or Functional without branches) into one
_kernels.StackPlan, so that predict makes a single call into C for the whole stack."""
from __future__ import annotations

from typing import Optional

from . import _kernels
from .activations import activation_id, activation_name
from .layers.activation import Activation
from .layers.dense import Dense
from .layers.dropout import Dropout
from .layers.recurrent import RecurrentLayer
from .layers.time_distributed import TimeDistributed


def _add_dense(plan, layer: Dense) -> bool:
    if activation_name(layer.activation) == "glu":
        return False
    plan.add_dense(layer.kernel, layer.bias, activation_id(layer.activation, layer.ctx.keras_major))
    return True


def _add_layer(plan, layer) -> bool:
    if isinstance(layer, RecurrentLayer):
        if layer.kernel is None:
            return False
        plan.add_rnn(layer.kernel, layer.return_sequences, layer.go_backwards,
                      layer.h if layer.stateful else None, layer.c if layer.stateful else None)
        return True
    if isinstance(layer, TimeDistributed):
        return _add_layer(plan, layer.inner)
    if isinstance(layer, Dense):
        return _add_dense(plan, layer)
    if isinstance(layer, Activation):
        if activation_name(layer.activation) == "glu":
            return False
        plan.add_activation(activation_id(layer.activation, layer.ctx.keras_major))
        return True
    return isinstance(layer, Dropout)


def compile_chain(model) -> Optional["_kernels.StackPlan"]:
    """A StackPlan for the model, or None when it is not a plain chain of LSTM, GRU, SimpleRNN,
    Dense, TimeDistributed(Dense/Activation/Dropout), Activation and Dropout layers over one 3-D input."""
    if len(model.input_layers) != 1 or len(model.graph.outputs) != 1:
        return None
    shape = model.input_layers[0].batch_shape
    if len(shape) != 3 or shape[2] is None:
        return None
    plan = _kernels.StackPlan(shape[2], shape[1], model.batch_size if model.stateful else None)
    prev = (model.input_layers[0].name, 0, 0)
    seen = set()
    for key in model._order:
        node, layer = model._nodes[key], model.layers[key[0]]
        if node.initial_state or node.mask or node.inputs != [prev] or key[0] in seen:
            return None
        seen.add(key[0])
        if not _add_layer(plan, layer):
            return None
        prev = (key[0], key[1], 0)
    if list(model.graph.outputs) != [prev]:
        return None
    return plan
