"""The receiver's app factory: `gunicorn 'receivers.app:create_app()'`."""

from __future__ import annotations

from flask import Flask

from pipeline.config.load import load_config
from pipeline.config.model import Config
from pipeline.log.ingest import EventWriter
from pipeline.logging import configure_logging
from pipeline.metrics import definitions as metrics
from pipeline.settings import Settings
from receivers import api, health, tracing, webhooks
from receivers import metrics as metrics_view
from receivers.errors import register_error_handlers
from receivers.state import ReceiverState
from tasks.celery_app import create_celery


def create_app(
    settings: Settings | None = None, *, config: Config | None = None, configure_logs: bool = True
) -> Flask:
    settings = settings or Settings.from_env()
    if configure_logs:
        configure_logging(settings, component="receiver")
    config = config or load_config(settings.config_path, settings.env)
    metrics.initialise(config.destinations)
    app = Flask("stackwire")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["stackwire"] = ReceiverState(
        settings=settings,
        config=config,
        celery=create_celery(settings),
        writer=EventWriter(settings.libpq_url),
    )
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(metrics_view.bp)
    register_error_handlers(app)
    tracing.install(app)
    return app
