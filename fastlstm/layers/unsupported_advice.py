"""What a user can do instead of a layer fastlstm cannot build, for the unsupported-layer message
(layers.check_supported): a concrete alternative for the Keras classes that have one, the
custom-layer advice for classes the config marks as user code, and a generic one otherwise."""
from __future__ import annotations

from typing import Dict, Iterable, List

LAMBDA = ("rewrite the Lambda as built-in layers (Reshape, Permute, RepeatVector, Activation, "
          "Add/Subtract/Multiply, Concatenate, Rescaling for x * scale + offset, "
          "Normalization) and re-save the model")

# Keras classes -> the supported layers (or the step outside the model) that do the same.
ALTERNATIVES: Dict[str, str] = {
    "Lambda": LAMBDA, "TFOpLambda": LAMBDA, "SlicingOpLambda": LAMBDA,
    "RNN": "use the LSTM, GRU or SimpleRNN layer instead of RNN(cell)",
    "StackedRNNCells": "stack LSTM/GRU/SimpleRNN layers (return_sequences=True on all but "
                       "the last) instead of StackedRNNCells",
    "TextVectorization": "run the text preprocessing outside the model (Keras or tf.data) and "
                         "give fastlstm the token ids, with a model that starts at Embedding",
    "StringLookup": "look the strings up outside the model and give fastlstm the indices",
    "IntegerLookup": "look the integers up outside the model and give fastlstm the indices",
    "Hashing": "hash outside the model and give fastlstm the bin indices",
    "CategoryEncoding": "encode outside the model, or use Embedding on the indices",
    "Discretization": "bin the values outside the model and give fastlstm the bin indices",
}
# Augmentation layers: the identity at inference (they only act when training=True), so an
# inference model can leave them out.
for _name in ("RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom",
              "RandomContrast", "RandomBrightness"):
    ALTERNATIVES[_name] = ("it only acts while training: build the inference model without it "
                           "(same weights) and save that")

CUSTOM = ("a custom layer: its code is not in the file; rewrite it with built-in layers and "
          "re-save, or serve this model with Keras")
GENERIC = ("re-save the model without it (an inference model that leaves out training-only "
           "layers and moves preprocessing outside), or replace it by supported layers")


def is_custom(layer: dict) -> bool:
    """A layer entry the config marks as user code: Keras 3 records the defining ``module``
    (``keras.layers`` for built-ins) and a ``registered_name`` ``package>Name`` for registered
    custom objects (keras/src/saving/serialization_lib.py serialize_keras_object)."""
    module = layer.get("module")
    registered = layer.get("registered_name")
    if isinstance(module, str) and module and module.split(".")[0] not in ("keras", "tf_keras"):
        return True
    return isinstance(registered, str) and ">" in registered


def advice(classes: Iterable[str], custom: Iterable[str]) -> List[str]:
    """One 'Class: what to do' line per unsupported class (in first-seen order)."""
    custom = set(custom)
    lines, seen = [], set()
    for cls in classes:
        if cls in seen:
            continue
        seen.add(cls)
        base = cls.split("(")[-1].rstrip(")")   # "TimeDistributed(Lambda)" -> "Lambda"
        text = ALTERNATIVES.get(base) or (CUSTOM if base in custom else GENERIC)
        lines.append(f"{cls}: {text}")
    return lines
