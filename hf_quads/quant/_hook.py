"""Register the ``hf_quads`` quantizer with transformers without importing transformers.

``import hf_quads`` imports this module (standard library only). If
``transformers.quantizers.auto`` is already imported, the registration happens
now; otherwise an import hook runs it right after transformers imports that
module, which every model class does before ``from_pretrained`` can read a
``quantization_config``. Either way ``import hf_quads`` stays cheap.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys
from typing import Any

__all__ = ["install"]

logger = logging.getLogger(__name__)
_TARGET = "transformers.quantizers.auto"
_INTEGRATION = "hf_quads.quant.hf_integration"


def _register() -> None:
    module = sys.modules.get(_INTEGRATION)
    if module is not None and not hasattr(module, "register"):
        return  # it is being imported right now and registers itself when done
    try:
        from hf_quads.quant.hf_integration import register

        register()
    except Exception as err:  # never break the import of transformers itself
        logger.warning("hf_quads: could not register its quantizer with transformers: %s", err)


class _Loader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        _uninstall()
        _register()


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self._busy = False

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != _TARGET or self._busy:
            return None
        self._busy = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy = False
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader)
        return spec


_FINDER = _Finder()


def _uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def install() -> None:
    """Register now if transformers' quantizer registry is loaded, else on its import."""
    if _TARGET in sys.modules:
        _register()
    elif _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


install()
