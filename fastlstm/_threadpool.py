"""fastlstm's thread count as threadpoolctl sees it: registered as an "openmp" library, so
``threadpool_info()`` lists it and ``threadpool_limits(1, user_api="openmp")`` (what
scikit-learn and friends use to avoid oversubscription) limits fastlstm's kernels too."""
from __future__ import annotations

from threadpoolctl import LibController, register

from . import _runtime
from .version import __version__


class FastlstmController(LibController):
    user_api = "openmp"
    internal_api = "fastlstm"
    filename_prefixes = ("_kernels",)

    def get_num_threads(self):
        return _runtime.get_num_threads()

    def set_num_threads(self, num_threads):
        _runtime.set_num_threads(num_threads)

    def get_version(self):
        return __version__


register(FastlstmController)
