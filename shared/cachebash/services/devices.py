"""The owner's devices that receive pushes (web push from the console, or the phone app).

The phone app may also write `tenants/{uid}/devices/{id}` itself (firestore.rules allow it);
this is the same write for clients that go through the owner API. The id derives from the
token, so registering the same browser twice keeps one document."""

from __future__ import annotations

import hashlib
from typing import Any

from cachebash.services.runtime import Runtime, tenant_path


def register(rt: Runtime, tenant_id: str, token: str, platform: str = "web") -> dict[str, Any]:
    device_id = hashlib.sha256(token.encode()).hexdigest()[:24]
    doc = {"token": token, "platform": platform, "createdAt": rt.clock.iso()}
    rt.store.run_transaction(lambda tx: tx.set(tenant_path(tenant_id, "devices", device_id), doc))
    return {"success": True, "deviceId": device_id}
