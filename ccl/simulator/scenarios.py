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


def deprovisioning_gap(factory: ActivityFactory) -> Timeline:
    """A member is removed by an admin, and signs in with SSO forty minutes later."""
    admin, leaver = factory.population.people[1], factory.population.people[13]
    return [
        (0.0, factory.make("org_user_deleted", PLACEHOLDER, actor=factory.actor("user_actor", admin),
                           deleted_user_id=leaver.user_id, deleted_user_email=leaver.email)),
        (2400.0, factory.make("sso_login_succeeded", PLACEHOLDER, actor=factory.actor("user_actor", leaver),
                              auth_method="sso", mfa_method="not_used")),
    ]


def compliance_key_exfiltration(factory: ActivityFactory) -> Timeline:
    """The primary owner's session mints a Compliance Access Key that reads 150 chats from abroad, then deletes it."""
    owner = factory.population.people[0]
    key_id = "apikey_01" + random_token(factory.rng)
    scopes = ["read:compliance_activities", "read:compliance_user_data"]
    reader = {"type": "api_actor", "api_key_id": key_id, "ip_address": SUSPICIOUS_ADDRESSES[1][0],
              "user_agent": "python-httpx/0.28.1"}
    timeline: Timeline = [(0.0, factory.make("api_key_created", PLACEHOLDER, actor=factory.actor("user_actor", owner),
                                             api_key_id=key_id, scopes=scopes))]
    for index in range(150):
        chat = "claude_chat_" + random_token(factory.rng)
        timeline.append((300.0 + index * 12.0, factory.make(
            "compliance_api_accessed", PLACEHOLDER, actor=dict(reader), org=False, request_method="GET",
            status_code=200, url=f"https://api.anthropic.com/v1/compliance/apps/chats/{chat}",
            request_id="req_" + random_token(factory.rng))))
    timeline.append((2700.0, factory.make("scoped_api_key_deleted", PLACEHOLDER,
                                          actor=factory.actor("user_actor", owner), api_key_id=key_id,
                                          api_key_name="audit-export", scopes=scopes)))
    return timeline


def second_factor_bypass(factory: ActivityFactory) -> Timeline:
    """An admin switches the magic-link second factor off, then signs in from abroad half an hour later."""
    admin = factory.population.people[4]
    return [
        (0.0, factory.make("org_magic_link_second_factor_toggled", PLACEHOLDER,
                           actor=factory.actor("user_actor", admin), enabled=False)),
        (1800.0, factory.make("sso_login_succeeded", PLACEHOLDER,
                              actor=factory.actor("user_actor", admin, ip=SUSPICIOUS_ADDRESSES[0][0]),
                              auth_method="sso", mfa_method="not_used")),
    ]


def evidence_wipe(factory: ActivityFactory) -> Timeline:
    """An admin cuts the organization's retention to 30 days, then deletes 80 of their chats in 20 minutes."""
    admin = factory.population.people[6]
    actor = factory.actor("user_actor", admin)
    timeline: Timeline = [(0.0, factory.make("claude_organization_settings_updated", PLACEHOLDER, actor=actor,
                                             updates=[{"type": "data_retention_days", "previous_value": 365,
                                                       "current_value": 30}]))]
    for index in range(80):
        chat = "claude_chat_" + random_token(factory.rng)
        timeline.append((60.0 + index * 15.0, factory.make("claude_chat_deleted", PLACEHOLDER, actor=dict(actor),
                                                           claude_chat_id=chat, claude_project_id=None)))
    return timeline


def joiner_mints_credential(factory: ActivityFactory) -> Timeline:
    """An admin generates an invite link; a stranger joins through it and mints an API key and a tunnel token."""
    admin = factory.population.people[8]
    stranger = {"type": "user_actor", "email_address": "it.support.desk@proton.me",
                "user_id": "user_01" + random_token(factory.rng), "ip_address": SUSPICIOUS_ADDRESSES[1][0],
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0"}
    return [
        (0.0, factory.make("org_invite_link_generated", PLACEHOLDER, actor=factory.actor("user_actor", admin))),
        (600.0, factory.make("org_user_invite_accepted", PLACEHOLDER, actor=dict(stranger),
                             invite_id="invite_01" + random_token(factory.rng))),
        (1500.0, factory.make("api_key_created", PLACEHOLDER, actor=dict(stranger),
                              api_key_id="apikey_01" + random_token(factory.rng), scopes=["user:inference"])),
        (1800.0, factory.make("tunnel_token_minted", PLACEHOLDER, actor=dict(stranger),
                              token_id="tnltok_01" + random_token(factory.rng), token_name="laptop")),
    ]


def federation_backdoor(factory: ActivityFactory) -> Timeline:
    """An Admin API key creates a federation rule for every workspace; a foreign workflow authenticates through it."""
    key_actor = {"type": "admin_api_key_actor", "admin_api_key_id": factory.population.admin_key_ids[0],
                 "ip_address": SUSPICIOUS_ADDRESSES[1][0], "user_agent": "python-httpx/0.28.1"}
    workload = {"type": "federated_identity_actor", "issuer": "https://token.actions.githubusercontent.com",
                "subject": "repo:someone-else/tools:ref:refs/heads/main", "audience": ["https://api.anthropic.com"],
                "ip_address": SUSPICIOUS_ADDRESSES[1][0], "user_agent": "python-httpx/0.28.1"}
    return [
        (0.0, factory.make("platform_federation_rule_created", PLACEHOLDER, actor=key_actor,
                           applies_to_all_workspaces=True)),
        (1200.0, factory.make("platform_federated_authentication", PLACEHOLDER, actor=workload)),
    ]


SCENARIOS: dict[str, Callable[[ActivityFactory], Timeline]] = {
    "sso-brute-force": sso_brute_force,
    "owner-transfer": owner_transfer,
    "compliance-off": compliance_off,
    "admin-key-churn": admin_key_churn,
    "impossible-travel": impossible_travel,
    "bulk-chat-access": bulk_chat_access,
    "deprovisioning-gap": deprovisioning_gap,
    "compliance-key-exfiltration": compliance_key_exfiltration,
    "second-factor-bypass": second_factor_bypass,
    "evidence-wipe": evidence_wipe,
    "joiner-mints-credential": joiner_mints_credential,
    "federation-backdoor": federation_backdoor,
}

# The rules each story must raise (a signal of each carries one of the story's activities); the
# story may raise others too. bench/bench_alerts.py and tests/test_scenarios.py check them.
CAUGHT_BY: dict[str, tuple[str, ...]] = {
    "sso-brute-force": ("sso-brute-force-then-success",),
    "owner-transfer": ("primary-owner-transferred",),
    "compliance-off": ("compliance-logging-disabled",),
    "admin-key-churn": ("admin-api-key-short-lived",),
    "impossible-travel": ("impossible-travel-sign-in",),
    "bulk-chat-access": ("bulk-chat-access",),
    "deprovisioning-gap": ("removed-user-signed-in",),
    "compliance-key-exfiltration": ("compliance-access-key-created", "compliance-api-bulk-content-read",
                                    "api-key-short-lived"),
    "second-factor-bypass": ("second-factor-off-then-sign-in", "sso-disabled"),
    "evidence-wipe": ("retention-setting-changed", "mass-content-deletion"),
    "joiner-mints-credential": ("org-opened-to-joiners", "credential-minted-by-new-member"),
    "federation-backdoor": ("federation-trust-added",),
}


def describe() -> dict[str, str]:
    return {name: (function.__doc__ or "").strip() for name, function in SCENARIOS.items()}
