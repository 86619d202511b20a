"""fastlstm: Keras recurrent models (Keras 2 and 3 files) run from a fused C kernel, without
TensorFlow.

    >>> import fastlstm
    >>> model = fastlstm.load_model("forecaster.h5")
    >>> y = model.predict(x)
"""

from .version import __version__
from ._runtime import build_info, get_num_threads, set_isa, set_kernel_path, set_num_threads
from .errors import ModelFormatError, UnsupportedConfigError
from .loading import load_model, model_from_json
from .model import Model
from .states import State, stack_states

__all__ = [
    "Model", "ModelFormatError", "State", "UnsupportedConfigError", "build_info",
    "get_num_threads", "load_model", "model_from_json", "set_isa", "set_kernel_path",
    "set_num_threads",
    "stack_states", "__version__",
]

try:  # threadpoolctl sees fastlstm's threads when it is installed (fastlstm/_threadpool.py)
    from . import _threadpool  # noqa: F401
except ImportError:
    pass
