"""Fault injection for the simulator: `--faults "429=0.1,503@3,drop@5-6,not-enabled"`.

Each rule is KIND, optionally `=PROBABILITY` (each request) or `@N` / `@N-M` (those request
numbers, counted from 1 over the activity requests the simulator receives). A bare KIND applies to
every request. The first rule that fires decides the answer.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from ccl.simulator.hostile import PAGE_FAULTS, SERVER_FAULTS

KINDS = {
    "429": "rate limited, with retry-after",
    "429-no-retry-after": "rate limited, retry-after header missing (stripped by a proxy)",
    "500": "transient api_error",
    "500-final": "api_error with x-should-retry: false (deterministic, must not be retried)",
    "502": "bad gateway", "503": "unavailable", "504": "gateway timeout", "529": "overloaded_error",
    "timeout": "answers only after the client's timeout",
    "drop": "closes the connection without answering",
    "garbage": "200 with a body that is not JSON",
    "401": "authentication_error: API key is invalid.",
    "403": "permission_error: missing scope",
    "404": "not_found_error: Not found (no key, or a key of the wrong type)",
    "not-enabled": "400: Compliance API is not enabled for this organization",
    **PAGE_FAULTS,
    **SERVER_FAULTS,
}
_RULE = re.compile(r"^(?P<kind>[a-z0-9-]+)(?:=(?P<probability>[0-9.]+)|@(?P<first>\d+)(?:-(?P<last>\d+))?)?$")


class FaultSpecError(ValueError):
    pass


@dataclass
class FaultRule:
    kind: str
    probability: float | None = None
    first: int | None = None
    last: int | None = None

    def fires(self, request_number: int, rng: random.Random) -> bool:
        if self.first is not None:
            return self.first <= request_number <= (self.last or self.first)
        if self.probability is not None:
            return rng.random() < self.probability
        return True


class FaultPlan:
    def __init__(self, rules: list[FaultRule] | None = None, seed: int = 0):
        self.rules = rules or []
        self._rng = random.Random(seed)

    @classmethod
    def parse(cls, spec: str | None, seed: int = 0) -> FaultPlan:
        rules = []
        for part in (spec or "").split(","):
            part = part.strip()
            if not part:
                continue
            match = _RULE.match(part)
            if not match or match.group("kind") not in KINDS:
                known = ", ".join(KINDS)
                raise FaultSpecError(f"cannot read fault {part!r}: use KIND, KIND=0.1 or KIND@3-5 with KIND one of "
                                     f"{known}")
            probability = float(match.group("probability")) if match.group("probability") else None
            if probability is not None and not 0 <= probability <= 1:
                raise FaultSpecError(f"fault {part!r}: the probability must be between 0 and 1")
            first = int(match.group("first")) if match.group("first") else None
            last = int(match.group("last")) if match.group("last") else None
            if first is not None and last is not None and last < first:
                raise FaultSpecError(f"fault {part!r}: the range ends before it starts")
            rules.append(FaultRule(match.group("kind"), probability, first, last))
        return cls(rules, seed)

    def pick(self, request_number: int) -> str | None:
        for rule in self.rules:
            if rule.fires(request_number, self._rng):
                return rule.kind
        return None
