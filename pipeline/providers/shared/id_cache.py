"""A destination's provider ids by name (tag name -> tag id), cached for every worker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from pipeline import keys
from pipeline.config.model import DestinationConfig

ID_CACHE_SECONDS = 86_400


@dataclass(frozen=True)
class IdCache:
    """A provider's ids by name (tag name -> tag id) in Redis, shared by every worker. The map
    expires a day after its last addition, and a destination forgets an id the tool no longer
    knows (a 404), so a tag renamed or deleted in the tool is looked up again."""

    client: redis.Redis
    key: str

    @classmethod
    def of(cls, client: redis.Redis, destination: DestinationConfig, kind: str) -> IdCache:
        return cls(client, keys.provider_ids(destination.name, destination.api_base, kind))

    def get(self, name: str) -> str | None:
        found = self.client.hget(self.key, name)
        return found.decode() if isinstance(found, bytes) else found

    def put(self, found: Mapping[str, str]) -> None:
        if found:
            entries: Any = dict(found)  # redis-py types its mapping keys invariantly
            self.client.hset(self.key, mapping=entries)
            self.client.expire(self.key, ID_CACHE_SECONDS)

    def forget(self, name: str) -> None:
        self.client.hdel(self.key, name)
