"""Every task module, imported explicitly: this file is the registry of what the worker runs."""

from workers.tasks import exports, nudges, safety, system

__all__ = ["exports", "nudges", "safety", "system"]
