"""hubtools: fine-tuning datasets you can trust, from any format to the Hub."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import ConversionError, ErrorCode, HubtoolsError, InputUnusableError, Issue

# eager: ``hubtools.load`` is both this function and a module, and importing the module later
# would make the package's attribute the module (load.py imports datasets only when it builds one)
from .load import LoadResult, load

if TYPE_CHECKING:
    from .publish import CardResult, CardSettings, PushResult, SpaceResult, deploy_space, push, write_cards
    from .records import Kind

#: Imported on first use (PEP 562): a process that only runs check batches (a worker) never
#: imports ``datasets`` and the publishing stack, about a second of start-up each.
_LAZY = {"Kind": "records",
         **{name: "publish" for name in ("CardResult", "CardSettings", "PushResult", "SpaceResult",
                                         "deploy_space", "push", "write_cards")}}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
           "CardResult",
           "CardSettings",
           "ConversionError",
           "ErrorCode",
           "HubtoolsError",
           "InputUnusableError",
           "Issue",
           "Kind",
           "LoadResult",
           "PushResult",
           "SpaceResult",
           "__version__",
           "deploy_space",
           "load",
           "push",
           "write_cards",
]
