"""Deployment: ONNX export with int8 / 4-bit quantization and parity checks."""

from .onnx_export import *  # noqa: F403
from .onnx_export import __all__  # noqa: F401
