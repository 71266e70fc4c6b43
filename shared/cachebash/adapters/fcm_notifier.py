"""Firebase Cloud Messaging through firebase-admin. The Firebase app is initialised on the
first push, not at import, so functions that never push never pay for it."""

from __future__ import annotations

from typing import Any

from cachebash.adapters.firebase_app import firebase_app
from cachebash.ports.notifier import Notifier, Push

ANDROID_CHANNEL = "cachebash_alerts"


def build_messages(tokens: list[str], push: Push) -> list[Any]:
    """One `messaging.Message` per device: a visible alert, plus data the app routes on."""
    from firebase_admin import messaging

    data = {"kind": push.kind, "ref": push.ref, **push.data}
    return [
        messaging.Message(
            fid=token,  # firebase-admin 7 addresses devices by installation id (`token` is deprecated)
            notification=messaging.Notification(title=push.title, body=push.body),
            data=data,
            android=messaging.AndroidConfig(
                priority="high", notification=messaging.AndroidNotification(channel_id=ANDROID_CHANNEL)
            ),
            apns=messaging.APNSConfig(
                headers={"apns-priority": "10"},
                payload=messaging.APNSPayload(aps=messaging.Aps(sound="default", thread_id=push.kind)),
            ),
        )
        for token in tokens
    ]


class FcmNotifier(Notifier):
    def __init__(self, app: Any = None) -> None:
        self._app = app

    def _firebase(self) -> Any:
        return self._app or firebase_app()

    def send(self, tokens: list[str], push: Push) -> int:
        if not tokens:
            return 0
        from firebase_admin import messaging

        response = messaging.send_each(build_messages(tokens, push), app=self._firebase())
        return int(response.success_count)
