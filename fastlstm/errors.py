"""Exceptions fastlstm raises for bad files and configs. Both are ValueErrors, so callers that
already catch ValueError for bad input keep working."""


class ModelFormatError(ValueError):
    """A file is not a Keras model/weights file fastlstm can read, or its contents disagree."""


class UnsupportedConfigError(ValueError):
    """A model uses a layer, option or activation fastlstm does not implement."""
