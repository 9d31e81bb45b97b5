"""Gunicorn settings for the receiver, shared by `stackwire up`, docker-compose and the benchmark.

Sync workers: each request is a short burst of CPU and two local round trips (PostgreSQL, Redis),
so one request per process at a time, a few processes per core, is the fastest and simplest fit.
"""

import os

bind = f"{os.environ.get('STACKWIRE_HOST', '127.0.0.1')}:{os.environ.get('STACKWIRE_PORT', '8000')}"
workers = int(os.environ.get("STACKWIRE_RECEIVER_WORKERS", "4"))
worker_class = os.environ.get("STACKWIRE_RECEIVER_WORKER_CLASS", "sync")
threads = int(os.environ.get("STACKWIRE_RECEIVER_THREADS", "1"))
# a request that takes this long is stuck: the worker is replaced
timeout = 30
graceful_timeout = 20
keepalive = 5
backlog = 2048
# no access log on the hot path; the event log is the record of every accepted webhook
accesslog = None
errorlog = "-"
loglevel = "warning"
proc_name = "stackwire-receiver"
