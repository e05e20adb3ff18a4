"""JSON log lines on stderr.

Vector's exec source reads stderr with the same JSON codec as stdout, so every log line must be
one JSON object; `vector.toml` routes them apart by the `stream` field. Secrets registered with
`redact()` are replaced wherever they appear, as a last line of defence.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from collector.redact import Redactor

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


class JsonLog:
    def __init__(
        self, stream: TextIO | None = None, level: str = "INFO", logger: str = "collector", fmt: str = "json"
    ):
        """`fmt`: "json" (one object per line, what Vector reads), "text" (for a terminal), or "auto"."""
        self._stream = stream
        if fmt == "auto":
            target = stream or sys.stderr
            fmt = "text" if getattr(target, "isatty", lambda: False)() else "json"
        self._format = fmt
        self._threshold = LEVELS.get(level.upper(), 20)
        self._logger = logger
        # Shared with every other sink (status.json): one list of secrets, one redaction.
        self.redactor = Redactor()

    def redact(self, secret: str | None) -> None:
        """Never let `secret` reach a log line, whatever code path tries."""
        self.redactor.add(secret)

    def scrub(self, text: str) -> str:
        return self.redactor.text(text)

    def debug(self, message: str, **fields: Any) -> None:
        self._write("DEBUG", message, fields)

    def info(self, message: str, **fields: Any) -> None:
        self._write("INFO", message, fields)

    def warning(self, message: str, **fields: Any) -> None:
        self._write("WARNING", message, fields)

    def error(self, message: str, **fields: Any) -> None:
        self._write("ERROR", message, fields)

    def _write(self, level: str, message: str, fields: dict[str, Any]) -> None:
        if LEVELS[level] < self._threshold:
            return
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        fields = {key: value for key, value in fields.items() if value is not None}
        if self._format == "text":
            extras = " ".join(f"{key}={value}" for key, value in fields.items())
            line = f"{stamp[11:19]} {level:<7} {message}" + (f"  [{extras}]" if extras else "")
        else:
            record = {"time": stamp, "level": level, "logger": self._logger, "message": message, **fields}
            line = json.dumps(record, default=str, ensure_ascii=False)
        line = self.scrub(line)
        stream = self._stream or sys.stderr
        try:
            stream.write(line + "\n")
            stream.flush()
        except (BrokenPipeError, ValueError):
            # stderr closed (Vector going away): logs are best effort, data is not.
            pass
