"""Tracking API (API.md "Tracking"): drink logs, cravings, breath readings, sync and the summary."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("tracking", __name__, url_prefix="/api/v1", description="What members log, offline-first")
