"""Realistic actors of every kind the API documents, for test activities and the actor matrix.

Each kind carries exactly the fields the reference gives it (compliance-api.md 3.2): an
`anthropic_actor` has only a null email, a `scim_directory_sync_actor` no address, and so on, so a
rule tested with them meets what production sends. Values use the documented id prefixes and
addresses of MaxMind's test database (so GeoIP resolves in tests).
"""

from __future__ import annotations

import copy
from typing import Any

from ccl.content.catalog import allowed_actor_kinds

BROWSER = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/148.0.0.0 Safari/537.36")
SCRIPT = "python-httpx/0.28.1"
PEOPLE = ("alice", "bob", "carol", "dave")
ADDRESSES = ("81.2.69.142", "2.125.160.216", "89.160.20.112", "216.160.83.56")


def example_actor(kind: str, variant: int = 0) -> dict[str, Any]:
    """An actor of `kind` as the API sends it; `variant` gives another actor of the same kind."""
    person = PEOPLE[variant % len(PEOPLE)]
    suffix = f"{variant + 1:02d}"
    address = ADDRESSES[variant % len(ADDRESSES)]
    actors: dict[str, dict[str, Any]] = {
        "user_actor": {"email_address": f"{person}@example.com",
                       "user_id": f"user_01{person.upper():0<21}", "ip_address": address,
                       "user_agent": BROWSER},
        "api_actor": {"api_key_id": f"apikey_01TESTAPIKEY0000000000{suffix}", "ip_address": address,
                      "user_agent": SCRIPT},
        "admin_api_key_actor": {"admin_api_key_id": f"adminkey_01TESTADMINKEY00000000{suffix}",
                                "ip_address": address, "user_agent": SCRIPT},
        "unauthenticated_user_actor": {"ip_address": address, "user_agent": BROWSER,
                                       "unauthenticated_email_address": f"{person}@example.com"},
        "anthropic_actor": {"email_address": None},
        "system_actor": {"service": "memory-migration"},
        "scim_directory_sync_actor": {"directory_id": f"directory_01TESTDIRECTORY00000000{suffix}",
                                      "workos_event_id": f"event_01TESTWORKOSEVENT0000000{suffix}",
                                      "idp_connection_type": "OktaSCIMV2"},
        "service_account_actor": {"service_account_id": f"svcacct_01TESTSERVICEACCT000000{suffix}",
                                  "ip_address": address, "user_agent": SCRIPT},
        "federated_identity_actor": {"issuer": "https://token.actions.githubusercontent.com",
                                     "subject": f"repo:acme/infra-{suffix}:ref:refs/heads/main",
                                     "audience": ["https://api.anthropic.com"], "ip_address": address,
                                     "user_agent": SCRIPT},
        "federated_actor": {"provider": {"type": "aws", "account_id": "123456789012",
                                         "signed_principal": f"arn:aws:iam::123456789012:role/claude-batch-{suffix}"},
                            "subject": None, "ip_address": address, "user_agent": SCRIPT},
        "attested_device_actor": {"external_client_id": "com.anthropic.claude",
                                  "kid_hash": f"{variant:02x}" + "5f1c0d9a7e3b2c4d6e8f0a1b2c3d4e5f"[2:],
                                  "ip_address": address, "user_agent": BROWSER},
    }
    fields = actors.get(kind, {})
    return {"type": kind, **copy.deepcopy(fields)}


def default_actor_kind(activity_type: str) -> str:
    """The actor a test activity of this type gets when it names none: a user where allowed."""
    allowed = allowed_actor_kinds(activity_type)
    return "user_actor" if "user_actor" in allowed else allowed[0]


def actor_for(activity_type: str, spec: Any) -> dict[str, Any]:
    """The actor of a test activity: a kind's name, a partial actor merged onto one, or the default."""
    if isinstance(spec, str):
        return example_actor(spec)
    if isinstance(spec, dict):
        kind = spec.get("type") or default_actor_kind(activity_type)
        return {**example_actor(str(kind)), **copy.deepcopy(spec)}
    return example_actor(default_actor_kind(activity_type))
