"""Process settings: read from the environment once, by `Settings.from_env()`.

Everything a deployment varies lives here (where the servers are, ports, the config file path);
everything a creator varies (sources, destinations, flows) lives in the TOML config file
(`pipeline.config`). Nothing else in the product reads `os.environ` (ruff's banned-api rule in
`make lint` keeps it so); everything else receives a `Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

# a development checkout's demo config, wired to the sandbox; an installed product has no default
# and names its file in STACKWIRE_CONFIG
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "devtools" / "demo_config.toml"


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    redis_url: str | None = None
    broker_url: str | None = None
    config_path: Path = DEFAULT_CONFIG
    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = 8000
    flower_port: int = 5555
    sandbox_port: int = 8100
    embedded_pg_port: int = 55432
    embedded_redis_port: int = 56379
    sweep_seconds: float = 5.0
    # fault injection for `make chaos`: the share of publishes after commit the receiver skips
    chaos_publish_failure_rate: float = 0.0
    log_level: str = "INFO"
    log_json: bool = True
    # the receiver under gunicorn (receivers/gunicorn_conf.py)
    receiver_workers: int = 2
    receiver_worker_class: str = "gthread"
    receiver_threads: int = 8
    # workers: Celery's pool, and whether they send task events (Flower shows them)
    worker_pool: str = "prefork"
    task_events: bool = True
    flower_address: str = "127.0.0.1"
    # outbound HTTP: the CA bundle and proxies, read once here instead of on every request
    ca_bundle: str | None = None
    proxies: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        data_dir = Path(env.get("STACKWIRE_DATA_DIR", "var"))
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            redis_url=env.get("REDIS_URL") or None,
            broker_url=env.get("BROKER_URL") or None,
            config_path=Path(env.get("STACKWIRE_CONFIG") or DEFAULT_CONFIG),
            data_dir=data_dir,
            host=env.get("STACKWIRE_HOST", "127.0.0.1"),
            port=_int(env, "STACKWIRE_PORT", 8000),
            flower_port=_int(env, "FLOWER_PORT", 5555),
            sandbox_port=_int(env, "SANDBOX_PORT", 8100),
            embedded_pg_port=_int(env, "STACKWIRE_PG_PORT", 55432),
            embedded_redis_port=_int(env, "STACKWIRE_REDIS_PORT", 56379),
            sweep_seconds=float(env.get("STACKWIRE_SWEEP_SECONDS") or 5.0),
            chaos_publish_failure_rate=float(env.get("STACKWIRE_CHAOS_PUBLISH_FAILURE_RATE") or 0),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            log_json=env.get("STACKWIRE_LOG_FORMAT", "json") == "json",
            receiver_workers=_int(env, "STACKWIRE_RECEIVER_WORKERS", 2),
            receiver_worker_class=env.get("STACKWIRE_RECEIVER_WORKER_CLASS", "gthread"),
            receiver_threads=_int(env, "STACKWIRE_RECEIVER_THREADS", 8),
            worker_pool=env.get("STACKWIRE_WORKER_POOL") or "prefork",
            task_events=env.get("STACKWIRE_TASK_EVENTS", "1") == "1",
            flower_address=env.get("FLOWER_ADDRESS", "127.0.0.1"),
            ca_bundle=env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") or None,
            proxies=_proxies(env),
            env=env,
        )

    def with_servers(self, database_url: str, redis_url: str) -> Settings:
        return replace(self, database_url=database_url, redis_url=redis_url)

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the psycopg 3 driver named, as SQLAlchemy needs it."""
        url = self.require_database_url()
        for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def libpq_url(self) -> str:
        """The database URL as libpq (psycopg.connect) reads it."""
        url = self.require_database_url()
        return url.replace("postgresql+psycopg://", "postgresql://", 1)

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.require_redis_url()

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError("DATABASE_URL is not set and no embedded PostgreSQL was started")
        return self.database_url

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError("REDIS_URL is not set and no embedded Redis was started")
        return self.redis_url


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


def _proxies(env: Mapping[str, str]) -> dict[str, str]:
    """`<scheme>_proxy` variables as requests takes them, the lowercase spelling winning (as in
    urllib's `getproxies_environment`)."""
    found: dict[str, str] = {}
    for name in sorted(env, key=str.islower):  # uppercase first, so lowercase overrides
        if name.lower().endswith("_proxy") and env[name]:
            found[name[: -len("_proxy")].lower()] = env[name]
    return found
