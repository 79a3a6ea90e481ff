"""docker-compose.yml is valid for Compose and wires the production shape (DESIGN.md "Running it").

Validated by Compose itself (`docker compose config`, else `docker-compose config`), never by eye.
`make test` installs Debian's docker-compose first (.ci/system-deps); without either tool this fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # PyYAML: locked in uv.lock (swagger-ui-py needs it)

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
APP_SERVICES = ("migrate", "web", "worker", "beat")
SECRET = "compose-test-secret"
REDIS_PASSWORD = "compose-test-redis-password"


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed; run `bash .ci/system-deps`")


def run_config(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # An empty env file and a bare environment: a developer's .env or shell must not change the answer.
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    base = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "DOCKER_CONFIG", "DOCKER_HOST"}}
    command = [
        *compose_command(),
        "--env-file",
        str(empty_env_file),
        "--project-directory",
        str(ROOT),
        "-f",
        str(COMPOSE_FILE),
        "config",
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env={**base, **env}, cwd=ROOT)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    result = run_config(tmp_path_factory.mktemp("compose"), SECRET_KEY=SECRET, REDIS_PASSWORD=REDIS_PASSWORD)
    assert result.returncode == 0, f"compose config failed:\n{result.stdout}\n{result.stderr}"
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict) and isinstance(config.get("services"), dict), result.stdout
    return config


def command_of(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def test_every_service_is_there(rendered: dict[str, Any]) -> None:
    assert {"postgres", "redis", "web", "worker", "beat", "migrate"} <= set(rendered["services"])


def test_app_services_share_one_environment(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    environments = {name: services[name].get("environment") for name in APP_SERVICES}
    web = environments["web"]
    assert isinstance(web, dict), web
    for name, environment in environments.items():
        assert environment == web, f"{name}'s environment differs from web's"
    assert web["DATABASE_URL"].startswith("postgresql+psycopg://"), "SQLAlchemy needs the psycopg 3 driver"
    assert "@postgres:5432/" in web["DATABASE_URL"]
    assert re.fullmatch(rf"redis://:{REDIS_PASSWORD}@redis:6379/\d+", web["REDIS_URL"]), web["REDIS_URL"]
    assert web["SECRET_KEY"] == SECRET
    # Every setting the app reads is passed through, so `.env` configures the containers too.
    from tests.test_settings_documented import config_env_names

    assert config_env_names() <= set(web), sorted(config_env_names() - set(web))


def test_app_services_wait_for_the_migration(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    assert "companion db upgrade" in command_of(services["migrate"])
    assert str(services["migrate"].get("restart", "no")) in {"no", "False", "false"}
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker", "beat"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
        assert depends_on["redis"]["condition"] == "service_healthy", name
        assert services[name]["image"] == services["migrate"]["image"], "one image for every app service"


def test_processes(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    web = command_of(services["web"])
    assert web.startswith("gunicorn") and "companion.wsgi:app" in web
    assert "companion.gunicorn_worker.BalancedThreadWorker" in web and "0.0.0.0:5000" in web
    # Liveness: a dead worker must not take the web tier out of service (/readyz is for monitoring).
    assert "/healthz" in command_of({"command": services["web"]["healthcheck"]["test"]})
    assert any(str(p.get("target", p)).split(":")[-1] == "5000" for p in services["web"]["ports"])
    assert "--config=python:companion.gunicorn_conf" in web, "JSON logs and the metrics folder"
    assert command_of(services["worker"]).startswith("celery -A workers.celery_app --quiet worker")
    assert command_of(services["beat"]).startswith("celery -A workers.celery_app --quiet beat")
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert "--maxmemory-policy noeviction" in command_of(services["redis"])
    assert services["postgres"]["volumes"] and services["redis"]["volumes"], "data must outlive containers"


def test_secret_key_is_required(tmp_path: Path) -> None:
    result = run_config(tmp_path, REDIS_PASSWORD=REDIS_PASSWORD)
    assert result.returncode != 0, "compose must refuse to start without SECRET_KEY"
    assert "SECRET_KEY" in result.stdout + result.stderr


def test_redis_password_is_required_and_used(tmp_path: Path, rendered: dict[str, Any]) -> None:
    result = run_config(tmp_path, SECRET_KEY=SECRET)
    assert result.returncode != 0, "compose must refuse to start without REDIS_PASSWORD"
    assert "REDIS_PASSWORD" in result.stdout + result.stderr
    redis = rendered["services"]["redis"]
    assert redis["environment"]["REDIS_PASSWORD"] == REDIS_PASSWORD
    # The container's shell expands it (Compose prints the escaped `$$`).
    assert re.search(r'--requirepass "\$\$?REDIS_PASSWORD"', command_of(redis)), "the server asks for it"
    assert REDIS_PASSWORD not in command_of(redis), "never the value on the command line"
    assert "REDISCLI_AUTH" in command_of({"command": redis["healthcheck"]["test"]})


def test_every_service_has_a_healthcheck(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
    assert "companion.probe worker" in command_of({"command": services["worker"]["healthcheck"]["test"]})
    assert "companion.probe beat" in command_of({"command": services["beat"]["healthcheck"]["test"]})


def test_metrics_and_push_secrets(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    web = services["web"]["environment"]
    assert web["PROMETHEUS_MULTIPROC_DIR"] == "/run/companion-metrics"
    assert web["WORKER_METRICS_BIND"] == "0.0.0.0:9808"
    for name in APP_SERVICES:
        assert "/run/companion-metrics" in str(services[name].get("tmpfs")), f"{name}: metrics on a tmpfs"
    worker = services["worker"]
    assert "9808" in [str(p) for p in worker.get("expose", [])] and not worker.get("ports")
    mounts = [m if isinstance(m, dict) else {"target": str(m).split(":")[1]} for m in worker["volumes"]]
    secrets = [m for m in mounts if m["target"] == "/run/secrets/companion"]
    assert secrets and secrets[0].get("read_only", True), "the push keys are mounted read-only"


def test_dockerfile_installs_from_the_lock() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    uv_version = re.search(r"^UV_VERSION\s*:=\s*(\S+)", makefile, re.M)
    assert uv_version, "Makefile pins uv"
    assert f"pip install --no-cache-dir uv=={uv_version.group(1)}" in dockerfile, "same uv as the Makefile"
    assert "uv sync --frozen --no-dev" in dockerfile
    assert "COPY migrations" in dockerfile, "`companion db upgrade` needs the migrations in the image"
    assert re.search(r"^USER (?!root)\S+", dockerfile, re.M), "the app must not run as root"
