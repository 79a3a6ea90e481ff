"""Object-level access for staff: which members a coach or an admin may see and manage (the caseload).

Route-level access (which roles may call a route) is `auth.access`; this is the check inside a service.
What is not yours is the same 404 as what does not exist.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from companion.accounts.models import CoachAssignment, Member, Role, User
from companion.db import session
from companion.domain.errors import NotFound


def member_for_staff(actor: User, member_id: uuid.UUID) -> Member:
    """The member, if `actor` may manage their plans: an admin always, a coach while the member is on
    their current caseload. Anything else is the same 404 as a member who does not exist."""
    member = session.get(Member, member_id)
    if member is not None and actor.role == Role.ADMIN:
        return member
    if member is not None and actor.role == Role.COACH:
        assigned = session.execute(
            select(CoachAssignment.id).where(
                CoachAssignment.member_id == member_id,
                CoachAssignment.coach_id == actor.id,
                CoachAssignment.ended_at.is_(None),
            )
        ).first()
        if assigned is not None:
            return member
    raise NotFound("No such member on your caseload.")
