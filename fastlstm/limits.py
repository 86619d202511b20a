"""Numbers and JSON text from an untrusted model file, validated before fastlstm acts on them.

Python's json module accepts ``NaN``, ``Infinity`` and integers of any size, and decodes
arrays and objects recursively; each helper here turns what a hostile config can put there
into a ModelFormatError that names the layer and key (or the limit), never an OverflowError,
a "cannot convert float NaN to integer" ValueError or a RecursionError.
"""
from __future__ import annotations

import json
from typing import Union

import numpy as np

from .errors import ModelFormatError

# Deepest nesting of arrays and objects accepted in a config's JSON text. Keras configs nest
# about 14 levels (a Functional model in a Functional model, with Keras 3 call arguments) and
# each nested model adds 3 (layer, config, layers), so config.MAX_NESTING (64) nested models
# fit. json.loads recurses once per level and copy.deepcopy (of Bidirectional's wrapped config)
# twice, both well within Python's default recursion limit of 1000 at this depth.
MAX_JSON_DEPTH = 256

_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPENING, _CLOSING = (ord("["), ord("{")), (ord("]"), ord("}"))


def shown(value) -> str:
    """A config value for a message: an integer of thousands of digits is cut short."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def checked_int(value, what: str, minimum: int = 1, maximum: int = 1 << 20) -> int:
    """An integer within [minimum, maximum]; ``what`` names the layer and key ("layer 'lstm':
    units"). Integral floats (4.0) count as integers, as Keras 1 configs wrote some;
    ``float.is_integer`` is False for NaN and infinities, so int() never sees them."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not value.is_integer()):
        raise ModelFormatError(f"{what} must be an integer, got {shown(value)}")
    value = int(value)
    if not minimum <= value <= maximum:
        raise ModelFormatError(f"{what}={shown(value)} is outside the supported range "
                               f"[{minimum}, {maximum}]")
    return value


def checked_float(value, what: str, finite: bool = True, non_negative: bool = False) -> float:
    """A number as a float. JSON integers have no size limit and float() of one beyond 1e308
    raises OverflowError; ``finite`` refuses NaN and infinities (which Python's json reads from
    NaN, Infinity and 1e999) where they would make no sense, such as an epsilon."""
    wanted = ("a non-negative " if non_negative else "a ") + ("finite number" if finite
                                                               else "number")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelFormatError(f"{what} must be {wanted}, got {shown(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise ModelFormatError(f"{what}={shown(value)} is too large for a float") from None
    if (finite and not np.isfinite(number)) or (non_negative and not number >= 0):
        raise ModelFormatError(f"{what} must be {wanted}, got {shown(value)}")
    return number


def parse_json(text: Union[str, bytes, bytearray], where: str):
    """json.loads of untrusted text whose nesting is bounded first (MAX_JSON_DEPTH), so that the
    result does not depend on the interpreter's recursion limit; ``where`` names the source in
    messages ("model_from_json", "'model.keras': config.json")."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode(json.detect_encoding(text))  # as json.loads decodes bytes
        except UnicodeDecodeError as e:
            raise ModelFormatError(f"{where}: not valid JSON text: {e}") from None
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ModelFormatError(f"{where}: the JSON nests {depth} levels deep, above fastlstm's "
                               f"limit of {MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH; Keras "
                               "configs nest a few dozen)")
    try:
        return json.loads(text)
    except ValueError as e:
        raise ModelFormatError(f"{where}: not valid JSON: {e}") from None


def json_depth(text: str) -> int:
    """Deepest nesting of arrays and objects in JSON text, without recursion and in linear time:
    the running count of the brackets outside strings. On every prefix json.loads accepts, its
    strings are the spans between unescaped quotes (a quote after an odd run of backslashes is
    escaped), so the count there is exactly its recursion depth."""
    data = np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8)
    quotes = np.flatnonzero(data == _QUOTE)
    quotes = quotes[~_escaped(data, quotes)]
    opening = (data == _OPENING[0]) | (data == _OPENING[1])
    brackets = np.flatnonzero(opening | (data == _CLOSING[0]) | (data == _CLOSING[1]))
    brackets = brackets[np.searchsorted(quotes, brackets) % 2 == 0]  # even quotes before: outside
    steps = np.where(opening[brackets], 1, -1)
    return int(np.cumsum(steps).max(initial=0))


def _escaped(data: np.ndarray, quotes: np.ndarray) -> np.ndarray:
    """Which of these quote positions follow an odd run of backslashes."""
    slashes = np.flatnonzero(data == _BACKSLASH)
    after_odd_run = np.zeros(data.size + 1, bool)
    if slashes.size:
        breaks = np.flatnonzero(np.diff(slashes) != 1)
        starts = slashes[np.concatenate(([0], breaks + 1))]
        ends = slashes[np.concatenate((breaks, [slashes.size - 1]))] + 1  # just after each run
        after_odd_run[ends[(ends - starts) % 2 == 1]] = True
    return after_odd_run[quotes]
