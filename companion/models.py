"""Every table, imported in one place so Alembic and the tests see the whole schema."""

from companion.accounts.models import (
    AuthToken,
    CoachAssignment,
    ConsentEvent,
    Device,
    Insurer,
    Member,
    User,
)
from companion.accounts.throttle import SignInCounter
from companion.audit.models import AuditEntry
from companion.auth.sessions import StaffSession
from companion.db import Base
from companion.exports.models import ExportJob, ExportRelease
from companion.medications.models import MedicationCheckin, MedicationPlan, SideEffectReport
from companion.nudges.models import Delivery, Message, Nudge, NudgePlanning
from companion.pacs.models import PacsReport
from companion.safety.models import Flag, FlagAlert, StaffNotification
from companion.symptoms.models import SymptomReport
from companion.tracking.models import BacReading, Craving, DrinkLog

__all__ = [
    "AuditEntry",
    "AuthToken",
    "BacReading",
    "Base",
    "CoachAssignment",
    "ConsentEvent",
    "Craving",
    "Delivery",
    "Device",
    "DrinkLog",
    "ExportJob",
    "ExportRelease",
    "Flag",
    "FlagAlert",
    "Insurer",
    "MedicationCheckin",
    "MedicationPlan",
    "Member",
    "Message",
    "Nudge",
    "NudgePlanning",
    "PacsReport",
    "SideEffectReport",
    "SignInCounter",
    "StaffNotification",
    "StaffSession",
    "SymptomReport",
    "User",
]
