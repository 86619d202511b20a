"""Small chain models built from Keras 3 style configs with random weights, for behaviour tests
whose expected values come from fastlstm's own Keras-verified predict (generate against a loop
of predict calls, state handles against the model's own state). Semantics against Keras itself
are covered by the recorded fixtures."""
import json

import numpy as np

import fastlstm


def _layer(class_name, **config):
    return {"module": "keras.layers", "class_name": class_name, "config": config}


def chain_model(batch_shape, units, n_out, stateful=False, return_sequences=False,
                seed=0, td=False, lstm_layers=1, cell="LSTM", fuse=True, **cell_config):
    """Input(batch_shape) -> cell(units) x lstm_layers -> Dense(n_out) (TimeDistributed when
    td; no Dense when n_out is None), weights uniform(-0.5, 0.5) including biases. cell: LSTM,
    GRU or SimpleRNN, with cell_config added to its config (e.g. reset_after=False). fuse: as
    in fastlstm.model_from_json."""
    layers = [_layer("InputLayer", batch_shape=list(batch_shape), name="input")]
    for i in range(lstm_layers):
        last = i == lstm_layers - 1
        layers.append(_layer(cell, name=f"{cell.lower()}_{i}", units=units, stateful=stateful,
                             return_sequences=return_sequences or not last, **cell_config))
    if n_out is not None:
        dense = _layer("Dense", name="dense", units=n_out, activation="tanh")
        if td:
            dense = _layer("TimeDistributed", name="td", layer=dense)
        layers.append(dense)
    config = {"module": "keras", "class_name": "Sequential",
              "config": {"name": "chain", "layers": layers}}
    model = fastlstm.model_from_json(json.dumps(config), fuse=fuse)
    rng = np.random.default_rng(seed)
    for layer in model.weighted_layers():
        layer.set_weights([rng.uniform(-0.5, 0.5, s).astype(np.float32)
                           for s in layer.weight_shapes()])
    return model


def set_random_weights(model, seed=0):
    """Every weight of every layer (nested models' included) uniform(-0.5, 0.5)."""
    rng = np.random.default_rng(seed)
    for layer in model.leaf_layers():
        if layer.weight_shapes():
            layer.set_weights([rng.uniform(-0.5, 0.5, s).astype(np.float32)
                               for s in layer.weight_shapes()])
    return model
