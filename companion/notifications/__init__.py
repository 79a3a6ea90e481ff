"""Push channels: FCM HTTP v1 (Android), APNs (iOS) and a log channel for development.

`channels_for(config)` picks a channel per platform from the settings: FCM when `FCM_PROJECT_ID` is
set, APNs when `APNS_KEY_FILE` is set, the log channel otherwise (the default: nothing leaves the
machine). Channels are made once per process: their HTTP clients keep connections open.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from companion.notifications.base import PushChannel, PushMessage, PushOutcome, PushResult

log = logging.getLogger(__name__)

__all__ = [
    "Channels",
    "LogChannel",
    "PushChannel",
    "PushMessage",
    "PushOutcome",
    "PushResult",
    "channels_for",
]


class LogChannel:
    """Development: writes one log line (ids only) instead of pushing; always accepted."""

    name = "log"

    def send(self, token: str, message: PushMessage) -> PushResult:
        log.info("push (log channel)", extra={"nudge_id": message.nudge_id})
        return PushResult(PushOutcome.SENT, self.name)

    async def push(self, token: str, message: PushMessage) -> PushResult:
        return self.send(token, message)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Channels:
    """The channel for each device platform (`ios`, `android`)."""

    by_platform: Mapping[str, PushChannel]

    def for_platform(self, platform: str) -> PushChannel:
        return self.by_platform.get(platform) or self.by_platform["log"]

    def close(self) -> None:
        for channel in {id(c): c for c in self.by_platform.values()}.values():
            getattr(channel, "close", lambda: None)()


def build_channels(settings: Mapping[str, Any]) -> Channels:
    """From Flask config keys (`COMPANION_FCM_PROJECT_ID`, ...)."""
    from companion.notifications.apns import ApnsChannel
    from companion.notifications.fcm import FcmChannel

    timeout = float(settings["COMPANION_PUSH_TIMEOUT_SECONDS"])
    httpx_log = logging.getLogger("httpx")
    if httpx_log.level == logging.NOTSET:  # it logs every request URL, and an APNs URL names the token
        httpx_log.setLevel(logging.WARNING)
    fallback = LogChannel()
    android: PushChannel = fallback
    ios: PushChannel = fallback
    if settings.get("COMPANION_FCM_PROJECT_ID"):
        android = FcmChannel(
            project_id=settings["COMPANION_FCM_PROJECT_ID"],
            access_token=settings.get("COMPANION_FCM_ACCESS_TOKEN", ""),
            credentials_file=settings.get("COMPANION_FCM_CREDENTIALS_FILE", ""),
            base_url=settings["COMPANION_FCM_BASE_URL"],
            timeout=timeout,
        )
    if settings.get("COMPANION_APNS_KEY_FILE"):
        ios = ApnsChannel(
            key_file=settings["COMPANION_APNS_KEY_FILE"],
            key_id=settings["COMPANION_APNS_KEY_ID"],
            team_id=settings["COMPANION_APNS_TEAM_ID"],
            topic=settings["COMPANION_APNS_TOPIC"],
            base_url=settings["COMPANION_APNS_BASE_URL"],
            timeout=timeout,
        )
    return Channels({"android": android, "ios": ios, "log": fallback})


_made: dict[tuple[int, int], Channels] = {}
_lock = threading.Lock()


def channels_for(settings: Mapping[str, Any]) -> Channels:
    """This process's channels for these settings (HTTP clients must not cross a fork)."""
    key = (os.getpid(), id(settings))
    with _lock:
        if key not in _made:
            _made[key] = build_channels(settings)
        return _made[key]
