"""What the server holds about a member, for `GET /me/export`.

Each feature registers a function that returns its records for one member as JSON-ready values;
erasure needs no registry, because every member-owned table cascades from `members`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

Exporter = Callable[[uuid.UUID], Any]

_exporters: dict[str, Exporter] = {}


def register_exporter(name: str, exporter: Exporter) -> None:
    _exporters[name] = exporter


def export_member(member_id: uuid.UUID) -> dict[str, Any]:
    return {name: exporter(member_id) for name, exporter in sorted(_exporters.items())}
