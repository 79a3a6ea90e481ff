"""The code base stays lint-clean: ruff with the rules in pyproject.toml (every ignore says why), and mypy
(strict) on the files pyproject.toml's [tool.mypy] names."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_check():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "companion", "workers", "tests", "migrations/env.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict():
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
