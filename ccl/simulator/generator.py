"""Activities as the real API shapes them: real type names, their documented fields and actors.

Field names, actor types and enum values come from the catalog (activity-types.json); values are
made up but plausible (ids with the documented prefixes, emails of the simulated people).
"""

from __future__ import annotations

import random
import re
from typing import Any

from ccl.content.catalog import activity_types, organization_is_null
from ccl.simulator.population import (
    API_USER_AGENTS,
    ROLES,
    Person,
    Population,
    random_token,
)

# What a working organization does, per hundred activities; every other documented type
# shares a thin tail so that long runs show the whole catalog.
MAIN_MIX = {
    "claude_chat_viewed": 26, "claude_chat_created": 9, "claude_chat_updated": 6, "claude_project_viewed": 6,
    "claude_file_viewed": 4, "claude_file_uploaded": 3, "claude_artifact_viewed": 2, "claude_chat_deleted": 1,
    "claude_project_created": 1, "claude_project_document_uploaded": 1, "claude_artifact_created": 1,
    "sso_login_initiated": 3, "sso_login_succeeded": 3, "magic_link_login_initiated": 0.6,
    "magic_link_login_succeeded": 0.5, "social_login_succeeded": 0.4, "user_logged_out": 1.2,
    "sso_login_failed": 0.2, "magic_link_login_failed": 0.1,
    "org_users_listed": 0.4, "org_user_viewed": 0.3, "platform_workspace_members_listed": 0.3,
    "platform_usage_report_messages_viewed": 0.2, "platform_usage_report_claude_code_viewed": 0.2,
    "org_user_invite_sent": 0.15, "org_user_invite_accepted": 0.12, "claude_user_role_updated": 0.05,
    "role_assignment_granted": 0.05, "role_assignment_revoked": 0.03, "scim_user_created": 0.08,
    "scim_user_updated": 0.15, "scim_user_deleted": 0.03, "api_key_created": 0.05, "platform_api_key_created": 0.05,
    "platform_api_key_updated": 0.04, "scoped_api_key_deleted": 0.02, "admin_api_key_created": 0.01,
    "claude_organization_settings_updated": 0.03, "platform_workspace_member_added": 0.05,
    "claude_skill_created": 0.05, "mcp_server_created": 0.02, "claude_artifact_sharing_updated": 0.05,
}
TAIL_WEIGHT = 0.004

ID_PREFIXES = {
    "claude_chat_id": "claude_chat_", "claude_project_id": "claude_proj_", "claude_file_id": "claude_file_",
    "claude_project_document_id": "claude_proj_doc_", "claude_artifact_version_id": "claude_artifact_version_",
    "workspace_id": "wrkspc_", "session_id": "session_", "thread_id": "thread_", "dream_id": "drm_",
    "api_key_id": "apikey_", "admin_api_key_id": "adminkey_", "service_account_id": "svcacct_",
}
_QUOTED = re.compile(r'"([^"]+)"')


class ActivityFactory:
    def __init__(self, population: Population, rng: random.Random):
        self.population = population
        self.rng = rng
        catalog = activity_types()
        self._types = list(catalog)
        self._weights = [MAIN_MIX.get(name, TAIL_WEIGHT) for name in self._types]
        self._chats = [ID_PREFIXES["claude_chat_id"] + random_token(rng) for _ in range(400)]
        self._projects = [ID_PREFIXES["claude_project_id"] + random_token(rng) for _ in range(40)]

    def random_type(self) -> str:
        return self.rng.choices(self._types, weights=self._weights)[0]

    def new_id(self) -> str:
        return "activity_01" + random_token(self.rng, 22)

    def make(self, activity_type: str, created_at: str, *, actor: dict[str, Any] | None = None,
             person: Person | None = None, org: bool | None = None, **fields: Any) -> dict[str, Any]:
        """One activity of `activity_type`; `fields` override the generated type-specific values."""
        entry = activity_types().get(activity_type, {})
        person = person or self.population.person()
        if actor is None:
            actor = self.actor(self._pick_actor_type(entry), person)
        with_org = org if org is not None else not organization_is_null(activity_type)
        chosen_org = self.population.org()
        activity: dict[str, Any] = {
            "id": self.new_id(),
            "created_at": created_at,
            "organization_id": chosen_org.org_id if with_org else None,
            "organization_uuid": chosen_org.org_uuid if with_org else None,
            "actor": actor,
            "type": activity_type,
        }
        details = entry.get("fields_detail") or {}
        for name in entry.get("fields", []):
            optional = details.get(name, "").startswith("optional")
            if optional and self.rng.random() < 0.15:
                continue
            activity[name] = self._value(name, details.get(name, "string"), person)
        activity.update(self._specifics(activity_type, person))
        activity.update(fields)
        return activity

    # -- actors ------------------------------------------------------------------------------

    def _pick_actor_type(self, entry: dict[str, Any]) -> str:
        allowed = entry.get("actor_types") or ["user_actor"]
        if "user_actor" in allowed and self.rng.random() < 0.85:
            return "user_actor"
        return self.rng.choice(allowed)

    def actor(self, actor_type: str, person: Person, ip: str | None = None) -> dict[str, Any]:
        rng, pop = self.rng, self.population
        ip = ip or person.home_ip
        if actor_type == "user_actor":
            return {"type": "user_actor", "email_address": person.email, "user_id": person.user_id,
                    "ip_address": ip, "user_agent": person.user_agent}
        if actor_type == "api_actor":
            return {"type": "api_actor", "api_key_id": rng.choice(pop.api_key_ids), "ip_address": ip,
                    "user_agent": rng.choice(API_USER_AGENTS)}
        if actor_type == "admin_api_key_actor":
            return {"type": "admin_api_key_actor", "admin_api_key_id": rng.choice(pop.admin_key_ids),
                    "ip_address": ip, "user_agent": rng.choice(API_USER_AGENTS)}
        if actor_type == "unauthenticated_user_actor":
            return {"type": "unauthenticated_user_actor", "ip_address": ip, "user_agent": person.user_agent,
                    "unauthenticated_email_address": person.email if rng.random() < 0.7 else None}
        if actor_type == "anthropic_actor":
            return {"type": "anthropic_actor", "email_address": None}
        if actor_type == "system_actor":
            return {"type": "system_actor", "service": rng.choice(["memory-migration", "retention-sweeper", None])}
        if actor_type == "scim_directory_sync_actor":
            return {"type": "scim_directory_sync_actor", "directory_id": pop.directory_id,
                    "workos_event_id": "event_01" + random_token(rng),
                    "idp_connection_type": rng.choice(["OktaSCIMV2", "AzureSCIMV2", None])}
        if actor_type == "service_account_actor":
            return {"type": "service_account_actor", "service_account_id": rng.choice(pop.service_account_ids),
                    "ip_address": ip, "user_agent": rng.choice(API_USER_AGENTS)}
        if actor_type == "federated_identity_actor":
            return {"type": "federated_identity_actor", "issuer": "https://token.actions.githubusercontent.com",
                    "subject": "repo:acme/infra:ref:refs/heads/main", "audience": ["https://api.anthropic.com"],
                    "ip_address": ip, "user_agent": rng.choice(API_USER_AGENTS)}
        if actor_type == "federated_actor":
            return {"type": "federated_actor",
                    "provider": {"type": "aws", "account_id": "123456789012",
                                 "signed_principal": "arn:aws:iam::123456789012:role/claude-batch"},
                    "subject": None, "ip_address": ip, "user_agent": rng.choice(API_USER_AGENTS)}
        if actor_type == "attested_device_actor":
            return {"type": "attested_device_actor", "external_client_id": "com.anthropic.claude",
                    "kid_hash": random_token(rng, 32), "ip_address": ip, "user_agent": person.user_agent}
        return {"type": actor_type}

    # -- fields ------------------------------------------------------------------------------

    def _value(self, name: str, kind: str, person: Person) -> Any:
        rng = self.rng
        choices = _QUOTED.findall(kind)
        if choices and "object" not in kind:
            return rng.choice(choices)
        if name in ("filename", "title"):
            return None  # blank on every file/document/artifact activity since 2026-09-24
        if "array of object" in kind:
            return [{"type": "name", "previous_value": "old", "current_value": "new"}]
        if "map" in kind:
            return {}
        if "array" in kind:
            return ["read:compliance_activities"] if name == "scopes" else ["item_01" + random_token(rng, 10)]
        if "boolean" in kind:
            return rng.random() < 0.5
        if "number" in kind:
            return rng.randint(1, 500)
        if name.endswith("email") or name.endswith("_email_address"):
            return self.population.person().email
        if name == "user_id":
            return self.population.person().user_id
        if name.endswith("_role") or name == "role":
            return rng.choice(ROLES)
        if name == "claude_chat_id":
            return rng.choice(self._chats)
        if name == "claude_project_id":
            return rng.choice(self._projects)
        if name.endswith("_id"):
            prefix = ID_PREFIXES.get(name, name[:-3] + "_")
            return prefix + "01" + random_token(rng, 20)
        return f"{name}-{random_token(rng, 6).lower()}"

    def _specifics(self, activity_type: str, person: Person) -> dict[str, Any]:
        """Values that must agree with each other or with the type's meaning."""
        rng = self.rng
        if activity_type in ("sso_login_succeeded", "sso_login_initiated"):
            return {"auth_method": "sso", "mfa_method": "not_used"} if activity_type == "sso_login_succeeded" else {}
        if activity_type == "magic_link_login_succeeded":
            return {"auth_method": "magic_link", "mfa_method": "not_used"}
        if activity_type == "social_login_succeeded":
            return {"auth_method": "social", "mfa_method": "not_used",
                    "provider": rng.choice(["google", "apple", "microsoft"])}
        if activity_type == "claude_user_role_updated":
            target = self.population.person()
            previous = target.role if target.role != "primary_owner" else "user"
            return {"user_id": target.user_id, "user_email": target.email, "previous_role": previous,
                    "current_role": rng.choice([r for r in ROLES if r != previous])}
        if activity_type == "org_user_invite_sent":
            return {"invited_email": f"new.hire{rng.randint(1, 999)}@acme.example",
                    "invited_role": rng.choice(["user", "user", "user", "developer", "admin"])}
        if activity_type == "org_compliance_api_settings_updated":
            return {"compliance_api_enabled": True, "compliance_api_logging_enabled": True}
        if activity_type == "org_sso_toggled":
            return {"enabled": True}
        return {}
