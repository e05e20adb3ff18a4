"""One redaction for every place the collector writes words: logs, status.json, `ccl status`.

Secrets registered with `add()` are replaced wherever they appear; anything shaped like an
Anthropic key is replaced too, because an error body can echo a key cut short, or another one.
"""

from __future__ import annotations

import re
from typing import Any

KEY_SHAPED = re.compile(r"sk-ant-[a-z]+[0-9]*-[A-Za-z0-9_-]{6,}")
REDACTED = "[REDACTED]"


class Redactor:
    def __init__(self) -> None:
        self._secrets: list[str] = []

    def add(self, secret: str | None) -> None:
        """Never let `secret` reach a sink, whatever code path tries."""
        if secret and len(secret) >= 8 and secret not in self._secrets:
            self._secrets.append(secret)

    def text(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return KEY_SHAPED.sub(REDACTED, text) if "sk-ant-" in text else text

    def value(self, value: Any) -> Any:
        """`value` with every string in it (keys of objects too) redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(key): self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value
