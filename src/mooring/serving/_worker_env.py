"""The environment of ``mooring serve --workers N``'s processes: what the supervisor
(:mod:`mooring.serving._workers`) sets in each worker's environment, and the variables
other programs' conventions read. The metrics (:mod:`mooring.serving._metrics`) read the
multiprocess folder from it without importing the supervisor.

Example:
    >>> MULTIPROC_ENV, WORKER_ENV
    ('PROMETHEUS_MULTIPROC_DIR', 'MOORING_SERVE_WORKER')
"""

from __future__ import annotations

__all__ = ["CONCURRENCY_ENV", "MULTIPROC_ENV", "TF_THREAD_ENV", "WORKER_ENV"]

#: TensorFlow's thread-pool sizes (intra-op, inter-op), read from the environment when
#: its runtime starts (a model's load); unless set, the supervisor's ``tf_thread_env``
#: sizes them.
TF_THREAD_ENV = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
#: prometheus-client's multiprocess folder, read when it is imported.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Set in a worker's environment: ``<index>:<run folder>:<supervisor pid>``.
WORKER_ENV = "MOORING_SERVE_WORKER"
#: The process-count convention of uvicorn and gunicorn; read for ``--workers``'s default.
CONCURRENCY_ENV = "WEB_CONCURRENCY"
