"""Signature schemes by name: each module here defining `SCHEME` is one, named after the module.

A source provider names the scheme its webhooks use (`SourceProvider.scheme`).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from receivers.schemes.base import Scheme

NOT_SCHEMES = {"base"}


def scheme(name: str) -> Scheme:
    return _schemes()[name]


@cache
def _schemes() -> dict[str, Scheme]:
    found: dict[str, Scheme] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name in NOT_SCHEMES:
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        if hasattr(module, "SCHEME"):
            found[module_info.name] = module.SCHEME
    return found
