"""The shape of the code base, checked: a pure domain, and web and workers agreeing on task names."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_DOMAIN = (
    "flask",
    "flask_login",
    "flask_smorest",
    "sqlalchemy",
    "celery",
    "redis",
    "marshmallow",
    "psycopg",
    "werkzeug",
)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "companion" / "domain").rglob("*.py")), ids=lambda p: p.name)
def test_domain_is_pure(path):
    for name in _imports(path):
        top = name.split(".")[0]
        assert top not in FORBIDDEN_IN_DOMAIN, f"{path.name} imports {name}"
        if top == "companion":
            assert name.startswith("companion.domain"), f"{path.name} imports {name}"


def _layer_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    return [name.strip().strip("()") for layer in layers for name in layer.replace("|", ":").split(":")]


def _has_code(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return any(not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)) for node in body)


def test_every_module_is_in_a_layer():
    """The layer contract (pyproject.toml) names every module, so none escapes it by being left out; a
    package whose `__init__.py` holds only a docstring is not a module anyone imports from."""
    layered = _layer_modules()
    for path in sorted((ROOT / "companion").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            if not _has_code(path):
                continue
            parts = parts[:-1]
        module = ".".join(parts)
        assert any(module == name or module.startswith(name + ".") for name in layered), (
            f"{module} is in no layer of [tool.importlinter] (pyproject.toml, docs/architecture.md)"
        )


def test_web_never_imports_workers():
    for path in (ROOT / "companion").rglob("*.py"):
        assert not any(n.split(".")[0] == "workers" for n in _imports(path)), path


def test_every_task_name_the_web_sends_is_registered_by_the_worker(database_url, redis_url, monkeypatch):
    from companion import jobs

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    from workers.celery_app import celery

    names = {
        value
        for key, value in vars(jobs).items()
        if key.isupper() and not key.startswith("_") and isinstance(value, str) and "." in value
    }
    assert names, "jobs declares no task names"
    assert names <= set(celery.tasks), names - set(celery.tasks)
    for entry in celery.conf.beat_schedule.values():
        assert entry["task"] in celery.tasks


def test_worker_settings(database_url, redis_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    from workers.celery_app import celery

    conf = celery.conf
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.timezone == "UTC" and conf.enable_utc
    assert conf.broker_transport_options["visibility_timeout"] >= 60
    for name, task in celery.tasks.items():
        if not name.startswith("celery."):
            assert "." in name and task.name == name  # explicit "<feature>.<verb>" names
