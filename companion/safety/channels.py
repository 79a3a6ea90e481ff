"""How a staff notification reaches its recipient: one small interface, one class per channel.

There is no push or email provider yet. `inbox` is delivered by the row itself (the coach's inbox is
the `staff_notifications` table); `log` writes one line, for development. A push or email channel is
a class with a `name` and a `send` that calls the provider with a timeout and raises on failure; add it
to `CHANNELS` and to `ENABLED`. Whatever the channel, a notification carries ids and a kind, never
health data: a provider only ever hears "a flag needs you", the dashboard shows the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from companion.safety.models import StaffNotification

log = logging.getLogger(__name__)


class Channel(Protocol):
    #: Stored in `staff_notifications.channel`.
    name: str
    #: True when writing the row is the delivery (nothing to send later).
    immediate: bool

    def send(self, notification: StaffNotification) -> None:
        """Hand one notification to the channel. Raise on failure: the row stays unsent, to be retried."""


class InboxChannel:
    name = "inbox"
    immediate = True

    def send(self, notification: StaffNotification) -> None:
        """The row is the inbox entry: nothing to do."""


class LogChannel:
    """Development stand-in for push/email: one log line of ids."""

    name = "log"
    immediate = False

    def send(self, notification: StaffNotification) -> None:
        log.info(
            "staff notification",
            extra={
                "notification_id": notification.id,
                "recipient_id": str(notification.recipient_id),
                "flag_id": str(notification.flag_id),
                "kind": notification.kind,
            },
        )


CHANNELS: Mapping[str, Channel] = {c.name: c for c in (InboxChannel(), LogChannel())}

#: The channels every staff notification goes out on.
ENABLED: tuple[str, ...] = ("inbox", "log")
