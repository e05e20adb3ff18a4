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


# Every actor type the reference's actor union documents (compliance-api.md, 3.2). The catalog's
# per-type `actor_types` come from the June reference (8 types); a type without that list may have
# any of these.
ACTOR_KINDS = (
    "user_actor", "api_actor", "admin_api_key_actor", "unauthenticated_user_actor", "anthropic_actor",
    "system_actor", "scim_directory_sync_actor", "service_account_actor", "federated_identity_actor",
    "federated_actor", "attested_device_actor",
)
# compliance-api.md 3.1: organization_id and organization_uuid are null "for events not tied to an
# org: sign-in, sign-out, and Compliance API calls" (the simulator sends them so, too).
NULL_ORGANIZATION_CATEGORIES = frozenset({"authentication"})
NULL_ORGANIZATION_TYPES = frozenset({"compliance_api_accessed", "user_logged_out"})


def allowed_actor_kinds(activity_type: str) -> tuple[str, ...]:
    """The actor types the catalog allows for `activity_type`; every documented one when it says none."""
    listed = (activity_types().get(activity_type) or {}).get("actor_types")
    return tuple(listed) if listed else ACTOR_KINDS


def organization_is_null(activity_type: str) -> bool:
    """True when the API sends `organization_id: null` for this type (sign-in, sign-out, API calls)."""
    entry = activity_types().get(activity_type) or {}
    return entry.get("category") in NULL_ORGANIZATION_CATEGORIES or activity_type in NULL_ORGANIZATION_TYPES
