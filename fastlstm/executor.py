"""The executor binding: a model's graph on the C stack executor (src/stack.c).

Every chain of layers that the stack can run (graph.Graph.chains, split where a layer's
``stack_ops`` declines) becomes one Segment, a compiled _kernels.StackPlan that runs in one
nogil call; the graph walk runs the rest layer by layer, through the same C kernels. When one
segment is the whole model, ``predict`` and ``generate`` call its plan directly. Every layer
left out says why (the graph's chain breaks, a layer's ``stack.decline``), for ``fastlstm info``.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from . import _kernels


class StackBuilder:
    """What a layer's ``stack_ops`` adds its ops through: the plan, and the state slots of
    the model's recurrent layers (own: stateful ones; handle: all)."""

    def __init__(self, plan, own_slots: Dict[object, int], handle_slots: Dict[object, int]):
        self.plan = plan
        self.own_slots = own_slots
        self.handle_slots = handle_slots
        self.declined: Optional[str] = None

    def decline(self, reason: str) -> bool:
        """What a layer's ``stack_ops`` returns when it is no stack op: False, with the reason
        in plain words ("axis=1 is not the last axis, run by numpy")."""
        self.declined = reason
        return False

    def add_rnn(self, layer) -> None:
        self.plan.add_rnn(layer.kernel, layer.return_sequences, layer.go_backwards,
                          self.own_slots.get(layer, -1), self.handle_slots[layer])

    def add_dense(self, kernel, bias, activation) -> None:
        """activation: an activations.CActivation."""
        self.plan.add_dense(kernel, bias, activation)

    def add_activation(self, activation) -> None:
        """activation: an activations.CActivation (element-wise, or row-wise on the last
        axis)."""
        self.plan.add_activation(activation)


class Segment:
    """A fused chain: its plan, the graph nodes it replaces and the tensor it produces."""

    __slots__ = ("plan", "keys", "output")

    def __init__(self, plan, keys: list):
        self.plan = plan
        self.keys = list(keys)
        self.output = (keys[-1][0], keys[-1][1], 0)

    def run(self, x, n_threads: int, states=None):
        """states: the call's states.Binding (its lock held by the caller), or None."""
        x = _kernels.as_float32(x)
        if states is None:
            return self.plan.run(x, n_threads)
        return self.plan.run(x, n_threads, states.store, states.handle)


class Executor:
    """How one model runs. fuse=False calls every layer on its own (the reference the tests
    compare fused chains with); fused is then None."""

    def __init__(self, model, fuse: bool):
        self.fused: Optional[dict] = None
        self.whole = None  # the StackPlan of a model that is one segment
        # (layer name, its class, why it runs as its own call) of every node left out of the
        # fused chains, nested models' layers named "outer/inner".
        self.not_fused: List[Tuple[str, str, str]] = []
        if not fuse:
            return
        self.fused = {}
        own, handle = model.state_slots(handle=False), model.state_slots(handle=True)
        fixed_batch = model.batch_size if model.stateful else None
        _fuse_graph(model.graph, own, handle, fixed_batch, self.fused, self.not_fused, top=True,
                    prefix="")
        graph = model.graph
        segments = self.fused[graph]
        if (len(graph.inputs) == 1 and len(graph.outputs) == 1 and len(segments) == 1):
            (segment,) = segments.values()
            first = graph.nodes[segment.keys[0]].inputs[0]
            if (segment.keys == graph.order and first == tuple(graph.inputs[0])
                    and segment.output == tuple(graph.outputs[0])):
                self.whole = segment.plan


    def describe(self) -> str:
        """What a call runs, for ``fastlstm info``."""
        if self.whole is not None:
            return "one C call for the whole stack (fused chain)"
        if self.fused is None:
            return "every layer as its own call (fuse=False)"
        segments = [s for table in self.fused.values() for s in table.values()]
        fused = sum(len(s.keys) for s in segments)
        head = (f"{len(segments)} fused chain(s) of {fused} layer(s) as single C calls, the "
                "other layers one call each:")
        return "\n".join([head] + [f"  {name!r} ({cls}): {reason}"
                                   for name, cls, reason in self.not_fused])


def _fuse_graph(graph, own, handle, fixed_batch, fused: dict, not_fused: list, top: bool,
                prefix: str) -> None:
    segments = {}
    reasons = graph.chain_breaks()
    for chain in graph.chains():
        for segment in _segments(graph, chain, own, handle, fixed_batch if top else None, top,
                                 reasons):
            segments[segment.keys[0]] = segment
    fused[graph] = segments
    in_segments = {key for segment in segments.values() for key in segment.keys}
    for key in graph.order:
        if key not in in_segments:
            layer = graph.layers[key[0]]
            reason = (reasons.get(key, "runs as its own call") if not layer.nested_graphs()
                      else "a nested model, run as its own call (its chains are fused inside)")
            not_fused.append((prefix + key[0], layer.keras_class, reason))
    for key in graph.order:
        for inner in graph.layers[key[0]].nested_graphs():
            if inner not in fused:  # a nested model called at several nodes: one table
                _fuse_graph(inner, own, handle, fixed_batch, fused, not_fused, top=False,
                            prefix=f"{prefix}{key[0]}/")


def _segments(graph, chain, own, handle, fixed_batch, top: bool,
              reasons: Dict[tuple, str]) -> List[Segment]:
    """The chain cut into runs of layers the stack takes, each starting on a 3-D input; the
    reason of each layer left out goes into ``reasons``."""
    found, plan, keys = [], None, []
    for key in chain:
        src = graph.nodes[key].inputs[0]
        if plan is None:
            shape = graph.shapes[src]
            if len(shape) != 3 or shape[2] is None:
                reasons[key] = (f"its input {tuple(shape)} is not a (batch, timesteps, "
                                "features) sequence, which a compiled chain starts on")
                continue
            # Only the model's own input has the timesteps and batch it declares (checked by
            # inputs.standardize_inputs), and predict's fast path relies on the plan to check
            # them. Inside the graph, and in a nested model (called on whatever its callers
            # feed, e.g. a shared encoder on inputs of two lengths), shapes are what flows.
            at_input = top and src in [tuple(r) for r in graph.inputs]
            plan = _kernels.StackPlan(shape[2], shape[1] if at_input else None,
                                      fixed_batch if at_input else None)
        builder = StackBuilder(plan, own, handle)
        if graph.layers[key[0]].stack_ops(builder):
            keys.append(key)
            continue
        reasons[key] = builder.declined or "not a compiled stack op"
        if keys:
            found.append(Segment(plan, keys))
        plan, keys = None, []
    if keys:
        found.append(Segment(plan, keys))
    return found
