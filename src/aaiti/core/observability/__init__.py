"""Logging, Prometheus metrics, request-id/timing middleware and health checks."""
