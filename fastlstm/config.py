"""Model configs of every Keras version -> one graph description.

Keras writes models in several dialects (see shared KERAS_SPEC.md section 1):
- Sequential: a bare list of layers (Keras 1.2-2.2.0) or ``{"name", "layers"}`` (2.2.4+, Keras 3);
  the input shape is an InputLayer, the first layer's ``batch_input_shape``, or ``build_input_shape``.
- Functional inbound nodes: Keras 1 ``[[[layer, node, tensor], ...]]``, Keras 2
  ``[[[layer, node, tensor, kwargs], ...]]`` where entries after the first of an RNN call are its
  ``initial_state`` (tf_keras layers/rnn/base_rnn.py __call__ folds them into the inputs), and
  Keras 3 ``[{"args": [...], "kwargs": {...}}]`` with ``__keras_tensor__`` dicts.
- ``input_layers``/``output_layers``: a list of triples, or one bare triple (Keras 3).

Where a config's meaning depends on the layer's class (whether a call's extra tensors are its
initial state, which keys hold wrapped layer configs), the readers ask the class itself: the
layer table (``fastlstm.layers.LAYER_CLASSES``) is passed in as ``layer_classes``, since the
layers import this module, and each class answers ``takes_initial_state`` and
``wrapped_config_keys`` (fastlstm/layers/base.py). Model classes and op nodes are kinds of
config, not of layer, and stay named here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Tuple

from .errors import ModelFormatError, UnsupportedConfigError
from .limits import checked_float, checked_int, shown

Ref = Tuple[str, int, int]  # (layer name, node index, tensor index)

# Keras class name -> fastlstm layer class (fastlstm.layers.LAYER_CLASSES).
LayerClasses = Mapping[str, type]

MODEL_CLASSES = ("Sequential", "Functional", "Model")
# Largest dimension of a declared input shape or Reshape target, far above real sequence lengths
# and feature sizes; what products of dimensions allocate is bounded by budget.py.
MAX_DIM = 1 << 24
# Models nested in models (and wrappers around layers): Keras models nest a few levels; the
# readers of a config (Keras 1 conversion, the layer checks, parse_model, Model) recurse once or
# a few times per level, which 64 levels keep far below Python's recursion limit.
MAX_NESTING = 64
# Keras 3 ops that Functional configs record as nodes of their own (keras/src/ops/numpy.py):
# the masks of Masking and Embedding(mask_zero) are saved as not_equal/any nodes whose output
# is passed to the next layers as their `mask` argument.
# Attention's compute_mask passes the query mask on as convert_to_tensor(mask), a node too.
OP_CLASSES = ("NotEqual", "Any", "ConvertToTensor")
# Where _parse_functional puts the options a layer's call nodes recorded (the names its class
# lists in ``call_options``, e.g. Attention's return_attention_scores): they fix what the layer
# computes and how many outputs it has, as its config does.
CALL_OPTIONS_KEY = "fastlstm_call_options"


@dataclass
class NodeSpec:
    inputs: List[Ref]
    initial_state: List[Ref] = field(default_factory=list)
    mask: Optional[Ref] = None      # an explicit mask argument (Keras 3 configs)
    # An op node's positional arguments in order: tensor references and numeric constants.
    op_args: Optional[list] = None
    # What the call recorded besides tensors (config.call_options; "tensor_args": the named
    # tensor arguments passed, in the order of ``inputs``).
    options: dict = field(default_factory=dict)

    def refs(self) -> List[Ref]:
        """Every tensor this node reads."""
        return self.inputs + self.initial_state + ([self.mask] if self.mask else [])


@dataclass
class LayerSpec:
    name: str
    class_name: str
    config: dict          # the layer's own config (for a nested model: its model config)
    nodes: List[NodeSpec]


@dataclass
class GraphSpec:
    name: str
    class_name: str       # "Sequential" or "Functional"
    layers: List[LayerSpec]
    inputs: List[Ref]
    outputs: List[Ref]


def class_fact(layer_classes: LayerClasses, class_name, fact: str, default):
    """What the layer class of ``class_name`` declares as ``fact``; ``default`` for a class
    fastlstm has no layer for (layers.check_supported refuses those by name) or a class name
    that is no string (a hostile config's; _check_layer_dict refuses it where it matters)."""
    cls = layer_classes.get(class_name) if isinstance(class_name, str) else None
    return default if cls is None else getattr(cls, fact, default)


def _declared_name(layer: dict):
    """The name a layer dict gives, Keras 3 (``name`` beside ``config``) or older (inside it)."""
    config = layer.get("config")
    return layer.get("name") or (config.get("name") if isinstance(config, dict) else None)


def _layer_name(layer: dict, position: Optional[int] = None) -> str:
    name = _declared_name(layer)
    if name is None and position is not None and layer.get("class_name") in MODEL_CLASSES:
        # Keras 1.2-2.2.0 saved a nested Sequential as a bare list, without its name.
        return f"{layer['class_name'].lower()}_{position}"
    if not isinstance(name, str) or not name:
        raise ModelFormatError(f"a layer of class {layer.get('class_name')!r} has no name")
    return name


def declared_batch_shape(config: dict, name: str):
    """The (batch, ...) shape a layer config declares, or None when it declares none."""
    for key in ("batch_shape", "batch_input_shape"):
        if config.get(key) is not None:
            return checked_shape(config[key], name, key)
    if config.get("shape") is not None:  # Keras 3 Input(shape=...) configs written by hand
        return checked_shape([config.get("batch_size")], name, "batch_size") + checked_shape(
            config["shape"], name, "shape", allow_empty=True)
    return None


def checked_shape(shape, name: str, key: str, allow_empty: bool = False) -> tuple:
    """A shape entry of layer ``name``'s config: a list of dimensions in [1, MAX_DIM] or None."""
    if not isinstance(shape, (list, tuple)) or not (shape or allow_empty):
        raise ModelFormatError(f"layer {name!r}: input shape {key}={shown(shape)} is not a list")
    return tuple(None if dim is None else checked_int(dim, f"layer {name!r}: {key}[{i}]",
                                                      maximum=MAX_DIM)
                 for i, dim in enumerate(shape))


def _check_layer_dict(layer, where: str) -> dict:
    if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str):
        raise ModelFormatError(f"{where}: expected a layer dict with 'class_name', got "
                               f"{type(layer).__name__}")
    if not isinstance(layer.get("config"), (dict, list)):
        raise ModelFormatError(f"{where}: layer {layer.get('class_name')!r} has no config dict")
    return layer


def check_nesting(model_config, layer_classes: LayerClasses) -> None:
    """Refuse models nested deeper than MAX_NESTING before anything recurses into them; walks
    the config iteratively (a dict from an HDF5 attribute may nest arbitrarily deep)."""
    stack = [(model_config, 0)]
    while stack:
        layer, depth = stack.pop()
        children = _nested_layers(layer, layer_classes)
        if children and depth >= MAX_NESTING:
            raise ModelFormatError(
                f"{_describe(layer)} holds layers nested {depth + 1} levels deep, above "
                f"fastlstm's limit of {MAX_NESTING} (MAX_NESTING) for models inside models and "
                "wrapped layers")
        stack.extend((child, depth + 1) for child in children)


def _nested_layers(layer, layer_classes: LayerClasses) -> list:
    """The layer dicts directly inside a model's or a wrapper's config."""
    if not isinstance(layer, dict):
        return []
    config = layer.get("config")
    if layer.get("class_name") in MODEL_CLASSES:
        inner = config if isinstance(config, list) else (
            config.get("layers") if isinstance(config, dict) else None)
        return inner if isinstance(inner, list) else []
    if not isinstance(config, dict):
        return []
    keys = class_fact(layer_classes, layer.get("class_name"), "wrapped_config_keys", ())
    return [config[k] for k in keys if isinstance(config.get(k), dict)]


def _describe(layer: dict) -> str:
    name = _declared_name(layer)
    if isinstance(name, str):
        return f"layer {name!r} ({layer.get('class_name')})"
    return f"an unnamed {layer.get('class_name')}"  # Keras 1.2-2.2.0 nested Sequentials


def parse_model(model_config: dict, layer_classes: LayerClasses) -> GraphSpec:
    """``{"class_name": ..., "config": ...}`` of a whole model -> GraphSpec."""
    if not isinstance(model_config, dict):
        raise ModelFormatError(f"model config must be a JSON object, got "
                               f"{type(model_config).__name__}")
    class_name = model_config.get("class_name")
    config = model_config.get("config")
    if class_name == "Sequential":
        return _parse_sequential(config, layer_classes)
    if class_name in ("Functional", "Model"):
        return _parse_functional(config, layer_classes)
    raise UnsupportedConfigError(
        f"the file holds a {class_name!r}; fastlstm loads Sequential and Functional models")


def _parse_sequential(config, layer_classes: LayerClasses) -> GraphSpec:
    if isinstance(config, list):            # Keras 1.2 - 2.2.0
        name, layers, build_shape = "sequential", config, None
    elif isinstance(config, dict) and isinstance(config.get("layers"), list):
        name = config.get("name", "sequential")
        layers, build_shape = config["layers"], config.get("build_input_shape")
    else:
        raise ModelFormatError("Sequential config has no list of layers")
    layers = [_check_layer_dict(l, f"Sequential {name!r}") for l in layers]
    if not layers:
        raise ModelFormatError(f"Sequential {name!r} has no layers")

    specs: List[LayerSpec] = []
    if layers[0]["class_name"] == "InputLayer":
        first = layers.pop(0)
        input_spec = LayerSpec(_layer_name(first), "InputLayer", first["config"], [])
    else:
        shape = _first_layer_input_shape(layers[0], layer_classes)
        if shape is None and build_shape is not None:
            shape = checked_shape(build_shape, name, "build_input_shape")
        if shape is None:
            raise ModelFormatError(
                f"Sequential {name!r} declares no input shape (no InputLayer, no "
                "batch_input_shape on its first layer, no build_input_shape): an unbuilt model "
                "has no weights to load")
        input_spec = LayerSpec(f"{name}_input", "InputLayer",
                               {"name": f"{name}_input", "batch_shape": shape}, [])
    specs.append(input_spec)
    prev: Ref = (input_spec.name, 0, 0)
    for position, layer in enumerate(layers):
        lname = _layer_name(layer, position)
        specs.append(LayerSpec(lname, layer["class_name"], layer["config"], [NodeSpec([prev])]))
        prev = (lname, 0, 0)
    _check_unique_names(specs, name)
    return GraphSpec(name, "Sequential", specs, [(input_spec.name, 0, 0)], [prev])


def _first_layer_input_shape(layer: dict, layer_classes: LayerClasses):
    """The batch shape the first layer of a Sequential declares; a nested model (old Keras
    Sequential-in-Sequential files) declares it through its own first layer or input."""
    if layer["class_name"] in MODEL_CLASSES:
        inner = parse_model(layer, layer_classes)
        first = next(l for l in inner.layers if l.name == inner.inputs[0][0])
        return declared_batch_shape(first.config, first.name)
    config = layer["config"] if isinstance(layer["config"], dict) else {}
    return declared_batch_shape(config, _layer_name(layer))


def _check_unique_names(specs: List[LayerSpec], model_name: str) -> None:
    seen = set()
    for s in specs:
        if s.name in seen:
            raise ModelFormatError(f"model {model_name!r} has two layers named {s.name!r}")
        seen.add(s.name)


def _as_ref(entry, where: str) -> Ref:
    """[layer, node, tensor(, kwargs)] or a Keras 3 __keras_tensor__ dict -> Ref."""
    if isinstance(entry, dict):
        if entry.get("class_name") != "__keras_tensor__":
            raise UnsupportedConfigError(f"{where}: unsupported call argument {entry!r}")
        entry = entry.get("config", {}).get("keras_history")
    if (isinstance(entry, (list, tuple)) and len(entry) >= 3 and isinstance(entry[0], str)
            and isinstance(entry[1], int) and isinstance(entry[2], int)):
        return (entry[0], entry[1], entry[2])
    raise ModelFormatError(f"{where}: malformed tensor reference {entry!r}")


def _is_ref(entry) -> bool:
    if isinstance(entry, dict):
        return entry.get("class_name") == "__keras_tensor__"
    return (isinstance(entry, (list, tuple)) and len(entry) >= 3 and isinstance(entry[0], str)
            and isinstance(entry[1], int))


def _flatten_refs(obj, where: str) -> List[Ref]:
    if _is_ref(obj):
        return [_as_ref(obj, where)]
    if isinstance(obj, (list, tuple)):
        out: List[Ref] = []
        for item in obj:
            out.extend(_flatten_refs(item, where))
        return out
    if obj is None:
        return []
    raise UnsupportedConfigError(f"{where}: unsupported call argument {obj!r}")


def _parse_node(node, class_name: str, takes_initial_state: bool, where: str,
                tensor_args: Tuple[str, ...] = ()) -> NodeSpec:
    """One inbound node; ``takes_initial_state`` when the layer's call takes its initial state
    as tensors after the input (recurrent layers and Bidirectional); ``tensor_args``: the names
    of the call's tensor arguments when it takes several (MultiHeadAttention's query, value,
    ...), which a node may pass positionally or by name."""
    if isinstance(node, dict):                                   # Keras 3
        args, kwargs = node.get("args", []), node.get("kwargs", {}) or {}
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ModelFormatError(f"{where}: malformed inbound node {node!r}")
        if class_name in OP_CLASSES:
            return _parse_op_node(args, kwargs, where)
        if tensor_args:
            return _parse_named_tensors(args, kwargs, tensor_args, where)
        inputs = _flatten_refs(args[:1], where) if args else []
        extra = _flatten_refs(args[1:], where)
        state = _flatten_refs(kwargs.get("initial_state"), where)
        mask = _flatten_refs(kwargs.get("mask"), where)
        if extra and takes_initial_state:
            state = extra + state  # positional initial_state
        elif extra:
            inputs += extra
        return NodeSpec(inputs, state, mask[0] if mask else None)
    if not isinstance(node, list) or not node:
        raise ModelFormatError(f"{where}: malformed inbound node {node!r}")
    if tensor_args and len(node) == 1 and isinstance(node[0], (list, tuple)) \
            and len(node[0]) > 3 and isinstance(node[0][3], dict):
        # tf_keras records the first argument as the entry and the others in its kwargs
        # (functional_utils / node.py serialize_keras_tensor: [layer, node, tensor]).
        return _parse_named_tensors([node[0][:3]], node[0][3], tensor_args, where)
    refs, state, mask = [], [], []
    for entry in node:                                           # Keras 1/2
        refs.append(_as_ref(entry, where))
        kwargs = entry[3] if isinstance(entry, (list, tuple)) and len(entry) > 3 else {}
        if isinstance(kwargs, dict) and kwargs.get("initial_state") is not None:
            state = _flatten_refs(kwargs["initial_state"], where)
        if isinstance(kwargs, dict) and kwargs.get("mask") is not None:
            mask = _flatten_refs(kwargs["mask"], where)
    mask_ref = mask[0] if mask else None
    if takes_initial_state and len(refs) > 1:
        return NodeSpec(refs[:1], refs[1:] + state, mask_ref)
    return NodeSpec(refs, state, mask_ref)


def _parse_named_tensors(args, kwargs, tensor_args, where: str) -> NodeSpec:
    """A node of a call with several named tensor arguments: its inputs in ``tensor_args``
    order, those not passed left out; which ones were passed, and how many positionally (the
    order Keras 3 flattens a call's arguments in: graph.Graph._keras3_order), is recorded in
    ``options``."""
    if len(args) > len(tensor_args):
        raise ModelFormatError(f"{where}: {len(args)} positional arguments, the call takes "
                               f"{len(tensor_args)} tensors {list(tensor_args)}")
    explicit = [k for k in ("mask", "query_mask", "value_mask", "key_mask")
                if kwargs.get(k) is not None]
    if explicit:
        raise UnsupportedConfigError(f"{where}: explicit mask arguments {explicit} are not "
                                     "supported (the masks of the layer's inputs are)")
    bound = {}
    for name, arg in zip(tensor_args, args):
        bound[name] = arg
    for name in tensor_args:
        if kwargs.get(name) is not None:
            if name in bound:
                raise ModelFormatError(f"{where}: argument {name!r} given twice")
            bound[name] = kwargs[name]
    inputs, passed = [], []
    for name in tensor_args:
        if bound.get(name) is None:
            continue
        refs = _flatten_refs(bound[name], where)
        if len(refs) != 1:
            raise ModelFormatError(f"{where}: argument {name!r} must be one tensor, got "
                                   f"{shown(bound[name])}")
        inputs.append(refs[0])
        passed.append(name)
    return NodeSpec(inputs, options={"tensor_args": passed, "n_positional": len(args)})


def call_options(node, option_names: Tuple[str, ...], where: str) -> dict:
    """The call options (boolean keyword arguments such as return_attention_scores) a raw
    inbound node records: Keras 3 in its kwargs, Keras 2 in each entry's kwargs."""
    if isinstance(node, dict):
        found = [node.get("kwargs") or {}]
    else:
        found = [e[3] for e in node if isinstance(e, (list, tuple)) and len(e) > 3
                 and isinstance(e[3], dict)]
    options = {}
    for kwargs in found:
        for name in option_names:
            if name in kwargs:
                value = kwargs[name]
                if not isinstance(value, bool):
                    raise ModelFormatError(f"{where}: call argument {name}={shown(value)} is "
                                           "not a boolean")
                if options.setdefault(name, value) != value:
                    raise ModelFormatError(f"{where}: one call gives {name} two values")
    return options


def _parse_op_node(args, kwargs, where: str) -> NodeSpec:
    op_args = []
    for a in args:
        if _is_ref(a):
            op_args.append(_as_ref(a, where))
        elif isinstance(a, (int, float)) and not isinstance(a, bool):
            # Not necessarily finite: Masking(mask_value=nan) saves not_equal(x, NaN).
            op_args.append(checked_float(a, f"{where}: op argument", finite=False))
        else:
            raise UnsupportedConfigError(f"{where}: unsupported op argument {a!r}")
    if kwargs:
        raise UnsupportedConfigError(f"{where}: unsupported op keyword arguments "
                                     f"{sorted(kwargs)}")
    return NodeSpec([a for a in op_args if isinstance(a, tuple)], op_args=op_args)


def _io_refs(value, where: str) -> List[Ref]:
    if _is_ref(value):
        return [_as_ref(value, where)]
    if isinstance(value, list) and value:
        return [_as_ref(v, where) for v in value]
    if isinstance(value, dict):   # Keras 3 may name inputs in a dict
        return [_as_ref(v, where) for v in value.values()]
    raise ModelFormatError(f"{where}: malformed list {value!r}")


def _parse_functional(config, layer_classes: LayerClasses) -> GraphSpec:
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ModelFormatError("Functional model config has no list of layers")
    name = config.get("name", "model")
    specs = []
    for layer in config["layers"]:
        _check_layer_dict(layer, f"model {name!r}")
        lname = _layer_name(layer)
        where = f"model {name!r}, layer {lname!r}"
        nodes_raw = layer.get("inbound_nodes", [])
        if not isinstance(nodes_raw, list):
            raise ModelFormatError(f"{where}: inbound_nodes is not a list")
        takes_initial_state = class_fact(layer_classes, layer["class_name"],
                                         "takes_initial_state", False)
        tensor_args = class_fact(layer_classes, layer["class_name"], "call_tensor_args", ())
        nodes = [_parse_node(n, layer["class_name"], takes_initial_state, where, tensor_args)
                 for n in nodes_raw]
        specs.append(LayerSpec(lname, layer["class_name"],
                               _with_call_options(layer, nodes_raw, nodes, layer_classes, where),
                               nodes))
    _check_unique_names(specs, name)
    inputs = _io_refs(config.get("input_layers"), f"model {name!r} input_layers")
    outputs = _io_refs(config.get("output_layers"), f"model {name!r} output_layers")
    return GraphSpec(name, "Functional", specs, inputs, outputs)


def _with_call_options(layer: dict, nodes_raw, nodes, layer_classes: LayerClasses,
                       where: str):
    """The layer's config, with the call options its nodes recorded under CALL_OPTIONS_KEY
    when its class reads some; every call of a shared layer must record the same ones."""
    names = class_fact(layer_classes, layer["class_name"], "call_options", ())
    if not names:
        return layer["config"]
    seen = []
    for raw, node in zip(nodes_raw, nodes):
        if node.mask is not None:
            raise UnsupportedConfigError(f"{where}: an explicit mask argument is not supported "
                                         "(the masks of the layer's inputs are)")
        # How a call passed its tensors (positionally or by name) decides only Keras 3's run
        # order, not what the layer computes.
        options = dict(call_options(raw, names, where),
                       **{k: v for k, v in node.options.items() if k != "n_positional"})
        if options not in seen:
            seen.append(options)
    if len(seen) > 1:
        raise UnsupportedConfigError(f"{where}: the layer is called with different call "
                                     f"arguments {seen}; fastlstm runs a layer's calls alike")
    return dict(layer["config"], **{CALL_OPTIONS_KEY: seen[0] if seen else {}})


def node_offsets(graph: GraphSpec) -> dict:
    """Index of each layer's first listed inbound node in the references.

    Keras numbers a layer's nodes over its whole life but saves only those inside the model: a
    nested Functional model built on its own Input keeps node 0 for that inner connection, so its
    saved nodes are referenced from 1 (tf_keras functional.py ``_should_skip_first_node``; in
    Keras 3 for Functional but not Sequential). Every saved node feeds something, so the largest
    index referenced is the last saved node, which gives the offset without guessing the rule.
    """
    max_ref = {}
    refs = list(graph.outputs)
    for layer in graph.layers:
        for node in layer.nodes:
            refs.extend(node.refs())
    for lname, node_index, _ in refs:
        max_ref[lname] = max(max_ref.get(lname, -1), node_index)
    offsets = {}
    for layer in graph.layers:
        if layer.class_name == "InputLayer" or not layer.nodes:
            offsets[layer.name] = 0
            continue
        offset = max_ref.get(layer.name, len(layer.nodes) - 1) - (len(layer.nodes) - 1)
        if offset not in (0, 1):
            raise ModelFormatError(
                f"layer {layer.name!r} has {len(layer.nodes)} saved nodes but is referenced at "
                f"node {max_ref[layer.name]}")
        offsets[layer.name] = offset
    return offsets
