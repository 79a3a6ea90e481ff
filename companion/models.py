"""Every table, imported in one place so Alembic and the tests see the whole schema."""

from companion.accounts.models import AuthToken, CoachAssignment, Device, Insurer, Member, User
from companion.db import Base
from companion.medications.models import MedicationCheckin, MedicationPlan, SideEffectReport
from companion.tracking.models import BacReading, Craving, DrinkLog

__all__ = [
    "AuthToken",
    "BacReading",
    "Base",
    "CoachAssignment",
    "Craving",
    "Device",
    "DrinkLog",
    "Insurer",
    "MedicationCheckin",
    "MedicationPlan",
    "Member",
    "SideEffectReport",
    "User",
]
