"""``Model.summary``: the layers, their output shapes and parameter counts, as Keras prints
them (keras/src/utils/summary_utils.py print_summary)."""
from __future__ import annotations

from typing import List

from .inputs import shape_text


def summary_rows(model) -> List[dict]:
    """One dict per layer of Keras's ``model.layers`` (InputLayers included for Functional
    models, as Keras lists them) with ``name``, ``class``, ``output_shapes`` (of the layer's
    first call) and ``params``."""
    shown = model.sublayers() if model.keras_class == "Sequential" else list(
        model.layers.values())
    # Op nodes (mask computations) are operations, not layers, in Keras's model.layers.
    shown = [layer for layer in shown if not layer.is_operation]
    return [{"name": layer.name, "class": layer.keras_class,
             "output_shapes": [tuple(s) for s in layer.output_shapes],
             "params": layer.count_params()} for layer in shown]


def summary_text(model) -> str:
    rows = []
    for row in summary_rows(model):
        shapes = row["output_shapes"]
        text = ", ".join(shape_text(s) for s in shapes)
        if len(shapes) > 1:
            text = f"[{text}]"
        rows.append((f"{row['name']} ({row['class']})", text, str(row["params"])))
    headers = ("Layer (type)", "Output Shape", "Param #")
    widths = [max([len(h)] + [len(r[i]) for r in rows]) + 2 for i, h in enumerate(headers)]
    line = "_" * sum(widths)
    out = [f'Model: "{model.name}"', line,
           "".join(h.ljust(w) for h, w in zip(headers, widths)), "=" * sum(widths)]
    out += ["".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    out += ["=" * sum(widths), f"Total params: {model.count_params():,}",
            f"Stateful: {model.stateful}" + (f" (batch size {model.batch_size})"
                                            if model.stateful else ""), line]
    return "\n".join(out)
