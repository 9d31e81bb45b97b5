"""Gunicorn settings for the sandbox: one process (its state lives in memory), many threads."""

from __future__ import annotations

import os

bind = f"{os.environ.get('SANDBOX_BIND', '127.0.0.1')}:{os.environ.get('SANDBOX_PORT', '8100')}"
workers = 1
worker_class = "gthread"
threads = int(os.environ.get("SANDBOX_THREADS", "32"))
timeout = 300  # a hang fault holds a request on purpose
keepalive = 30
accesslog = None
errorlog = "-"
loglevel = "warning"
proc_name = "stackwire-sandbox"
