"""Keras MaxPooling2D, AveragePooling2D, MaxPooling3D and AveragePooling3D (keras/src/layers/
pooling/max_pooling2d.py, average_pooling2d.py, max_pooling3d.py, average_pooling3d.py over
base_pooling.py; tf_keras layers/pooling/base_pooling2d.py, base_pooling3d.py): the windowing of
pooling.py over 2 or 3 spatial axes, with pool_size and strides an int or one per axis."""
from __future__ import annotations

from .pooling import _Pooling


class MaxPooling2D(_Pooling):
    keras_class = "MaxPooling2D"
    rank = 2


class AveragePooling2D(_Pooling):
    keras_class = "AveragePooling2D"
    rank = 2
    mode = "average"


class MaxPooling3D(_Pooling):
    keras_class = "MaxPooling3D"
    rank = 3


class AveragePooling3D(_Pooling):
    keras_class = "AveragePooling3D"
    rank = 3
    mode = "average"
