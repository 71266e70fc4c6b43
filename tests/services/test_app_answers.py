"""The phone's answers (`tenants/{t}/answers/{questionId}`) are applied exactly once, on every
store: delivered twice, raced by two instances, or left to the sweeper."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from cachebash.bootstrap import embedded_runtime
from cachebash.domain.inputs import parse
from cachebash.domain.messages import GetMessages, MessageRef, SendMessage
from cachebash.domain.tasks import CreateTask, TaskRef
from cachebash.ports.clock import ManualClock
from cachebash.ports.store import Store
from cachebash.services import app_answers, relay, sweeper, tasks
from cachebash.services.runtime import Caller, Runtime
from support.callers import make_caller


def phone_answers(rt: Runtime, question_id: str, text: str) -> None:
    path = app_answers.answer_path("default", question_id)
    rt.store.run_transaction(lambda tx: tx.create(path, {"answer": text, "answeredAt": rt.clock.iso()}))


def ask(rt: Runtime, asker: Caller) -> str:
    sent = relay.send_message(rt, asker, parse(SendMessage, {"target": "human", "message": "Merge?",
                                                             "message_type": "QUERY"}))
    return str(sent["messageId"])


def test_an_answer_delivered_twice_is_applied_once(runtime: Runtime) -> None:
    asker = make_caller(runtime, "architect")
    asked = ask(runtime, asker)
    phone_answers(runtime, asked, "Yes")
    first = app_answers.apply(runtime, "default", asked)
    assert first is not None and first["to"] == "architect"
    assert app_answers.apply(runtime, "default", asked) is None
    [answer] = relay.get_messages(runtime, asker, GetMessages())["messages"]
    assert (answer["message"], answer["reply_to"], answer["messageId"]) == ("Yes", asked, first["messageId"])
    assert relay.get_message(runtime, asker, MessageRef(messageId=asked))["message"]["answer"] == "Yes"


def test_an_answer_to_a_question_task_completes_it(runtime: Runtime) -> None:
    asker = make_caller(runtime, "architect")
    task_id = tasks.create_task(runtime, asker, parse(CreateTask, {"title": "Which DB?", "type": "question",
                                                                   "target": "human"}))["taskId"]
    phone_answers(runtime, task_id, "Postgres")
    assert sweeper.sweep(runtime)["answersApplied"] == 1, "its trigger never ran: the sweeper applies it"
    assert sweeper.sweep(runtime)["answersApplied"] == 0
    task = tasks.get_task(runtime, asker, TaskRef(taskId=task_id))["task"]
    assert (task["status"], task["result"], task["completedBy"]) == ("completed", "Postgres", "human")
    assert relay.get_messages(runtime, asker, GetMessages())["count"] == 1


def test_an_answer_that_cannot_apply_is_dropped(runtime: Runtime) -> None:
    asker = make_caller(runtime, "architect")
    to_agent = relay.send_message(runtime, asker, parse(SendMessage, {"target": "architect", "message": "note"}))
    phone_answers(runtime, to_agent["messageId"], "not a question")  # only the server could write this
    phone_answers(runtime, "nothing-here", "lost")
    assert sweeper.sweep(runtime)["answersApplied"] == 0
    assert runtime.store.get(app_answers.answer_path("default", "nothing-here")) is None, "dropped, not retried"
    assert runtime.store.get(app_answers.answer_path("default", to_agent["messageId"])) is None


@pytest.mark.real_transactions
def test_two_instances_applying_the_same_answer_apply_it_once(
        runtime: Runtime, store_factory: Callable[[], Store], clock: ManualClock) -> None:
    asker = make_caller(runtime, "architect")
    asked = ask(runtime, asker)
    phone_answers(runtime, asked, "Yes")
    barrier = threading.Barrier(4)
    results: list[object] = []

    def instance() -> None:
        rt = embedded_runtime(store_factory(), clock)
        try:
            barrier.wait()
            results.append(app_answers.apply(rt, "default", asked))
        finally:
            rt.dispatcher.flush()
            rt.store.close()

    threads = [threading.Thread(target=instance) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r is not None for r in results) == 1, results
    assert relay.get_messages(runtime, asker, GetMessages())["count"] == 1
