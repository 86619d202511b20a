"""The executor binding: a model's graph on the C stack executor (src/stack.c).

Every chain of layers that the stack can run (graph.Graph.chains, split where a layer's
``stack_ops`` declines) becomes one Segment, a compiled _kernels.StackPlan that runs in one
nogil call; the graph walk runs the rest layer by layer, through the same C kernels. When one
segment is the whole model, ``predict`` and ``generate`` call its plan directly.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from . import _kernels


class StackBuilder:
    """What a layer's ``stack_ops`` adds its ops through: the plan, and the state slots of
    the model's recurrent layers (own: stateful ones; handle: all)."""

    def __init__(self, plan, own_slots: Dict[object, int], handle_slots: Dict[object, int]):
        self.plan = plan
        self.own_slots = own_slots
        self.handle_slots = handle_slots

    def add_rnn(self, layer) -> None:
        self.plan.add_rnn(layer.kernel, layer.return_sequences, layer.go_backwards,
                          self.own_slots.get(layer, -1), self.handle_slots[layer])

    def add_dense(self, kernel, bias, activation: int) -> None:
        self.plan.add_dense(kernel, bias, activation)

    def add_activation(self, activation: int) -> None:
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
        if not fuse:
            return
        self.fused = {}
        own, handle = model.state_slots(handle=False), model.state_slots(handle=True)
        fixed_batch = model.batch_size if model.stateful else None
        _fuse_graph(model.graph, own, handle, fixed_batch, self.fused, top=True)
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
        return (f"{len(segments)} fused chain(s) of {fused} layer(s) as single C calls, the "
                "other layers one call each (graph with branches or non-stack layers)")


def _fuse_graph(graph, own, handle, fixed_batch, fused: dict, top: bool) -> None:
    segments = {}
    for chain in graph.chains():
        for segment in _segments(graph, chain, own, handle, fixed_batch if top else None, top):
            segments[segment.keys[0]] = segment
    fused[graph] = segments
    for key in graph.order:
        for inner in graph.layers[key[0]].nested_graphs():
            if inner not in fused:  # a nested model called at several nodes: one table
                _fuse_graph(inner, own, handle, fixed_batch, fused, top=False)


def _segments(graph, chain, own, handle, fixed_batch, top: bool) -> List[Segment]:
    """The chain cut into runs of layers the stack takes, each starting on a 3-D input."""
    found, plan, keys = [], None, []
    for key in chain:
        src = graph.nodes[key].inputs[0]
        if plan is None:
            shape = graph.shapes[src]
            if len(shape) != 3 or shape[2] is None:
                continue
            # Only the model's own input has the timesteps and batch it declares (checked by
            # inputs.standardize_inputs), and predict's fast path relies on the plan to check
            # them. Inside the graph, and in a nested model (called on whatever its callers
            # feed, e.g. a shared encoder on inputs of two lengths), shapes are what flows.
            at_input = top and src in [tuple(r) for r in graph.inputs]
            plan = _kernels.StackPlan(shape[2], shape[1] if at_input else None,
                                      fixed_batch if at_input else None)
        if graph.layers[key[0]].stack_ops(StackBuilder(plan, own, handle)):
            keys.append(key)
            continue
        if keys:
            found.append(Segment(plan, keys))
        plan, keys = None, []
    if keys:
        found.append(Segment(plan, keys))
    return found
