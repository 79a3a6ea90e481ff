"""Medications API (API.md "Tracking": catalogue, plans, check-ins; "Coach": plan writes)."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("medications", __name__, url_prefix="/api/v1", description="Medication catalogue, plans and dose check-ins")
