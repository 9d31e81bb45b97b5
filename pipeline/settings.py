"""Process settings: read from the environment once, by `Settings.from_env()`.

Everything a deployment varies lives here (where the servers are, ports, the config file path);
everything a creator varies (sources, destinations, flows) lives in the TOML config file
(`pipeline.config`). Nothing else in the product reads `os.environ` (ruff's banned-api rule in
`make lint` keeps it so); everything else receives a `Settings`.

With DATABASE_URL or REDIS_URL unset, a running `stackwire up` stands in for what is missing: its
run file (`pipeline.runfile`) names the servers, the config file and the ports it uses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline import runfile
from pipeline.errors import ServersNotFound
from pipeline.runfile import RunRecord

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
    # below Linux's ephemeral range (32768-60999), where outgoing connections could hold them
    embedded_pg_port: int = 15432
    embedded_redis_port: int = 16379
    sweep_seconds: float = 5.0
    # fault injection for `make chaos`: the share of publishes after commit the receiver skips
    chaos_publish_failure_rate: float = 0.0
    log_level: str = "INFO"
    # "json", "text", or "auto": text on a terminal, JSON otherwise (pipeline.logging decides)
    log_format: str = "auto"
    # the receiver under gunicorn (receivers/gunicorn_conf.py)
    receiver_workers: int = 2
    receiver_worker_class: str = "gthread"
    receiver_threads: int = 8
    # workers: Celery's pool, and whether they send task events (Flower shows them)
    worker_pool: str = "prefork"
    task_events: bool = True
    flower_address: str = "127.0.0.1"
    # "user:password[,user2:password2]": Flower asks for it (its --basic-auth)
    flower_basic_auth: str | None = field(default=None, repr=False)
    # outbound HTTP: the CA bundle and proxies, read once here instead of on every request
    ca_bundle: str | None = None
    proxies: Mapping[str, str] = field(default_factory=dict)
    # keys the e-mail handles operators search by (pipeline/ops/handles.py); unset: a key file
    # made once in the data directory
    hash_key: str | None = field(default=None, repr=False)
    # the admin API's one `admin` token (more, with scopes, in the config's [[admin.tokens]])
    admin_token: str | None = field(default=None, repr=False)
    # a directory every process also writes its JSON log lines to (`stackwire up` sets it), so
    # `stackwire trace` can show an event's lines from this host
    log_dir: Path | None = None
    # Prometheus multiprocess mode (pipeline.metrics): the directory every process of this host
    # writes its metric files to. prometheus_client reads the same variable itself, at import,
    # so it is set in a process's environment before it starts (`stackwire up` sets it)
    metrics_dir: Path | None = None
    # a Celery worker's own /metrics HTTP server, in its main process (docker-compose: one scrape
    # target per worker container); unset: none (under `stackwire up` the receiver serves all)
    metrics_port: int | None = None
    # the live `stackwire up` whose run file filled what the environment left unset
    run: RunRecord | None = field(default=None, compare=False)
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        given = dict(os.environ if environ is None else environ)
        data_dir = Path(given.get("STACKWIRE_DATA_DIR") or "var")
        run = None
        if not (given.get("DATABASE_URL") and given.get("REDIS_URL")):
            run = runfile.read_live(data_dir)
        # what the environment sets wins; a live run stands in for what it leaves unset (the
        # config file's ${SANDBOX_PORT} included)
        recorded = _from_run(run, given)
        env = {**recorded, **{k: v for k, v in given.items() if v != ""}}
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
            embedded_pg_port=_int(env, "STACKWIRE_PG_PORT", 15432),
            embedded_redis_port=_int(env, "STACKWIRE_REDIS_PORT", 16379),
            sweep_seconds=float(env.get("STACKWIRE_SWEEP_SECONDS") or 5.0),
            chaos_publish_failure_rate=float(env.get("STACKWIRE_CHAOS_PUBLISH_FAILURE_RATE") or 0),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            log_format=_choice(env, "STACKWIRE_LOG_FORMAT", ("auto", "json", "text")),
            receiver_workers=_int(env, "STACKWIRE_RECEIVER_WORKERS", 2),
            receiver_worker_class=env.get("STACKWIRE_RECEIVER_WORKER_CLASS", "gthread"),
            receiver_threads=_int(env, "STACKWIRE_RECEIVER_THREADS", 8),
            worker_pool=env.get("STACKWIRE_WORKER_POOL") or "prefork",
            task_events=env.get("STACKWIRE_TASK_EVENTS", "1") == "1",
            flower_address=env.get("FLOWER_ADDRESS", "127.0.0.1"),
            flower_basic_auth=env.get("FLOWER_BASIC_AUTH") or None,
            ca_bundle=env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") or None,
            proxies=_proxies(env),
            hash_key=env.get("STACKWIRE_HASH_KEY") or None,
            admin_token=env.get("STACKWIRE_ADMIN_TOKEN") or None,
            log_dir=Path(env["STACKWIRE_LOG_DIR"]) if env.get("STACKWIRE_LOG_DIR") else None,
            metrics_dir=_path(env, "PROMETHEUS_MULTIPROC_DIR"),
            metrics_port=_int(env, "STACKWIRE_METRICS_PORT", 0) or None,
            run=run,
            env={**recorded, **given},
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
            raise ServersNotFound(self._not_found("DATABASE_URL", "PostgreSQL"))
        return self.database_url

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise ServersNotFound(self._not_found("REDIS_URL", "Redis"))
        return self.redis_url

    def require_servers(self) -> None:
        """Fails with one sentence unless both PostgreSQL and Redis are named."""
        self.require_database_url()
        self.require_redis_url()

    def _not_found(self, variable: str, server: str) -> str:
        if self.run is not None:
            return (
                f"`stackwire up` (pid {self.run.pid}) is still starting its {server}; "
                "try again once it prints ready"
            )
        where = runfile.path_in(self.data_dir)
        return (
            f"{variable} is not set and no `stackwire up` is running here (no live {where}): "
            f"start one with `make run`, or set DATABASE_URL and REDIS_URL"
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name)
    return Path(raw) if raw else None


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    raw = (env.get(name) or allowed[0]).lower()
    if raw not in allowed:
        raise SystemExit(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _from_run(run: RunRecord | None, given: Mapping[str, str]) -> dict[str, str]:
    """What a live `stackwire up` recorded, spelled as the variables it stands in for."""
    if run is None:
        return {}
    recorded = {
        "DATABASE_URL": run.database_url,
        "REDIS_URL": run.redis_url,
        # the run's broker goes with the run's Redis, never with a Redis the environment names
        "BROKER_URL": None if given.get("REDIS_URL") else run.broker_url,
        "STACKWIRE_CONFIG": run.config_path,
        "STACKWIRE_PORT": run.ports.get("receiver"),
        "SANDBOX_PORT": run.ports.get("sandbox"),
        "FLOWER_PORT": run.ports.get("flower"),
    }
    return {name: str(value) for name, value in recorded.items() if value}


def _proxies(env: Mapping[str, str]) -> dict[str, str]:
    """`<scheme>_proxy` variables as requests takes them, the lowercase spelling winning (as in
    urllib's `getproxies_environment`)."""
    found: dict[str, str] = {}
    for name in sorted(env, key=str.islower):  # uppercase first, so lowercase overrides
        if name.lower().endswith("_proxy") and env[name]:
            found[name[: -len("_proxy")].lower()] = env[name]
    return found
