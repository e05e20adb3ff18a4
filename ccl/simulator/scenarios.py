"""Named attack stories, placed on the simulated timeline for the detections to find.

Each scenario returns (seconds_offset, activity) pairs; the simulator places them so that the
story ends a few minutes before it starts serving, inside the collector's default first window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ccl.simulator.generator import ActivityFactory
from ccl.simulator.population import SUSPICIOUS_ADDRESSES, random_token

Timeline = list[tuple[float, dict[str, Any]]]
# The story's activities are made with a placeholder time; the simulator stamps the real one.
PLACEHOLDER = "1970-01-01T00:00:00.000000Z"


def sso_brute_force(factory: ActivityFactory) -> Timeline:
    """Fifteen failed SSO sign-ins from one foreign address, then a success from the same address."""
    victim = factory.population.people[3]
    attacker_ip = SUSPICIOUS_ADDRESSES[0][0]
    agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
    unauthenticated = {"type": "unauthenticated_user_actor", "ip_address": attacker_ip, "user_agent": agent,
                       "unauthenticated_email_address": victim.email}
    timeline: Timeline = []
    for attempt in range(15):
        timeline.append((attempt * 9.0, factory.make("sso_login_failed", PLACEHOLDER, actor=dict(unauthenticated))))
    signed_in = {"type": "user_actor", "email_address": victim.email, "user_id": victim.user_id,
                 "ip_address": attacker_ip, "user_agent": agent}
    timeline.append((140.0, factory.make("sso_login_initiated", PLACEHOLDER, actor=dict(unauthenticated))))
    timeline.append((142.0, factory.make("sso_login_succeeded", PLACEHOLDER, actor=signed_in)))
    return timeline


def owner_transfer(factory: ActivityFactory) -> Timeline:
    """A freshly promoted admin becomes primary owner."""
    owner, successor = factory.population.people[0], factory.population.people[5]
    owner_actor = factory.actor("user_actor", owner)
    return [
        (0.0, factory.make("claude_user_role_updated", PLACEHOLDER, actor=owner_actor, user_id=successor.user_id,
                           user_email=successor.email, previous_role="user", current_role="admin")),
        (300.0, factory.make("primary_owner_transferred", PLACEHOLDER, actor=dict(owner_actor),
                             previous_owner_id=owner.user_id, new_owner_id=successor.user_id)),
    ]


def compliance_off(factory: ActivityFactory) -> Timeline:
    """An admin switches compliance logging off: nothing is recorded from then on."""
    admin = factory.population.people[7]
    return [(0.0, factory.make("org_compliance_api_settings_updated", PLACEHOLDER,
                               actor=factory.actor("user_actor", admin), compliance_api_enabled=True,
                               compliance_api_logging_enabled=False))]


def admin_key_churn(factory: ActivityFactory) -> Timeline:
    """An Admin API key created by someone who never made one, used, and deleted twenty minutes later."""
    creator = factory.population.people[11]
    key_id = "adminkey_01" + random_token(factory.rng)
    actor = factory.actor("user_actor", creator)
    key_actor = {"type": "admin_api_key_actor", "admin_api_key_id": key_id, "ip_address": SUSPICIOUS_ADDRESSES[1][0],
                 "user_agent": "python-httpx/0.28.1"}
    return [
        (0.0, factory.make("admin_api_key_created", PLACEHOLDER, actor=actor, admin_api_key_id=key_id,
                           scopes=["api:admin"])),
        (240.0, factory.make("org_users_listed", PLACEHOLDER, actor=key_actor)),
        (300.0, factory.make("platform_workspace_member_added", PLACEHOLDER, actor=dict(key_actor),
                             user_id=creator.user_id, workspace_id=factory.population.workspaces[0])),
        (1200.0, factory.make("admin_api_key_deleted", PLACEHOLDER, actor=dict(actor), admin_api_key_id=key_id)),
    ]


def impossible_travel(factory: ActivityFactory) -> Timeline:
    """One person signs in from London, then from Changchun twenty minutes later."""
    person = factory.population.people[2]
    return [
        (0.0, factory.make("sso_login_succeeded", PLACEHOLDER,
                           actor=factory.actor("user_actor", person, ip="81.2.69.142"))),
        (1200.0, factory.make("sso_login_succeeded", PLACEHOLDER,
                              actor=factory.actor("user_actor", person, ip=SUSPICIOUS_ADDRESSES[0][0]))),
    ]


def bulk_chat_access(factory: ActivityFactory) -> Timeline:
    """One person opens 150 distinct chats in ten minutes."""
    person = factory.population.people[9]
    actor = factory.actor("user_actor", person)
    return [
        (index * 4.0, factory.make("claude_chat_viewed", PLACEHOLDER, actor=dict(actor),
                                   claude_chat_id="claude_chat_" + random_token(factory.rng)))
        for index in range(150)
    ]


SCENARIOS: dict[str, Callable[[ActivityFactory], Timeline]] = {
    "sso-brute-force": sso_brute_force,
    "owner-transfer": owner_transfer,
    "compliance-off": compliance_off,
    "admin-key-churn": admin_key_churn,
    "impossible-travel": impossible_travel,
    "bulk-chat-access": bulk_chat_access,
}


def describe() -> dict[str, str]:
    return {name: (function.__doc__ or "").strip() for name, function in SCENARIOS.items()}
