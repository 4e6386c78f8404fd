"""Prometheus metrics owned by core. Labels are bounded: route templates, methods, statuses, job kinds."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SOCKET_CONNECTIONS = Gauge("aaiti_socket_connections", "Open Socket.IO connections")
SOCKET_REFUSED = Counter("aaiti_socket_refused_total", "Socket.IO connections refused", ["reason"])
JOBS = Counter("aaiti_jobs_total", "Job state transitions", ["kind", "status"])
JOB_DURATION = Histogram(
    "aaiti_job_duration_seconds",
    "Wall time of jobs in the worker pool",
    ["kind"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
AUTH_EVENTS = Counter("aaiti_auth_events_total", "Authentication events", ["event", "outcome"])
