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
# HTTP metrics are recorded by our own middleware: prometheus-fastapi-instrumentator 8.1 could not resolve route
# templates under FastAPI 0.165's lazily included routers (most requests went unrecorded).
HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests", ["handler", "method", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["handler", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
AUTH_EVENTS = Counter("aaiti_auth_events_total", "Authentication events", ["event", "outcome"])
