"""A timer thread for the embedded server's periodic work (the sweeper). In the cloud,
Cloud Scheduler plays this part."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, interval: float, work: Callable[[], Any], name: str = "periodic") -> None:
        self.interval = interval
        self.work = work
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.work()
            except Exception:  # keep the timer alive; the next tick retries
                log.exception("%s failed", self._thread.name)
