"""fastlstm on Dask: ``fastlstm.dask.predict(model, x)`` maps ``model.predict`` over the blocks
of a Dask array split along the batch axis (``dask.array.map_blocks``), so a dataset larger than
one machine is scored by the workers of any Dask cluster; the model travels to them pickled
(config, weights; the kernels are rebuilt there). Needs ``pip install fastlstm[dask]``.

Stateless models only: a stateful model's row *i* continues row *i* of its previous call, a
sequence that must not be cut across workers.

The same block function serves Ray Data (README, "Scaling out")::

    ds.map_batches(fastlstm.dask.PredictBatch, fn_constructor_args=(path,), batch_format="numpy")
"""
from __future__ import annotations

import numpy as np


def _predict_block(block: np.ndarray, model) -> np.ndarray:
    return model.predict(block)


def predict(model, x):
    """``model.predict`` over a Dask array.

    Parameters
    ----------
    model : Model
        A stateless, single-input, single-output model.
    x : dask.array.Array or array_like
        ``(batch, ...)``; rechunked to whole samples, blocks along the batch axis are predicted
        independently on the workers.

    Returns
    -------
    dask.array.Array
        Lazy float32 outputs, chunked like ``x`` along the batch axis.
    """
    import dask.array as da

    if model.stateful:
        raise ValueError(f"model {model.name!r} is stateful: its rows carry state from call to "
                         "call in order, which cannot be split across workers; run it with "
                         "model.predict on one machine (or serve streams with state handles)")
    if len(model.input_layers) != 1 or len(model.graph.outputs) != 1:
        raise ValueError(f"fastlstm.dask.predict takes single-input, single-output models; "
                         f"{model.name!r} has {len(model.input_layers)} inputs and "
                         f"{len(model.graph.outputs)} outputs")
    x = da.asarray(x)
    declared = model.input_layers[0].batch_shape
    if x.ndim != len(declared):
        raise ValueError(f"model {model.name!r} expects {len(declared)}-D data of shape "
                         f"{tuple(declared)}; got a Dask array of shape {x.shape}")
    # Whole samples in every block: rechunk only the non-batch axes to one chunk each.
    x = x.rechunk({axis: -1 for axis in range(1, x.ndim)})
    # The output's per-sample shape, from one zero sample (stateless, so no side effect).
    sample = model.predict(np.zeros((1,) + tuple(x.shape[1:]), np.float32))
    return da.map_blocks(_predict_block, x, model=model, dtype=np.float32,
                         drop_axis=list(range(1, x.ndim)), new_axis=list(range(1, sample.ndim)),
                         chunks=(x.chunks[0],) + tuple((d,) for d in sample.shape[1:]),
                         meta=np.empty((0,) * sample.ndim, np.float32))


class PredictBatch:
    """A Ray Data ``map_batches`` callable: loads the model once per worker actor and predicts
    the ``"x"`` column of each NumPy batch into ``"y"``."""

    def __init__(self, path: str):
        from .loading import load_model

        self.model = load_model(path)
        if self.model.stateful:
            raise ValueError(f"{path!r} is a stateful model; its rows cannot be split across "
                             "workers")

    def __call__(self, batch: dict) -> dict:
        return {**batch, "y": self.model.predict(np.stack(batch["x"]))}
