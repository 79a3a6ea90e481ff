"""Accounts API (API.md "Accounts"). Thin: validate, call one service, commit once."""

from __future__ import annotations

import uuid
from typing import Any

from flask import g, request
from flask.views import MethodView
from flask_login import current_user
from flask_smorest import Blueprint

from companion.accounts import schemas, services, throttle
from companion.accounts.models import Role
from companion.audit import services as audit
from companion.auth.access import PUBLIC, allow
from companion.db import unit_of_work, utcnow
from companion.domain.errors import Unauthenticated
from companion.extensions import configured_limit, limiter

blp = Blueprint(
    "accounts",
    __name__,
    url_prefix="/api/v1",
    description="Registration, sign-in and the member's own account",
)


def _token_body(signed_in: services.SignedIn) -> dict[str, Any]:
    user, pair = signed_in.user, signed_in.pair
    return {
        "member": services.member_view(user) if user.role == Role.MEMBER else None,
        "role": user.role.value,
        "token_type": "Bearer",
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "expires_at": pair.expires_at,
        "refresh_expires_at": pair.refresh_expires_at,
    }


_login_limit = configured_limit("RATELIMIT_LOGIN")


_register_limit = configured_limit("RATELIMIT_REGISTER")


@blp.route("/auth/register", methods=["POST"])
@blp.doc(operationId="registerMember")
@allow(PUBLIC)
@limiter.limit(_register_limit)
@blp.arguments(schemas.RegisterSchema())
@blp.response(201, schemas.TokenSchema)
@blp.alt_response(409, description="The email is already registered.")
@blp.alt_response(429, description="Too many registrations from this address.")
def register(data: dict[str, Any]):
    """Create a member account and sign in."""
    with unit_of_work():
        signed_in = services.register_member(data, now=utcnow())
        return _token_body(signed_in)


@blp.route("/auth/token", methods=["POST"])
@blp.doc(operationId="createToken")
@allow(PUBLIC)
@limiter.limit(_login_limit)
@blp.arguments(schemas.LoginSchema())
@blp.response(200, schemas.TokenSchema)
@blp.alt_response(401, description="Unknown email or wrong password (the same answer for both).")
@blp.alt_response(
    429,
    description="Too many attempts from this address, or failed sign-ins: wait `Retry-After` seconds.",
)
def token(data: dict[str, Any]):
    """Sign in with email and password (members and staff alike). After 5 failures an account's next
    attempt waits 2, 4, 8 ... seconds (15 minutes at most); an address that signed into it before waits
    only for its own failures. The dashboard's sign-in shares the count."""
    email, address, now = data["email"], request.remote_addr, utcnow()
    with unit_of_work():
        throttle.check(email, address, now=now)
        try:
            signed_in = services.sign_in(email, data["password"], now=now)
        except Unauthenticated as exc:
            throttle.failed(email, address, now=now)
            refused = exc
        else:
            throttle.succeeded(email, address, now=now)
            return _token_body(signed_in)
    raise refused


@blp.route("/auth/refresh", methods=["POST"])
@blp.doc(operationId="refreshToken")
@allow(PUBLIC)
@limiter.limit(_login_limit)
@blp.arguments(schemas.RefreshSchema())
@blp.response(200, schemas.TokenSchema)
@blp.alt_response(401, description="Unknown, expired, revoked or already spent refresh token.")
def refresh(data: dict[str, Any]):
    """Exchange a refresh token for a new pair. A spent token presented again revokes the whole login."""
    with unit_of_work():
        signed_in = services.refresh(data["refresh_token"], now=utcnow())
    if signed_in is None:
        raise Unauthenticated("The refresh token was already used; every token of this login is revoked.")
    return _token_body(signed_in)


@blp.route("/auth/logout", methods=["POST"])
@allow(Role.MEMBER, Role.COACH, Role.ADMIN, Role.INSURER_ANALYST)
@blp.response(204)
def logout():
    """Revoke the access token presented and every token of its login."""
    with unit_of_work():
        services.sign_out(g.auth_token.family_id, now=utcnow())


@blp.route("/me")
class Me(MethodView):
    @allow(Role.MEMBER)
    @blp.response(200, schemas.MemberSchema)
    def get(self):
        """The signed-in member."""
        return services.member_view(current_user)

    @allow(Role.MEMBER)
    @blp.arguments(schemas.MemberPatchSchema())
    @blp.response(200, schemas.MemberSchema)
    def patch(self, changes: dict[str, Any]):
        """Change the member's settings. Server-owned fields (id, email, role, coach, insurer) are 422."""
        with unit_of_work():
            user = services.update_member(current_user, changes, now=utcnow())
            return services.member_view(user)

    @allow(Role.MEMBER)
    @blp.arguments(schemas.PasswordSchema())
    @blp.response(202)
    @blp.alt_response(401, description="Wrong password.")
    def delete(self, data: dict[str, Any]):
        """Erase the account: it can no longer sign in and its personal data is deleted."""
        with unit_of_work():
            services.erase_member(current_user, data["password"], now=utcnow())


DISCLOSURES_SHOWN = 1000


@blp.route("/me/export", methods=["GET"])
@blp.doc(operationId="exportMyData")
@allow(Role.MEMBER)
@blp.response(200)
def export():
    """Every record held about the member, as JSON: account, profile, devices, coaches, the consent
    ledger, everything logged, nudges and messages, the flags raised and staff notes on them, and every
    staff read of the record (`disclosures`)."""
    return services.export_member(current_user)


@blp.route("/me/disclosures", methods=["GET"])
@blp.doc(operationId="listMyDisclosures")
@allow(Role.MEMBER)
@blp.response(200, schemas.DisclosuresSchema)
def disclosures():
    """Who on staff read or released the member's records, and when (the audit log about them)."""
    return {"disclosures": audit.disclosures(current_user.id, limit=DISCLOSURES_SHOWN)}


@blp.route("/me/devices")
class Devices(MethodView):
    @allow(Role.MEMBER)
    @blp.response(200, schemas.DeviceListSchema)
    def get(self):
        """The member's registered phones."""
        return {"items": services.list_devices(current_user.id)}

    @allow(Role.MEMBER)
    @blp.doc(operationId="registerDevice")
    @blp.arguments(schemas.DeviceInputSchema())
    @blp.response(201, schemas.DeviceSchema, description="A new device.")
    @blp.alt_response(200, schema=schemas.DeviceSchema, description="A push token already registered.")
    def post(self, data: dict[str, Any]):
        """Register a phone for push notifications (safe to retry)."""
        with unit_of_work():
            device, created = services.register_device(
                current_user.id, data["platform"], data["push_token"], now=utcnow()
            )
        return device, 201 if created else 200


@blp.route("/me/devices/<uuid:device_id>", methods=["DELETE"])
@allow(Role.MEMBER)
@blp.response(204)
def remove_device(device_id: uuid.UUID):
    """Stop pushing to a device."""
    with unit_of_work():
        services.remove_device(current_user.id, device_id)
