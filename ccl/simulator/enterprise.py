"""The `enterprise` profile: the benign days of a 5,000-person organization, to measure alert noise.

The rates below are written down before any rule is tuned against them (the README repeats them).
A *working day* is Monday to Friday; on it 90% of people work, from a local start between 08:00 and
10:00 for 7 to 10 hours. On weekends 5% of people work a short session at a tenth of the rates.

Per working person and day (Poisson means): 1.3 sign-in sessions (SSO 92%, magic link 6%, social 2%;
3% of sessions start with one or two mistyped attempts), 0.3 sign-outs, 5 chats created, 18 chat
views (their own recent chats), 6 chat updates, 0.15 chat deletions, 2.5 project views, 0.3
project-document views, 0.15 project-document uploads, 0.8 file uploads, 1.5 file views, 0.4
artifacts created, 0.8 artifact views, 0.05 integration connections.

The organization, per working day: 3 hires (SCIM create + an accepted invite), 2 departures (SCIM
delete, logged again as `org_user_deleted` by Anthropic's processing of it; the leaver, never one of
the admins, does not work that day or after), 12 SCIM updates, 1 invite sent by an
admin, 1 API key created by a developer, 0.5 role changes (1 in 20 to admin), 0.4 settings
changes, 0.2 MCP servers added; per month: 1 Admin API key created (and kept), 1 data export.
Every 15 s, day and night, the collector's own key reads the Compliance API (`compliance_api_accessed`),
and a SIEM audit key does so 24 times a day.

Where people are: six offices behind shared NAT addresses (London, Linköping, Milton, San Diego,
Singapore, Melbourne, all answered by MaxMind's test database), 60% of working days in the office,
otherwise from home (an address in the office's country, or one no GeoIP database knows). 1% of people
use a corporate VPN whose exit is in Singapore for a third of their sessions (the same hop every
time); 0.1% of people a day start a 2-5 day trip to another office (a day without activity on the way
out and on the way back: never faster than a plane).
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ccl.simulator.generator import ActivityFactory
from ccl.simulator.population import ALPHABET, API_USER_AGENTS, USER_AGENTS, Org, Person, Population

# random_token() draws one character at a time, which dominates the cost of 180,000 activities a day;
# bytes.translate maps random bytes onto the same alphabet in C (a slight bias is harmless here).
_TOKEN_TABLE = bytes(ord(ALPHABET[byte % len(ALPHABET)]) for byte in range(256))


def random_token(rng: random.Random, length: int = 24) -> str:
    return rng.randbytes(length).translate(_TOKEN_TABLE).decode()


class _FastFactory(ActivityFactory):
    def new_id(self) -> str:
        return "activity_01" + random_token(self.rng, 22)

DAY = 86400.0
EARLIEST_START_BEFORE_DAY = 3 * 3600.0  # Melbourne (UTC+10) starts at 08:00 local = 22:00 UTC
PEOPLE = 5000


@dataclass(frozen=True)
class Office:
    name: str
    nat: tuple[str, ...]  # the shared addresses everyone in the office appears behind
    home_prefix: str  # addresses of people working from home in that country (same GeoIP answer)
    utc_offset: int  # hours
    share: float


# Networks from MaxMind's GeoIP2-City test database (see ccl/vector/maxmind_testdb.py), so GeoIP answers.
OFFICES = (
    Office("London", ("81.2.69.160", "81.2.69.161"), "81.2.69.1", 0, 0.40),
    Office("Linköping", ("89.160.20.129",), "89.160.20.1", 1, 0.10),
    Office("Milton", ("216.160.83.57", "216.160.83.58"), "216.160.83.6", -8, 0.20),
    Office("San Diego", ("214.78.120.1",), "214.78.121.", -8, 0.15),
    Office("Singapore", ("214.0.0.1",), "214.0.0.", 8, 0.10),
    Office("Melbourne", ("214.0.1.1",), "214.0.1.", 10, 0.05),
)
VPN_EXIT = "214.0.0.200"  # Singapore
UNLOCATED_PREFIXES = ("192.0.2.", "198.51.100.", "203.0.113.")  # documentation ranges: no GeoIP answer

PERSON_DAY = {
    "chat_created": 5.0, "chat_viewed": 18.0, "chat_updated": 6.0, "chat_deleted": 0.15,
    "project_viewed": 2.5, "project_document_viewed": 0.3, "project_document_uploaded": 0.15,
    "file_uploaded": 0.8, "file_viewed": 1.5, "artifact_created": 0.4, "artifact_viewed": 0.8,
    "integration_connected": 0.05, "logout": 0.3,
}
SESSIONS_PER_DAY = 1.3
ORG_WORKDAY = {"hire": 3.0, "departure": 2.0, "scim_update": 12.0, "invite": 1.0, "api_key": 1.0,
               "role_change": 0.5, "settings": 0.4, "mcp_server": 0.2}
ORG_MONTH = {"admin_key": 1.0, "data_export": 1.0}
COLLECTOR_POLL_SECONDS = 15.0
AUDIT_READS_PER_DAY = 24
SETTING_TYPES = ("default_model", "claude_code_enabled", "artifacts_enabled", "web_search_enabled")


@dataclass
class Employee:
    person: Person
    office: Office
    home_ip: str
    vpn: bool
    developer: bool
    chats: list[str] = field(default_factory=list)
    trip: tuple[float, float, Office] | None = None  # (from, until, where)
    departed: bool = False  # removed from the organization: no activity from the departure day on


class EnterprisePopulation(Population):
    """One organization of `people` employees spread over the offices."""

    def __init__(self, rng: random.Random, people: int = PEOPLE):
        super().__init__(rng, people=0)
        self.orgs = [Org("org_01" + random_token(rng), _uuid(rng), "globex")]
        shares = [office.share for office in OFFICES]
        self.employees: list[Employee] = []
        for index in range(people):
            office = rng.choices(OFFICES, weights=shares)[0]
            user_id = "user_01" + random_token(rng)
            email = f"employee{index:05d}@globex.example"
            role = "primary_owner" if index == 0 else ("admin" if index < 12 else rng.choice(
                ["user"] * 18 + ["developer", "membership_admin"]))
            home = (office.home_prefix + str(rng.randint(2, 126)) if office.home_prefix.endswith(".")
                    else office.home_prefix + str(rng.randint(0, 9)))
            if rng.random() < 0.25:
                home = rng.choice(UNLOCATED_PREFIXES) + str(rng.randint(1, 254))
            person = Person(user_id, email, role, home, rng.choice(USER_AGENTS))
            self.people.append(person)
            self.employees.append(Employee(person, office, home, vpn=rng.random() < 0.01,
                                           developer=role == "developer" or rng.random() < 0.08))
        self.admins = [employee for employee in self.employees if employee.person.role in ("admin", "primary_owner")]
        self.developers = [employee for employee in self.employees if employee.developer]
        self.collector_key = self.api_key_ids[0]
        self.audit_key = self.api_key_ids[1]

    def person(self) -> Person:
        return self.rng.choice(self.people)  # uniform: a weighted pick over 5,000 people is too slow

    def org(self) -> Org:
        return self.orgs[0]


class EnterpriseProfile:
    """Day after day of benign activity, in time order, from `start` (an epoch, aligned to a UTC day)."""

    def __init__(self, seed: int = 0, people: int = PEOPLE):
        self.seed = seed
        self.rng = random.Random(seed)
        self.population = EnterprisePopulation(self.rng, people)
        self.factory = _FastFactory(self.population, self.rng)
        self.projects = ["claude_proj_01" + random_token(self.rng) for _ in range(max(10, people // 10))]

    def activities(self, start: float, until: float | None = None) -> Iterator[dict[str, Any]]:
        """Activities with `start <= created_at < until` (forever without `until`), oldest first.

        A day's sessions run into the next UTC day (Milton works until 04:00 UTC) and begin before it
        (Melbourne from 22:00 UTC the day before), so days are merged through a heap: what is older
        than the earliest moment the next day can produce is final.
        """
        day_start = math.floor(start / DAY) * DAY - DAY
        pending: list[tuple[float, int, dict[str, Any]]] = []
        counter = 0
        while True:
            for moment, activity in self.day(day_start):
                heapq.heappush(pending, (moment, counter, activity))
                counter += 1
            day_start += DAY
            final = day_start - EARLIEST_START_BEFORE_DAY
            while pending and pending[0][0] < final:
                moment, _, activity = heapq.heappop(pending)
                if until is not None and moment >= until:
                    return
                if moment >= start:
                    yield activity

    def day(self, day_start: float) -> list[tuple[float, dict[str, Any]]]:
        """One UTC day of activity, sorted by time; the same day always gives the same activities."""
        self.rng.seed(f"{self.seed}:{int(day_start)}")
        working_day = datetime.fromtimestamp(day_start, UTC).weekday() < 5
        events: list[tuple[float, dict[str, Any]]] = []
        leavers = self._leavers() if working_day else []
        for employee in self.population.employees:
            if not employee.departed:
                self._person_day(employee, day_start, working_day, events)
        self._organization_day(day_start, working_day, leavers, events)
        self._machine_reads(day_start, events)
        events.sort(key=lambda item: item[0])
        return events

    # -- people ------------------------------------------------------------------------------

    def _person_day(self, employee: Employee, day_start: float, working_day: bool,
                    events: list[tuple[float, dict[str, Any]]]) -> None:
        rng = self.rng
        if rng.random() >= (0.9 if working_day else 0.05):
            return
        scale = 1.0 if working_day else 0.1
        office = self._where(employee, day_start)
        if office is None:
            return
        local_start = rng.uniform(8, 10) - office.utc_offset
        begin = day_start + local_start * 3600
        length = rng.uniform(7, 10) * 3600 * (1.0 if working_day else 0.3)
        in_office = office is not employee.office or rng.random() < 0.6
        ip = rng.choice(office.nat) if in_office else employee.home_ip
        sessions = 1 + _poisson(rng, SESSIONS_PER_DAY - 1)  # everyone who works signs in once
        for number in range(sessions):
            moment = begin + (length * number / sessions if number else 0.0)
            session_ip = VPN_EXIT if employee.vpn and rng.random() < 1 / 3 else ip
            self._sign_in(employee, moment, session_ip, events)
        actor = self.factory.actor("user_actor", employee.person, ip=ip)
        for kind, mean in PERSON_DAY.items():
            for _ in range(_poisson(rng, mean * scale)):
                moment = begin + 60 + rng.random() * length
                activity = self._person_activity(kind, employee, dict(actor), moment)
                if activity is not None:
                    events.append((moment, activity))

    def _where(self, employee: Employee, day_start: float) -> Office | None:
        """Where the employee works today; None on the days they fly out and back."""
        rng = self.rng
        if employee.trip and day_start > employee.trip[1]:
            employee.trip = None
        if employee.trip is None and rng.random() < 0.001:
            destination = rng.choice([office for office in OFFICES if office is not employee.office])
            employee.trip = (day_start + 2 * DAY, day_start + DAY * rng.randint(4, 7), destination)
        if employee.trip is None:
            return employee.office
        arrival, departure, destination = employee.trip
        if day_start < arrival:
            return None if day_start >= arrival - DAY else employee.office
        return None if day_start >= departure else destination

    def _sign_in(self, employee: Employee, moment: float, ip: str,
                 events: list[tuple[float, dict[str, Any]]]) -> None:
        rng, person = self.rng, employee.person
        method = rng.choices(["sso", "magic_link", "social"], weights=[92, 6, 2])[0]
        unauthenticated = {"type": "unauthenticated_user_actor", "ip_address": ip, "user_agent": person.user_agent,
                           "unauthenticated_email_address": person.email}
        signed_in = self.factory.actor("user_actor", person, ip=ip)
        initiated = {"sso": "sso_login_initiated", "magic_link": "magic_link_login_initiated"}.get(method)
        failed = {"sso": "sso_login_failed", "magic_link": "magic_link_login_failed"}.get(method)
        offset = 0.0
        if failed and rng.random() < 0.03:
            for _ in range(rng.randint(1, 2)):
                events.append((moment + offset, self._make(failed, moment + offset, dict(unauthenticated))))
                offset += rng.uniform(5, 40)
        if initiated:
            events.append((moment + offset, self._make(initiated, moment + offset, dict(unauthenticated))))
            offset += rng.uniform(2, 20)
        events.append((moment + offset, self._make(f"{method}_login_succeeded", moment + offset, signed_in)))

    def _person_activity(self, kind: str, employee: Employee, actor: dict[str, Any],
                         moment: float) -> dict[str, Any] | None:
        rng = self.rng
        project = rng.choice(self.projects)
        if kind == "chat_created":
            chat = "claude_chat_01" + random_token(rng)
            employee.chats.append(chat)
            del employee.chats[:-50]  # people come back to their recent chats
            return self._make("claude_chat_created", moment, actor, claude_chat_id=chat)
        if kind in ("chat_viewed", "chat_updated", "chat_deleted"):
            if not employee.chats:
                employee.chats.append("claude_chat_01" + random_token(rng))
            return self._make(f"claude_{kind}", moment, actor, claude_chat_id=rng.choice(employee.chats))
        if kind == "project_viewed":
            return self._make("claude_project_viewed", moment, actor, claude_project_id=project)
        if kind.startswith("project_document"):
            return self._make(f"claude_{kind}", moment, actor, claude_project_id=project,
                              claude_project_document_id="claude_proj_doc_01" + random_token(rng))
        if kind in ("file_uploaded", "file_viewed", "artifact_created", "artifact_viewed"):
            return self._make(f"claude_{kind}", moment, actor)
        if kind == "integration_connected":
            return self._make("integration_user_connected", moment, actor,
                              integration_type=rng.choice(["google_drive", "github", "slack", "gmail"]))
        if kind == "logout":
            return self._make("user_logged_out", moment, actor)
        return None

    # -- the organization --------------------------------------------------------------------

    def _leavers(self) -> list[Employee]:
        """Today's departures, chosen before anyone works: a removed account does not sign in again."""
        staying = [employee for employee in self.population.employees
                   if not employee.departed and employee.person.role not in ("admin", "primary_owner")]
        leavers = self.rng.sample(staying, min(len(staying), _poisson(self.rng, ORG_WORKDAY["departure"])))
        for employee in leavers:
            employee.departed = True
        return leavers

    def _organization_day(self, day_start: float, working_day: bool, leavers: list[Employee],
                          events: list[tuple[float, dict[str, Any]]]) -> None:
        if not working_day:
            return
        rng, population = self.rng, self.population
        scim = {"type": "scim_directory_sync_actor", "directory_id": population.directory_id,
                "idp_connection_type": "OktaSCIMV2"}

        def office_hours() -> float:
            return day_start + rng.uniform(8, 18) * 3600

        def admin_actor() -> dict[str, Any]:
            admin = rng.choice(population.admins)
            return self.factory.actor("user_actor", admin.person, ip=admin.office.nat[0])

        def add(moment: float, activity_type: str, actor: dict[str, Any], **fields: Any) -> None:
            events.append((moment, self._make(activity_type, moment, actor, **fields)))

        for _ in range(_poisson(rng, ORG_WORKDAY["hire"])):
            moment, user_id = office_hours(), "user_01" + random_token(rng)
            add(moment, "scim_user_created", _scim(scim, rng), user_id=user_id)
            joiner = Person(user_id, f"new.{random_token(rng, 6).lower()}@globex.example", "user",
                            rng.choice(OFFICES).nat[0], rng.choice(USER_AGENTS))
            add(moment + rng.uniform(600, 7200), "org_user_invite_accepted",
                self.factory.actor("user_actor", joiner), invite_id="invite_01" + random_token(rng))
        for employee in leavers:
            moment, leaver = office_hours(), employee.person
            add(moment, "scim_user_deleted", _scim(scim, rng), user_id=leaver.user_id)
            # The catalogue does not allow a SCIM actor on org_user_deleted: the membership removal that
            # follows a directory delete is Anthropic's processing of it.
            add(moment + rng.uniform(0.5, 3), "org_user_deleted", {"type": "anthropic_actor", "email_address": None},
                deleted_user_id=leaver.user_id, deleted_user_email=leaver.email)
        for _ in range(_poisson(rng, ORG_WORKDAY["scim_update"])):
            add(office_hours(), "scim_user_updated", _scim(scim, rng), user_id=rng.choice(population.people).user_id)
        for _ in range(_poisson(rng, ORG_WORKDAY["invite"])):
            add(office_hours(), "org_user_invite_sent", admin_actor(),
                invited_email=f"contractor.{random_token(rng, 5).lower()}@globex.example", invited_role="user")
        for _ in range(_poisson(rng, ORG_WORKDAY["api_key"])):
            developer = rng.choice([employee for employee in population.developers if not employee.departed])
            add(office_hours(), "api_key_created", self.factory.actor("user_actor", developer.person,
                                                                        ip=developer.office.nat[0]),
                api_key_id="apikey_01" + random_token(rng), scopes=["user:inference"])
        for _ in range(_poisson(rng, ORG_WORKDAY["role_change"])):
            target = rng.choice(population.employees).person
            current = "admin" if rng.random() < 0.05 else "developer"
            add(office_hours(), "claude_user_role_updated", admin_actor(), user_id=target.user_id,
                user_email=target.email, previous_role="user", current_role=current)
        for _ in range(_poisson(rng, ORG_WORKDAY["settings"])):
            setting = rng.choice(SETTING_TYPES)
            add(office_hours(), "claude_organization_settings_updated", admin_actor(),
                updates=[{"type": setting, "previous_value": "a", "current_value": "b"}])
        for _ in range(_poisson(rng, ORG_WORKDAY["mcp_server"])):
            add(office_hours(), "mcp_server_created", admin_actor(), mcp_server_id="mcpsrv_01" + random_token(rng),
                mcp_server_name=rng.choice(["jira", "confluence", "github", "linear", "sentry"]))
        monthly = {name: mean / 21.0 for name, mean in ORG_MONTH.items()}
        if rng.random() < monthly["admin_key"]:
            add(office_hours(), "admin_api_key_created", admin_actor(),
                admin_api_key_id="adminkey_01" + random_token(rng), scopes=["api:admin"])
        if rng.random() < monthly["data_export"]:
            add(office_hours(), "org_data_export_started", admin_actor())

    def _machine_reads(self, day_start: float, events: list[tuple[float, dict[str, Any]]]) -> None:
        rng, population = self.rng, self.population
        collector = {"type": "api_actor", "api_key_id": population.collector_key, "ip_address": "81.2.69.150",
                     "user_agent": "python-httpx/0.28.1"}
        audit = {"type": "api_actor", "api_key_id": population.audit_key, "ip_address": "216.160.83.60",
                 "user_agent": API_USER_AGENTS[2]}
        polls = int(DAY / COLLECTOR_POLL_SECONDS)
        for number in range(polls):
            moment = day_start + number * COLLECTOR_POLL_SECONDS + rng.random()
            events.append((moment, self._compliance_read(collector, moment)))
        for number in range(AUDIT_READS_PER_DAY):
            moment = day_start + number * 3600 + rng.uniform(0, 60)
            events.append((moment, self._compliance_read(audit, moment)))

    def _compliance_read(self, actor: dict[str, Any], moment: float) -> dict[str, Any]:
        return self._make("compliance_api_accessed", moment, dict(actor), request_method="GET", status_code=200,
                          url="https://api.anthropic.com/v1/compliance/activities?limit=5000",
                          request_id="req_01" + random_token(self.rng))

    def _make(self, activity_type: str, moment: float, actor: dict[str, Any], **fields: Any) -> dict[str, Any]:
        stamp = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return self.factory.make(activity_type, stamp, actor=actor, **fields)


def _scim(actor: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    return {**actor, "workos_event_id": "event_01" + random_token(rng)}


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: small means only, which is all this profile uses."""
    if mean <= 0:
        return 0
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count

