"""The provider registry: each module of `pipeline.providers` that defines `SOURCE` and/or
`DESTINATION` is a provider; adding a provider is adding its module, nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from pipeline import providers
from pipeline.providers.base import DestinationProvider, SourceProvider

NOT_PROVIDERS = {"base", "common", "registry"}


@cache
def _registry() -> tuple[dict[str, SourceProvider], dict[str, DestinationProvider]]:
    sources: dict[str, SourceProvider] = {}
    destinations: dict[str, DestinationProvider] = {}
    for module_info in sorted(pkgutil.iter_modules(providers.__path__), key=lambda m: m.name):
        if module_info.name in NOT_PROVIDERS or module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"pipeline.providers.{module_info.name}")
        for source in _as_tuple(getattr(module, "SOURCE", None)):
            sources[source.name] = source
        for destination in _as_tuple(getattr(module, "DESTINATION", None)):
            destinations[destination.name] = destination
    return sources, destinations


def _as_tuple(value: object) -> tuple:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list | tuple) else (value,)


def source_provider(name: str) -> SourceProvider | None:
    return _registry()[0].get(name)


def destination_provider(name: str) -> DestinationProvider | None:
    return _registry()[1].get(name)
