"""Every table, imported in one place so Alembic and the tests see the whole schema."""

from companion.accounts.models import AuthToken, CoachAssignment, Device, Insurer, Member, User
from companion.db import Base

__all__ = ["AuthToken", "Base", "CoachAssignment", "Device", "Insurer", "Member", "User"]
