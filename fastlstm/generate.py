"""Autoregressive generation: each output fed back as the next input, the loop in C.

This is the Keras generation recipe (a Python loop of ``model.predict`` calls, each output
appended as the next one-step input of a stateful model) as one call: for models that compile
to one stack (executor.Executor.whole) the whole loop runs in C without the GIL; other
models run the same protocol through ``predict``.
"""
from __future__ import annotations

import numpy as np

from . import _runtime
from .inputs import shape_text, standardize_inputs


def generate(model, x, steps, state=None) -> np.ndarray:
    """``(batch, steps, features)``: ``y_1`` is the last timestep of ``predict(x)``, and
    ``y_{k+1}`` the model's output when ``y_k`` is the next input.

    - Stateful model (or a ``state`` handle): ``y_k`` is fed as a one-step input on the carried
      state, exactly like a Keras loop of ``predict`` calls; the state stays advanced afterwards
      (by ``x`` and ``y_1 .. y_{steps-1}``).
    - Stateless model: the window slides. ``x``'s timesteps are the window; each step drops the
      oldest one, appends ``y_k`` and runs the window from zero state, as a stateless model
      trained on fixed windows is used for forecasting.

    The model needs one input and one output, the output with as many features per step as the
    input (rank 2 ``(batch, features)`` or rank 3, whose last timestep is taken).
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    if len(model.input_layers) != 1 or len(model.graph.outputs) != 1:
        raise ValueError(f"generate needs a model with one input and one output; model "
                         f"{model.name!r} has {len(model.input_layers)} inputs and "
                         f"{len(model.graph.outputs)} outputs")
    in_shape = model.input_layers[0].batch_shape
    out_shape = model.output_shapes[0]
    if len(in_shape) != 3 or len(out_shape) not in (2, 3) or out_shape[-1] != in_shape[-1]:
        raise ValueError(f"generate feeds each output back as the next input: model "
                         f"{model.name!r} takes {shape_text(in_shape)} and outputs {shape_text(out_shape)}, "
                         f"so the feature sizes must match and the input be 3-D")
    if in_shape[1] is not None and in_shape[1] != 1 and (model.stateful or state is not None):
        raise ValueError(f"model {model.name!r} takes exactly {in_shape[1]} timesteps per call, so "
                         f"outputs cannot be fed back one step at a time")
    if state is not None:
        model._check_handle(state)
    arr = standardize_inputs(model.graph, x)[0]
    n_rows = arr.shape[0]
    if state is not None and n_rows != state.batch_size:
        raise ValueError(f"the state handle holds {state.batch_size} streams; got {n_rows} rows")
    if state is None and model.stateful and n_rows != model.batch_size:
        raise ValueError(f"stateful model {model.name!r} expects batch size {model.batch_size} "
                         f"(fixed by batch_input_shape/batch_shape), got {n_rows} rows")
    slide = state is None and not model.stateful
    plan = model._compiled().whole
    if plan is None:
        return _generate_with_predict(model, arr, steps, state, slide)
    carried = state if state is not None else model._own
    if carried is None:
        return plan.generate(arr, steps, _runtime.get_num_threads(), None, False, slide)
    with carried._store.lock:
        return plan.generate(arr, steps, _runtime.get_num_threads(), carried._store,
                             state is not None, slide)


def _generate_with_predict(model, x, steps, state, slide) -> np.ndarray:
    out = np.zeros((x.shape[0], steps, x.shape[2]), np.float32)
    window = x
    for k in range(steps):
        y = model.predict(window, state=state)
        out[:, k] = y[:, -1] if y.ndim == 3 else y
        if slide:
            window = np.concatenate([window[:, 1:], out[:, k:k + 1]], axis=1)
        else:
            window = out[:, k:k + 1]
    return out
