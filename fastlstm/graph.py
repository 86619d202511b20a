"""The graph of one Sequential or Functional model: its layers, their call nodes in execution
order, the shapes flowing between them, and the walk that runs them with Keras's masks.

The walk is the only graph glue: fused chains (executor.Segment) run as one C stack op, every
other node is its layer's own call (merges, nested models, layers with masks or initial states).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .config import GraphSpec, NodeSpec, Ref, node_offsets
from .errors import ModelFormatError
from .layers.registry import build_layer
from .layers.base import Layer, LoadContext, Shape
from .layers.input_layer import InputLayer

NodeKey = Tuple[str, int]


class Graph:
    def __init__(self, spec: GraphSpec, ctx: LoadContext):
        self.name = spec.name
        self.keras_class = spec.class_name
        self.inputs: List[Ref] = list(spec.inputs)
        self.outputs: List[Ref] = list(spec.outputs)
        self.layers: Dict[str, Layer] = {}
        for layer_spec in spec.layers:
            layer = build_layer({"class_name": layer_spec.class_name,
                                 "config": layer_spec.config}, ctx)
            layer.name = layer_spec.name
            self.layers[layer_spec.name] = layer
        offsets = node_offsets(spec)
        self.nodes: Dict[NodeKey, NodeSpec] = {}
        for layer_spec in spec.layers:
            for i, node in enumerate(layer_spec.nodes):
                self.nodes[(layer_spec.name, i + offsets[layer_spec.name])] = node
        for ref in self.inputs:
            if not isinstance(self.layers.get(ref[0]), InputLayer):
                raise ModelFormatError(f"model {self.name!r}: input {ref[0]!r} is not an "
                                       "InputLayer")
        self.input_layers: List[InputLayer] = [self.layers[r[0]] for r in self.inputs]
        self.order = self._topological_order()
        # The layers called directly on each input: they check its values before conversion.
        self.consumers = {l.name: self._input_consumers(l.name) for l in self.input_layers}
        # Keras 3 Functional configs record every mask a layer was called with (as the `mask`
        # argument, computed by op nodes), and only those: Keras 3 passes a mask implicitly
        # only to a layer called on one tensor (keras/src/layers/layer.py __call__, "Populate
        # mask argument(s)"), so an RNN given initial_state runs unmasked. Keras 2 records
        # none and passes them implicitly (tf_keras base_layer.py), as Sequential models do.
        self.explicit_masks = ctx.keras_major >= 3 and spec.class_name == "Functional"
        # Keras 3 tensors also carry masks at run time that no node records (Layer.__call__
        # _set_mask_metadata: compute_mask of the call's `mask` argument, else of its first
        # input's mask), e.g. through Dropout or Dense after Embedding(mask_zero). Layers that
        # read their inputs' masks themselves (``reads_keras_masks``: MultiHeadAttention's
        # backend.get_keras_mask(query), Attention's filled-in mask list) see those, so the
        # walk tracks them when the graph has such a layer.
        self.carries_masks = self.explicit_masks and any(
            getattr(l, "reads_keras_masks", False) for l in self.layers.values())
        self.order_is_keras3 = self.carries_masks and any(
            getattr(self.layers[key[0]], "clears_keras_masks", False) for key in self.order)
        if self.order_is_keras3:
            # Which reader of a tensor still sees its mask depends on whether it runs before
            # the layer that clears it: run the nodes in Keras 3's own order.
            self.order = self._keras3_order({
                key: node.options["n_positional"] for key, node in self.nodes.items()
                if "n_positional" in node.options})
        self.shapes: Dict[Ref, Shape] = {}

    # -- topology ---------------------------------------------------------------------------------
    def _topological_order(self) -> List[NodeKey]:
        """Nodes needed for the outputs, each after its inputs (iterative DFS; a cycle in a
        hostile config raises instead of recursing forever)."""
        order, done, active = [], set(), set()
        for out_ref in self.outputs:
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
                if key not in self.nodes:
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
                for ref in self.nodes[key].refs():
                    if (ref[0], ref[1]) not in done:
                        stack.append(((ref[0], ref[1]), False))
        return order

    def _keras3_order(self, positional: Optional[Dict[NodeKey, int]] = None) -> List[NodeKey]:
        """The order Keras 3 runs a Functional model's nodes in (keras/src/ops/function.py):
        map_graph gives each node a depth (0 for the outputs' nodes, else one more than the
        deepest node reading it, and no less than an earlier-seen node of the same layer), and
        _run_through_graph runs the depths from the deepest, each depth's nodes in the order
        map_graph first touched them (its ``nodes_depths`` dict) while walking _build_map's
        depth-first post-order (outputs in order, each node's tensors in SymbolicArguments'
        flattened order: positional arguments, then keyword arguments by sorted name) backwards.
        ``positional``: how many named tensor arguments (call_tensor_args) a node passed by
        position (default: all). Called after _topological_order, which refuses cycles and
        dangling references."""
        positional = positional or {}
        parents: Dict[NodeKey, List[NodeKey]] = {}
        for key in self.order:
            parents[key] = [(r[0], r[1]) for r in self._keras3_refs(key, positional.get(key))]
        post_order: List[NodeKey] = []
        finished = set()
        for out_ref in self.outputs:
            stack = [((out_ref[0], out_ref[1]), 0)]
            while stack:
                key, i = stack[-1]
                above = parents.get(key, [])
                if i < len(above):
                    stack[-1] = (key, i + 1)
                    if above[i] not in finished:
                        stack.append((above[i], 0))
                    continue
                stack.pop()
                if key not in finished:
                    finished.add(key)
                    post_order.append(key)
        depths: Dict[NodeKey, int] = {}          # insertion order is Keras's within a depth
        layer_depths: Dict[str, int] = {}
        for key in reversed(post_order):
            depth = max(depths.setdefault(key, 0), layer_depths.get(key[0], 0))
            layer_depths[key[0]] = depths[key] = depth
            for parent in parents.get(key, []):
                depths[parent] = max(depth + 1, depths.get(parent, 0))
        by_depth: Dict[int, List[NodeKey]] = {}
        for key, depth in depths.items():
            if key in self.nodes:                # InputLayers' nodes hold the inputs
                by_depth.setdefault(depth, []).append(key)
        return [key for depth in sorted(by_depth, reverse=True) for key in by_depth[depth]]

    def _keras3_refs(self, key: NodeKey, n_positional: Optional[int]) -> List[Ref]:
        """A node's tensors in Keras's flattened argument order, its first ``n_positional``
        named tensor arguments passed by position (None: all)."""
        node = self.nodes[key]
        names = node.options.get("tensor_args")
        if not names or n_positional is None:
            return node.refs()
        by_name = dict(zip(names, node.inputs))
        by_position = [a for a in self.layers[key[0]].call_tensor_args[:n_positional]
                       if a in by_name]
        return [by_name[a] for a in by_position + sorted(set(names) - set(by_position))]

    def _input_consumers(self, input_name: str) -> List[Layer]:
        ref = (input_name, 0, 0)
        return [self.layers[key[0]] for key in self.order if ref in self.nodes[key].inputs]

    def sublayers(self) -> List[Layer]:
        return [l for l in self.layers.values() if not isinstance(l, InputLayer)]

    def recurrent_layers(self) -> List[Layer]:
        """Every recurrent layer the outputs need, nested ones included, in execution order."""
        return [layer for _, layer in self.recurrent_paths()]

    def recurrent_paths(self, prefix: Tuple[str, ...] = ()) -> list:
        """(path, layer) of every recurrent layer the outputs need, in execution order; a
        path is the names of the nested models down to the layer, then its own."""
        found, seen = [], set()
        for key in self.order:
            layer = self.layers[key[0]]
            inner = layer.nested_graphs()
            items = ([item for g in inner for item in g.recurrent_paths(prefix + (layer.name,))]
                     if inner else [(prefix + (l.name,), l) for l in layer.recurrent_layers()])
            for path, found_layer in items:
                if found_layer not in seen:
                    seen.add(found_layer)
                    found.append((path, found_layer))
        return found

    def chains(self) -> List[List[NodeKey]]:
        """Maximal runs of nodes that each take only the previous node's single output, which
        nothing else reads: what the executor may fuse. Nodes with initial states, explicit
        masks or op arguments never join one, nor does a node whose other outputs (an RNN's
        returned states) someone reads: a fused chain produces only its last output. A shared
        layer may join one at each of its nodes (each plan reads the same weights and, for a
        recurrent layer, advances the same state slot, in the walk's order, as its calls do)."""
        readers = self._readers()
        chains: List[List[NodeKey]] = []
        by_output: Dict[Ref, List[NodeKey]] = {}
        for key in self.order:
            if self._unchainable(key, readers) is not None:
                continue
            src = self.nodes[key].inputs[0]
            chain = by_output.get(src)
            if chain is not None and readers[src] == 1 and (chain[-1][0], chain[-1][1], 0) == src:
                chain.append(key)
            else:
                chain = [key]
                chains.append(chain)
            by_output[(key[0], key[1], 0)] = chain
        return chains

    def chain_breaks(self) -> Dict[NodeKey, str]:
        """The nodes that join no chain (see chains), each with the reason, for ``fastlstm
        info``."""
        readers = self._readers()
        found = {key: self._unchainable(key, readers) for key in self.order}
        return {key: reason for key, reason in found.items() if reason is not None}

    def _readers(self) -> Dict[Ref, int]:
        readers: Dict[Ref, int] = {}
        for key in self.order:
            for ref in self.nodes[key].refs():
                readers[ref] = readers.get(ref, 0) + 1
        for ref in self.outputs:
            readers[ref] = readers.get(ref, 0) + 1
        return readers

    def _unchainable(self, key: NodeKey, readers: Dict[Ref, int]) -> Optional[str]:
        """Why this node cannot join a chain, or None when it can."""
        node = self.nodes[key]
        if len(node.inputs) != 1:
            return f"takes {len(node.inputs)} inputs"
        if node.initial_state:
            return "is called with an initial state"
        if node.mask is not None:
            return "is called with an explicit mask"
        if node.op_args is not None:
            return "is an operation called with arguments"
        n_outputs = len(self.layers[key[0]].output_shapes)
        if any(readers.get((key[0], key[1], i), 0) for i in range(1, n_outputs)):
            return "its other outputs (returned states) are read"
        return None

    # -- shapes -----------------------------------------------------------------------------------
    def build(self, input_shapes: Sequence[Shape]) -> List[Shape]:
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
        for key in self.order:
            layer, node = self.layers[key[0]], self.nodes[key]
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
        missing = [r for r in self.outputs if r not in shapes]
        if missing:
            raise ModelFormatError(f"model {self.name!r}: outputs {missing} are not produced")
        self.shapes = shapes
        return [shapes[r] for r in self.outputs]

    # -- running ----------------------------------------------------------------------------------
    def run(self, inputs, in_masks, n_threads: int, states=None, fused=None,
            record: Optional[dict] = None):
        """The outputs and their Keras masks (Layer.compute_mask) for these inputs.

        states: the state binding (states.Binding) recurrent layers advance, or None.
        fused: {graph: {first node: executor.Segment}} of the executor, or None to call every
        layer on its own. record: filled with {layer name: outputs of its first call}."""
        values: Dict[Ref, np.ndarray] = {}
        masks: Dict[Ref, Optional[np.ndarray]] = {}
        carried: Dict[Ref, Optional[np.ndarray]] = {}   # Keras 3 run-time masks (see __init__)
        in_masks = list(in_masks) + [None] * (len(inputs) - len(in_masks))
        for layer, x, m in zip(self.input_layers, inputs, in_masks):
            values[(layer.name, 0, 0)] = x
            masks[(layer.name, 0, 0)] = m
            carried[(layer.name, 0, 0)] = m
        segments = fused.get(self, {}) if fused is not None else {}
        done = set()
        for key in self.order:
            if key in done:
                continue
            layer, node = self.layers[key[0]], self.nodes[key]
            segment = segments.get(key)
            if (segment is not None and masks[node.inputs[0]] is None
                    and carried.get(node.inputs[0]) is None):
                # The whole chain in one call; its nodes' intermediate outputs nobody reads.
                out = segment.run(values[node.inputs[0]], n_threads, states)
                done.update(segment.keys)
                values[segment.output] = out
                masks[segment.output] = None
                continue
            initial_state = [values[r] for r in node.initial_state] or None
            if node.op_args is not None:
                ins = [values[a] if isinstance(a, tuple) else a for a in node.op_args]
            else:
                ins = [values[r] for r in node.inputs]
            reads_masks = self.carries_masks and getattr(layer, "reads_keras_masks", False)
            if reads_masks:
                in_mask = [carried.get(r) for r in node.inputs]
            elif self.explicit_masks:
                in_mask = [values[node.mask] if node.mask else None]
            else:
                in_mask = [masks[r] for r in node.inputs]
            outs, out_masks = layer.run_node(ins, initial_state, in_mask, n_threads, states,
                                             fused)
            if self.carries_masks:
                run_time = (out_masks if reads_masks else
                            self._carried_masks(layer, node, ins, outs, out_masks, carried))
                if getattr(layer, "clears_keras_masks", False):
                    # Keras 3 MultiHeadAttention.call: backend.set_keras_mask(query, None), and
                    # so for value and key: later readers of those tensors see no mask (the
                    # walk runs in Keras 3's order then, see __init__).
                    carried.update((r, None) for r in node.inputs)
            for i, out in enumerate(outs):
                values[(key[0], key[1], i)] = out
                masks[(key[0], key[1], i)] = out_masks[i] if i < len(out_masks) else None
                if self.carries_masks:
                    carried[(key[0], key[1], i)] = run_time[i] if i < len(run_time) else None
            if record is not None and key[0] not in record:
                record[key[0]] = list(outs)
        return [values[r] for r in self.outputs], [masks[r] for r in self.outputs]

    @staticmethod
    def _carried_masks(layer, node, ins, outs, out_masks, carried):
        """The masks Keras 3 attaches to a node's outputs at run time: those the layer computed
        from its recorded mask argument, else compute_mask of its one input's carried mask
        (ops, merges and nested models: none)."""
        previous = carried.get(node.inputs[0]) if node.inputs else None
        if node.mask is not None or previous is None:
            return out_masks
        if node.op_args is not None or len(node.inputs) != 1 or layer.nested_graphs():
            return [None] * len(outs)
        return layer.compute_mask(ins, [previous], outs)
