"""Names of a package imported when first used (PEP 562), so importing the package stays cheap:
``__getattr__, __dir__ = lazy_exports(__name__, {"Name": "flare.module.path", ...})``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable, Callable]:
    """The module-level ``__getattr__`` and ``__dir__`` of `package`, for names (keys of `exports`)
    that live in other modules (the values); a name, once imported, is kept in the package."""

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__():
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
