"""How CacheBash's logs look, set once at start-up: a clock and the text in a terminal
(`18:45:16 builder claimed e468… "Fix type error in auth.ts"`), or one JSON object per line with
Cloud Logging's `severity` and labels in the cloud. The level is a choice a person makes:
`activity` (the state changes of `services.activity`, and problems), `warning` (problems only)
or `debug` (everything, the MCP SDK's chatter included; below debug it stays quiet)."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO

from cachebash.services.activity import ACTIVITY

#: Cloud Logging reads these from a JSON line (structured logging on Cloud Run and Functions).
SEVERITY = {"DEBUG": "DEBUG", "INFO": "INFO", "ACTIVITY": "NOTICE", "WARNING": "WARNING", "ERROR": "ERROR",
            "CRITICAL": "CRITICAL"}
LABELS_FIELD = "logging.googleapis.com/labels"
HANDLER_NAME = "cachebash"
#: Libraries whose INFO lines are noise to a person ("Terminating session: None", session manager start/stop).
QUIET = ("mcp", "uvicorn", "uvicorn.error", "httpx", "httpcore", "google", "urllib3")


class HumanLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = "" if record.levelno == ACTIVITY else f"{record.levelname} "
        text = f"{clock} {level}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {"severity": SEVERITY.get(record.levelname, "DEFAULT"),
                                    "message": record.getMessage(), "logger": record.name,
                                    "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                                    + f".{int(record.msecs):03d}Z"}
        labels = getattr(record, "labels", None)
        if labels:
            entry[LABELS_FIELD] = {str(k): str(v) for k, v in labels.items()}
        if record.exc_info:
            entry["message"] = f"{entry['message']}\n{self.formatException(record.exc_info)}"
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, json_lines: bool, stream: IO[str] | None = None) -> None:
    """Put our handler on the root logger, replacing the one an earlier call put there (others, a test
    runner's, stay). Called before the MCP server is built, whose own basicConfig then does nothing."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLines() if json_lines else HumanLines())
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    debug = level == "debug"
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("cachebash").setLevel(logging.DEBUG if debug else ACTIVITY if level == "activity"
                                            else logging.WARNING)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)
