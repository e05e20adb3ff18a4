"""The simulated organization: its orgs, people, keys, addresses and devices.

Addresses come from networks that MaxMind's GeoIP2 City test database resolves (London, Boxford,
Linköping, Milton, Changchun, ...), plus private, documentation and IPv6 ones, so that the GeoIP
step of the demo and the tests has real answers and real misses.
"""

from __future__ import annotations

import random
import string
import uuid
from dataclasses import dataclass

ALPHABET = string.digits + string.ascii_letters

# (address, where the GeoIP2-City test database puts it)
OFFICE_ADDRESSES = [
    ("81.2.69.142", "London"),
    ("81.2.69.160", "London"),
    ("2.125.160.216", "Boxford"),
    ("89.160.20.112", "Linköping"),
    ("89.160.20.128", "Linköping"),
    ("216.160.83.56", "Milton"),
    ("149.101.100.0", "United States"),
]
HOME_ADDRESSES = [
    ("202.196.224.10", "Philippines"),
    ("192.0.2.34", None),  # documentation range: no GeoIP answer
    ("10.20.30.40", None),  # private: no GeoIP answer
    ("2001:db8::1", None),
    ("2001:480:10::1", "San Diego"),
]
SUSPICIOUS_ADDRESSES = [
    ("175.16.199.0", "Changchun"),
    ("67.43.156.9", "Bhutan"),
]

USER_AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/147.0.0.0 "
    "Safari/537.36 Edg/147.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:141.0) Gecko/20100101 Firefox/141.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 "
    "Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Claude/1.0.734 "
    "Chrome/138.0.7204.251 Electron/37.3.1 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148",
    "Claude/1.250718.0 (com.anthropic.claude; build:1; iOS 18.5.0) Alamofire/5.10.2",
]
API_USER_AGENTS = ["python-httpx/0.28.1", "anthropic-python/0.64.0", "curl/8.14.1", "Go-http-client/2.0"]
ROLES = ["user", "user", "user", "user", "membership_admin", "admin", "developer", "billing"]


def random_token(rng: random.Random, length: int = 24) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(length))


@dataclass
class Person:
    user_id: str
    email: str
    role: str
    home_ip: str
    user_agent: str


@dataclass
class Org:
    org_id: str
    org_uuid: str
    name: str


class Population:
    def __init__(self, rng: random.Random, people: int = 40):
        self.rng = rng
        self.orgs = [
            Org("org_01" + random_token(rng), str(uuid.UUID(int=rng.getrandbits(128), version=4)), name)
            for name in ("acme-corp", "acme-research", "acme-platform")
        ]
        first = ["ada", "alan", "grace", "linus", "margaret", "ken", "barbara", "dennis", "radia", "tim",
                 "frances", "john", "edsger", "donald", "hedy", "claude", "katherine", "leslie", "vint", "anita"]
        self.people = []
        for index in range(people):
            name = f"{first[index % len(first)]}.{chr(97 + index // len(first))}{index}"
            address = rng.choice(OFFICE_ADDRESSES + HOME_ADDRESSES)[0]
            self.people.append(Person(
                user_id="user_01" + random_token(rng),
                email=f"{name}@acme.example",
                role="primary_owner" if index == 0 else rng.choice(ROLES),
                home_ip=address,
                user_agent=rng.choice(USER_AGENTS),
            ))
        self.api_key_ids = ["apikey_01" + random_token(rng) for _ in range(4)]
        self.admin_key_ids = ["adminkey_01" + random_token(rng) for _ in range(2)]
        self.service_account_ids = ["svcacct_01" + random_token(rng) for _ in range(2)]
        self.directory_id = "directory_01" + random_token(rng)
        self.workspaces = ["wrkspc_01" + random_token(rng) for _ in range(4)]
        # A few people do most of the work, as in any organization (Zipf-like weights).
        self._activity_weights = [1 / (rank + 1) ** 0.9 for rank in range(len(self.people))]
        rng.shuffle(self._activity_weights)

    def person(self) -> Person:
        return self.rng.choices(self.people, weights=self._activity_weights)[0]

    def org(self) -> Org:
        return self.rng.choices(self.orgs, weights=[6, 2, 1])[0]
