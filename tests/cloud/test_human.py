"""The person answers an agent's question, and the asker, on the other mcp instance, sees it:
created in `tenants/{t}/answers/{questionId}` as the phone app does (which reaches the asker
through `answered`, fed by the Firestore relay on the document's creation), or through the
owner API on the mcp function with a Firebase ID token from the Auth emulator."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from cachebash.adapters.firestore_store import FirestoreStore
from support.cloud_local import CloudLocal, Fleet, fleet_of, unavailable
from support.firebase_auth_emulator import create_user, sign_in

pytestmark = [pytest.mark.anyio, pytest.mark.cloud_local]


def app_writes_answer(cloud: CloudLocal, tenant: str, question_id: str, text: str) -> str:
    """What firestore.rules allow the phone: one new answer document, exactly `answer` and `answeredAt`."""
    store = FirestoreStore(project=cloud.project, emulator_host=cloud.firestore_host)
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    path = f"tenants/{tenant}/answers/{question_id}"
    try:
        store.run_transaction(lambda tx: tx.create(path, {"answer": text, "answeredAt": stamp}))
    finally:
        store.close()
    return path


def exists(cloud: CloudLocal, path: str) -> bool:
    store = FirestoreStore(project=cloud.project, emulator_host=cloud.firestore_host)
    try:
        return store.get(path) is not None
    finally:
        store.close()


async def test_answer_the_app_writes_on_a_query_reaches_the_waiting_asker(fleet: Fleet, cloud: CloudLocal) -> None:
    asker = await fleet("architect", on=0)
    asked = await asker.call("send_message", target="human", message_type="QUERY", message="Merge PR #12?",
                             threadId="pr-12")
    waiting_on_b = await fleet("architect", on=1)  # the same program, another session, on the other instance
    path = await asyncio.to_thread(app_writes_answer, cloud, fleet.tenant, asked["messageId"], "Yes, merge")
    got = await waiting_on_b.call("get_messages", wait_seconds=20)
    [answer] = got["messages"]
    assert (answer["source"], answer["message_type"], answer["reply_to"], answer["message"]) == (
        "human", "RESULT", asked["messageId"], "Yes, merge")
    assert answer["priority"] == "high" and answer["threadId"] == "pr-12"
    question = (await asker.call("get_message", messageId=asked["messageId"]))["message"]
    assert question["answer"] == "Yes, merge" and question["answerMessageId"] == answer["messageId"]
    assert (await waiting_on_b.call("get_messages", wait_seconds=2))["count"] == 0, "delivered once"
    assert not await asyncio.to_thread(exists, cloud, path), "applied, then deleted (which fires nothing)"


async def test_answer_the_app_writes_on_a_question_task_completes_it(fleet: Fleet, cloud: CloudLocal) -> None:
    asker = await fleet("architect", on=1)
    task = await asker.call("create_task", type="question", target="human", title="Which DB?")
    await asyncio.to_thread(app_writes_answer, cloud, fleet.tenant, task["taskId"], "Postgres")
    got = await asker.call("get_messages", wait_seconds=20)
    assert [(m["source"], m["message"]) for m in got["messages"]] == [("human", "Postgres")]
    done = (await asker.call("get_task", taskId=task["taskId"]))["task"]
    assert (done["status"], done["result"]) == ("completed", "Postgres")


async def test_answer_through_the_owner_api_with_a_firebase_id_token(cloud: CloudLocal) -> None:
    if cloud.auth_host is None:
        unavailable("the Firebase Auth emulator (npm firebase-tools in tests/emulator) cannot run", "firebase-auth")
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    uid = await asyncio.to_thread(create_user, cloud.auth_host, email, "secret-pw-1")
    token = await asyncio.to_thread(sign_in, cloud.auth_host, email, "secret-pw-1")
    async with fleet_of(cloud, tenant=uid) as fleet:  # the signed-in user's uid is the tenant
        asker = await fleet("builder", on=0)
        asked = await asker.call("send_message", target="human", message_type="QUERY", message="Ship it?")
        async with httpx.AsyncClient(base_url=f"{cloud.base(1)}/v1/owner", timeout=30,
                                     headers={"Authorization": f"Bearer {token}"}) as owner:
            inbox = (await owner.get("/inbox")).json()
            item = next(i for i in inbox["items"] if i["id"] == asked["messageId"])
            assert item["open"] and item["from"] == "builder"
            waiting = asyncio.create_task(asker.call("get_messages", wait_seconds=20))
            replied = await owner.post("/replies", json={"replyTo": asked["messageId"], "message": "Ship it."})
            assert replied.status_code == 200, replied.text
            assert replied.json()["to"] == "builder"
            [answer] = (await asyncio.wait_for(waiting, 25))["messages"]
            assert (answer["source"], answer["reply_to"], answer["message"]) == ("human", asked["messageId"],
                                                                                 "Ship it.")
            assert (await owner.get("/counts")).json()["openQuestions"] == 0
            stranger = await owner.get("/inbox", headers={"Authorization": "Bearer not-a-token"})
            assert stranger.status_code == 401
