"""The catalog of the 514 documented activity types (shipped as package data)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def activity_types() -> dict[str, dict[str, Any]]:
    """Every documented type by name, with its fields, actor types and description."""
    raw = resources.files("ccl").joinpath("data/activity-types.json").read_text(encoding="utf-8")
    return {entry["type"]: entry for entry in json.loads(raw)}


def is_known(activity_type: str) -> bool:
    return activity_type in activity_types()
