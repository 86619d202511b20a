"""Weights, state and input bytes are read from one place, whichever path runs: predict's fast
path (an ndarray into the whole-model stack), its general path (a list, through the graph and
its fused segments), the layer-by-layer run (fuse=False) and generation. Each expected value
is one Keras recorded (tests/fixtures)."""
import numpy as np
import pytest

import keras_fixtures as kf


def _protocol(case_):
    d = kf.data(case_)
    return [(op, [d[k] for k in op.get("inputs", [])], [d[k] for k in op.get("outputs", [])])
            for op in case_["protocol"]]


def _scaled(model, factor):
    return [[w * factor for w in layer.weights] for layer in model.weighted_layers()]


def _set_all(model, weights):
    for layer, arrays in zip(model.weighted_layers(), weights):
        layer.set_weights(arrays)


@pytest.mark.parametrize("flavour", ["keras2", "keras3"])
@pytest.mark.parametrize("name", ["many_to_one", "stacked", "many_to_many_td", "long_chain"])
def test_set_weights_after_a_compiled_call_reaches_every_path(flavour, name):
    """After a compiled call, other weights must reach the compiled path (the same bits as the
    general path and the layer-by-layer run), and the file's weights set back must give Keras's
    outputs again."""
    case_ = kf.case(flavour, name)
    model = kf.load(case_, "h5")
    reference = kf.load(case_, "h5", fuse=False)
    (_, xs, expected), *_ = [p for p in _protocol(case_) if p[0]["op"] == "predict"]
    x = xs[0]
    kf.assert_close(model.predict(x), expected[0], "compiled, the file's weights")
    original = _scaled(model, 1.0)
    _set_all(model, _scaled(model, 0.5))
    halved = model.predict(x)
    assert not np.allclose(halved, expected[0]), "the compiled path kept the old weights"
    assert np.array_equal(halved, model.predict([x])), "compiled and general paths differ"
    _set_all(reference, _scaled(reference, 0.5))
    assert np.array_equal(halved, reference.predict(x)), "fused and layer-by-layer runs differ"
    _set_all(model, original)
    kf.assert_close(model.predict(x), expected[0], "compiled, the file's weights set back")
    kf.assert_close(model.predict([x]), expected[0], "general, the file's weights set back")


def test_set_weights_copies_the_callers_arrays():
    """Keras's assign copies: changing the caller's array afterwards changes nothing."""
    k3 = kf.case("keras3", "many_to_one")
    model = kf.load(k3, "keras")
    _, xs, expected = _protocol(k3)[0]
    dense = model.weighted_layers()[-1]
    mine = [w.copy() for w in dense.weights]
    dense.set_weights(mine)
    for w in mine:
        w[...] = 100.0
    kf.assert_close(model.predict(xs[0]), expected[0], "after the caller's arrays changed")


def test_set_weights_on_a_stateful_model_keeps_its_state_and_reaches_generate():
    """set_weights does not touch the carried state (Keras assigns weight variables only), and
    generation after it runs on the weights set."""
    case_ = kf.case("keras3", "stateful_generation_b1")
    model = kf.load(case_, "h5")
    calls = [p for p in _protocol(case_) if p[0]["op"] == "predict"]
    original = _scaled(model, 1.0)
    _set_all(model, _scaled(model, 0.5))
    model.predict(calls[0][1][0])                   # compiled, on other weights
    model.reset_states()
    _set_all(model, original)
    for i, (_, xs, expected) in enumerate(calls[:6]):   # the warm-up calls of the protocol
        kf.assert_close(model.predict(xs[0]), expected[0], f"warm-up call {i}")
    state = model.get_states()
    _set_all(model, original)
    assert all(np.array_equal(a, b) for name in state
               for a, b in zip(state[name], model.get_states()[name]))
    feedback = calls[6:18]
    got = model.generate(feedback[0][1][0], len(feedback))
    want = np.stack([e[0].reshape(1, -1) for _, _, e in feedback], axis=1)
    kf.assert_close(got, want, "generate after set_weights")


# -- bytes of the input --------------------------------------------------------------------------
BYTE_ORDERS = {"big-endian": ">f4", "little-endian": "<f4", "big-endian float64": ">f8"}


@pytest.mark.parametrize("order", list(BYTE_ORDERS))
def test_stateful_protocol_with_any_byte_order_matches_keras(order):
    """The compiled path takes only native, aligned float32 as it is; other byte orders are
    converted, so predictions and the carried state are Keras's."""
    for flavour in ("keras2", "keras3"):
        case_ = kf.case(flavour, "stateful_generation_b2")
        model = kf.load(case_, "h5")
        for i, (op, xs, expected) in enumerate(_protocol(case_)):
            if op["op"] == "reset":
                model.reset_states()
                continue
            got = model.predict(xs[0].astype(BYTE_ORDERS[order]))
            kf.assert_close(got, expected[0], f"{flavour} call {i} ({order})")


def test_unaligned_and_swapped_inputs_on_every_entry_point():
    case_ = kf.case("keras3", "stateful_generation_b2")
    (_, xs, expected), *_ = _protocol(case_)
    x = xs[0]
    raw = np.frombuffer(b"\0" + x.tobytes(), dtype=np.float32, offset=1).reshape(x.shape)
    assert not raw.flags.aligned
    for what, variant in {"swapped": x.astype(">f4"), "unaligned": raw}.items():
        model = kf.load(case_, "h5")
        kf.assert_close(model.predict(variant), expected[0], f"predict, {what}")
        model = kf.load(case_, "h5")
        handle = model.new_state(2)
        kf.assert_close(model.predict(variant, state=handle), expected[0], f"handle, {what}")
        model = kf.load(case_, "h5")
        kf.assert_close(model.generate(variant, 1)[:, 0], expected[0].reshape(2, -1),
                        f"generate, {what}")


def test_set_states_takes_any_byte_order():
    case_ = kf.case("keras3", "stateful_generation_b2")
    calls = [p for p in _protocol(case_) if p[0]["op"] == "predict"]
    model = kf.load(case_, "h5")
    model.predict(calls[0][1][0])
    carried = model.get_states()
    fresh = kf.load(case_, "h5")
    fresh.predict(calls[0][1][0])                   # compiled before the states arrive
    fresh.set_states({name: [a.astype(">f4") for a in arrays]
                      for name, arrays in carried.items()})
    kf.assert_close(fresh.predict(calls[1][1][0]), calls[1][2][0], "after set_states(>f4)")


def test_raw_stack_entry_refuses_what_it_cannot_read():
    """StackPlan.run, the executor's own entry point, refuses other byte orders outright."""
    model = kf.load(kf.case("keras3", "many_to_one"), "keras")
    plan = model._compiled().whole
    x = np.zeros((1, 10, 4), ">f4")
    with pytest.raises(ValueError, match=r"native-byte-order float32 array of rank 3, got >f4"):
        plan.run(x, 1)


def _package_imports():
    """{module: modules of the package it imports, at any depth of its code}."""
    import ast
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    modules = {}
    for folder, _, files in os.walk(os.path.join(root, "fastlstm")):
        for f in files:
            if f.endswith((".py", ".pyx")):
                rel = os.path.relpath(os.path.join(folder, f), root).rsplit(".", 1)[0]
                name = rel.replace(os.sep, ".").removesuffix(".__init__")
                modules[name] = os.path.join(folder, f)
    graph = {}
    for name, path in modules.items():
        if path.endswith(".pyx"):
            graph[name] = set()
            continue
        package = name.split(".") if path.endswith("__init__.py") else name.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    deps.add(sub if sub in modules else target)
            elif isinstance(node, ast.Import):
                deps |= {alias.name for alias in node.names}
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def test_the_package_has_no_import_cycle():
    """Modules import in one direction (model -> graph -> layers -> registry, loading ->
    model), also inside functions, so no module needs another that is half imported."""
    graph = _package_imports()
    assert "fastlstm.layers.registry" in graph["fastlstm.layers.bidirectional"]
    state = {}

    def visit(name, path):
        state[name] = "active"
        for dep in sorted(graph[name]):
            assert state.get(dep) != "active", " -> ".join(path + [dep])
            if dep not in state:
                visit(dep, path + [dep])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
