"""Every environment variable the code reads is documented in .env.example, and nothing stale is."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from companion.config import Config

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("companion", "workers")
#: Reads: `_env("NAME"`, `_env_int("NAME"`, `_env_bool("NAME"`, `os.environ.get("NAME"`, `os.getenv("NAME"`,
#: and `os.environ["NAME"]` unless it is being assigned.
_READS = (
    re.compile(r"""(?:\b_env(?:_\w+)?\(|os\.environ\.get\(|os\.getenv\()\s*["']([A-Z][A-Z0-9_]*)["']"""),
    re.compile(r"""os\.environ\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\](?!\s*=(?!=))"""),
)
#: Set by our own code for the libraries it drives, not settings a person chooses.
NOT_SETTINGS = {"XDG_RUNTIME_DIR"}


def env_names_read() -> set[str]:
    names: set[str] = set()
    for folder in SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            source = path.read_text()
            for pattern in _READS:
                names.update(pattern.findall(source))
    return names - NOT_SETTINGS


def config_env_names() -> set[str]:
    source = (ROOT / "companion" / "config.py").read_text()
    body = source[source.index("def from_env") :]
    body = body[: body.index("values.update")]
    return set(re.findall(r"""_env(?:_\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""", body))


def documented() -> dict[str, list[str]]:
    """NAME -> the comment lines just above its `NAME=` / `# NAME=` line in .env.example."""
    result: dict[str, list[str]] = {}
    comments: list[str] = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        assignment = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line)
        if assignment:
            result[assignment.group(1)] = comments
            comments = []
        elif line.startswith("#") and not line.startswith("# ---"):
            comments.append(line)
        else:
            comments = []
    return result


def test_the_scan_finds_the_settings() -> None:
    names = env_names_read()
    # The scan itself must work: these are read in config.py and runtime.py today.
    assert {"DATABASE_URL", "SECRET_KEY", "COMPANION_EMBEDDED", "COMPANION_LOCAL_REDIS_PORT"} <= names


def test_every_config_field_comes_from_the_environment() -> None:
    source = (ROOT / "companion" / "config.py").read_text()
    body = source[source.index("def from_env") : source.index("values.update")]
    keys = set(re.findall(r'^\s*"(\w+)":\s*_env', body, re.M))
    assert keys == {f.name for f in fields(Config)}, "a Config field no environment variable sets"
    assert len(config_env_names()) == len(keys)


def test_every_setting_is_documented() -> None:
    missing = (env_names_read() | config_env_names()) - set(documented())
    assert not missing, f"add these to .env.example with a comment: {sorted(missing)}"


def test_every_documented_setting_has_a_short_explanation() -> None:
    for name, comments in documented().items():
        assert 1 <= len(comments) <= 3, f"{name}: one to three comment lines above it, not {len(comments)}"
        assert "default" in " ".join(comments).lower(), f"{name}: say what the default is"


def test_nothing_stale_is_documented() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    read = env_names_read() | config_env_names()
    stale = {name for name in documented() if name not in read and f"${{{name}" not in compose}
    assert not stale, f"documented in .env.example but read nowhere: {sorted(stale)}"
