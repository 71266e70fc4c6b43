"""A group message sent on one mcp instance reaches every member through the `fanout`
function (Pub/Sub push), written once per member, and is read on the other instance."""

from __future__ import annotations

import pytest

from cachebash.adapters.firestore_store import FirestoreStore
from cachebash.ports.store import Query
from support.cloud_local import CloudLocal, Fleet

pytestmark = [pytest.mark.anyio, pytest.mark.cloud_local]


def copies_of(cloud: CloudLocal, tenant: str, multicast_id: str) -> dict[str, str]:
    """Document id -> recipient of every message written for the multicast, read from Firestore."""
    store = FirestoreStore(project=cloud.project, emulator_host=cloud.firestore_host)
    try:
        docs = store.query(Query(f"tenants/{tenant}/messages").take(500))
        return {d.id: d.data["target"] for d in docs if d.data.get("multicastId") == multicast_id}
    finally:
        store.close()


async def test_group_message_reaches_every_member_once_through_the_fanout_function(
        fleet: Fleet, cloud: CloudLocal) -> None:
    architect = await fleet("architect", groups=["council"], on=0)
    members = [await fleet(f"builder{i}", groups=["builders"], on=1) for i in range(3)]
    outsider = await fleet("scout", groups=["intelligence"], on=1)

    sent = await architect.call("send_message", target="builders", message_type="DIRECTIVE",
                                message="All user management work goes on feature/user-management.")
    assert sent["recipients"] == ["builder0", "builder1", "builder2"]
    for member in members:  # the copies are written by `fanout`, after send_message answered
        got = await member.call("get_messages", wait_seconds=20)
        assert [(m["source"], m["message_type"], m["multicastId"]) for m in got["messages"]] == [
            ("architect", "DIRECTIVE", sent["multicastId"])]
    assert (await outsider.call("get_messages"))["count"] == 0
    for member in members:
        assert (await member.call("get_messages"))["count"] == 0, "each member got exactly one copy"
    assert sorted(copies_of(cloud, fleet.tenant, sent["multicastId"]).values()) == [
        "builder0", "builder1", "builder2"], "one document per member, however often Pub/Sub delivered"


async def test_the_sender_in_the_group_gets_no_copy(fleet: Fleet, cloud: CloudLocal) -> None:
    members = [await fleet(f"reviewer{i}", groups=["council"], on=i) for i in range(2)]
    sent = await members[0].call("send_message", target="council", message="Review round at 3pm")
    assert sent["recipients"] == ["reviewer1"]
    got = await members[1].call("get_messages", wait_seconds=20)
    assert [m["message"] for m in got["messages"]] == ["Review round at 3pm"]
    assert (await members[0].call("get_messages"))["count"] == 0
    assert list(copies_of(cloud, fleet.tenant, sent["multicastId"]).values()) == ["reviewer1"]
