"""Retries of one process take turns on the document they collided on; nothing else waits."""

from __future__ import annotations

import threading
import time

from cachebash.adapters.firestore_turns import Turns


def test_no_waiting_until_someone_collided() -> None:
    turns = Turns()
    with turns.turn("tasks/a", timeout=1), turns.turn("tasks/a", timeout=1):
        pass  # both inside at once: nobody is retrying on tasks/a
    assert turns._turns == {}


def test_while_a_retry_is_pending_transactions_on_that_document_run_one_at_a_time() -> None:
    turns = Turns()
    inside, most = 0, 0
    lock = threading.Lock()

    def transaction() -> None:
        nonlocal inside, most
        with turns.turn("tasks/hot", timeout=5):
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.01)
            with lock:
                inside -= 1

    with turns.retrying("tasks/hot"):
        threads = [threading.Thread(target=transaction) for _ in range(8)]
        for t in threads:
            t.start()
        with turns.turn("tasks/other", timeout=0):
            pass  # another document is not held up
        for t in threads:
            t.join()
    assert most == 1
    assert turns._turns == {}, "forgotten once nobody retries or waits"


def test_a_turn_that_times_out_goes_ahead() -> None:
    turns = Turns()
    with turns.retrying("tasks/hot"), turns.turn("tasks/hot", timeout=5):
        started = time.monotonic()
        done = threading.Event()

        def late() -> None:
            with turns.turn("tasks/hot", timeout=0.05):
                done.set()

        threading.Thread(target=late).start()
        assert done.wait(2) and time.monotonic() - started < 1
