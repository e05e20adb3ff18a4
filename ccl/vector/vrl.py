"""VRL programs run in Python through Vector's own engine (the `vrl-python` binding).

vrl-python hands timestamps back as text ("2026-05-22 15:25:13.701734 UTC"); this module turns the
ones at known paths back into the RFC 3339 form Vector's JSON encoder writes, and accepts them
again as input, so that an event can go through several programs as it does in Vector.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vrl_python import VRLRuntime

VRL_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? UTC$")


class VrlError(Exception):
    """A VRL program failed to compile or to run; the message is VRL's own diagnostic."""


# Compiled programs by source text: compiling normalize.vrl takes ~0.7 s (parse_user_agent's
# regular expressions), and tests and `ccl test` build many normalizers in one process.
_COMPILED: dict[str, VRLRuntime] = {}


class VrlProgram:
    def __init__(self, source: str, name: str):
        self.name = name
        self.source = source
        runtime = _COMPILED.get(source)
        if runtime is None:
            runtime = VRLRuntime()
            try:
                runtime.compile(source)
            except (ValueError, RuntimeError) as error:
                raise VrlError(f"{name}: does not compile:{_diagnostic(error)}") from None
            _COMPILED[source] = runtime
        self._runtime = runtime

    @classmethod
    def from_file(cls, path: Path) -> VrlProgram:
        return cls(path.read_text(encoding="utf-8"), str(path))

    def run(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event as the program leaves it; raises VrlError on a runtime error or abort."""
        try:
            result = self._runtime.execute(self.source, event)
        except (ValueError, RuntimeError, TypeError) as error:
            raise VrlError(f"{self.name}:{_diagnostic(error)}") from None
        processed = result.processed_event
        return processed if isinstance(processed, dict) else {"message": processed}


def check(source: str) -> str | None:
    """None if `source` compiles, else VRL's diagnostic."""
    try:
        VRLRuntime().compile(source)
    except (ValueError, RuntimeError) as error:
        return _diagnostic(error)
    return None


def vrl_time_to_rfc3339(value: Any) -> Any:
    """"2026-05-22 15:25:13.701734 UTC" -> "2026-05-22T15:25:13.701734Z"; anything else unchanged."""
    if isinstance(value, str) and VRL_TIMESTAMP.match(value):
        stamp = value[: -len(" UTC")]
        date, _, fraction = stamp.partition(".")
        if date[0] != "0":  # the usual case, 10x faster than strptime: VRL only prints valid dates
            text = date.replace(" ", "T", 1)
        else:  # years before 1000 print unpadded, as they did
            text = datetime.strptime(date, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{text}.{fraction[:9]}Z" if fraction else f"{text}Z"
    return value


def _diagnostic(error: BaseException) -> str:
    text = str(error).strip("\n")
    return ("\n" + text) if text else f" {type(error).__name__}"
