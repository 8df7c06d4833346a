"""The demo's keys, as a story: who made which key when, what became of it, how much it is used.

apikeys.demo tells it through the services and the API (`manage.py seed_demo`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from accounts.models import Role
from apikeys.permissions import READ_ONLY, ROLE_PERMISSIONS

# Where each demo person works from (documentation addresses, RFC 5737), for the audit log.
ADDRESSES = {
    "owner@acme.test": "203.0.113.10",
    "admin@acme.test": "203.0.113.24",
    "member@acme.test": "198.51.100.7",
    "owner@globex.test": "192.0.2.51",
}
GITHUB_ACTIONS = "198.51.100.140"
TERRAFORM_RUNNER = "203.0.113.80"
CI_RUNNER = "192.0.2.200"
GITHUB_HOOKS = "192.0.2.140"  # where GitHub secret scanning's report comes from
CLI_CLIENT = "keyportal-cli/1.0"
# The moment in the name `keyportal login` gives its key ("CLI on host 2025-06-01 09:30").
LOGIN_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")


def days(n: float, hours: float = 0) -> timedelta:
    return timedelta(days=n, hours=hours)


# The story ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """An API call the key makes `ago` (before now); `what` names it (Story._call)."""

    ago: timedelta
    what: str


@dataclass(frozen=True)
class Change:
    """A change a person makes to the key `ago`: rotate (24h grace), disable or revoke; or
    "leak": GitHub secret scanning reports the key found in `by`, a public repository."""

    ago: timedelta
    by: str
    act: str


@dataclass(frozen=True)
class DemoKey:
    organization: str  # slug
    kind: str
    # A person's email, a service account's or project's name; empty for organization keys.
    owner: str
    name: str
    by: str  # the person who makes it
    permissions: frozenset[str]
    ago: timedelta  # made this long before now
    expires_in: timedelta | None = None  # from now; None: never
    # permission -> "environment:Payments/web/staging" or "project:Payments"
    scopes: dict[str, str] = field(default_factory=dict)
    daily: int = 0  # requests on a usual weekday
    events: tuple[Call | Change, ...] = ()
    # What api_key_create takes beyond grants: allowed_ips, rate_limits, budget.
    protections: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.organization}'s key “{self.name}”"


@dataclass(frozen=True)
class CliLogin:
    """`keyportal login` from `host`, approved in the browser `ago`: a 7-day personal key."""

    organization: str
    email: str
    host: str
    ago: timedelta
    daily: int = 0

    @property
    def label(self) -> str:
        return f"the CLI login of {self.email} on {self.host}"


@dataclass(frozen=True)
class PolicyChange:
    organization: str
    kind: str
    by: str
    max_days: int
    ago: timedelta

    @property
    def label(self) -> str:
        return f"{self.organization}'s policy for {self.kind} keys"


OWNER = ROLE_PERMISSIONS[Role.OWNER]
ADMIN = ROLE_PERMISSIONS[Role.ADMIN]
MEMBER = ROLE_PERMISSIONS[Role.MEMBER]
STAGING = "environment:Payments/web/staging"
DEPLOY = frozenset(
    {
        "projects:read",
        "environments:read",
        "secrets:read",
        "secrets:write",
        "secrets:decrypt",
        "apps:read",
        "apps:publish",
    }
)
TERRAFORM = frozenset(
    {
        "organization:read",
        "teams:create",
        "teams:read",
        "projects:create",
        "projects:read",
        "targets:create",
        "targets:read",
        "environments:create",
        "environments:read",
    }
)

# DemoKey(organization, kind, owner, name, made by, permissions, made ago, expires in, ...)
STORY: tuple[DemoKey | CliLogin | PolicyChange, ...] = (
    # Acme: people's personal keys.
    DemoKey("acme", "user", "owner@acme.test", "laptop", "owner@acme.test", OWNER,
            days(21, 3), days(9), daily=60),
    DemoKey("acme", "user", "admin@acme.test", "laptop", "admin@acme.test", ADMIN,
            days(16, 5), days(14), daily=45),
    DemoKey("acme", "user", "admin@acme.test", "old MacBook", "admin@acme.test", ADMIN,
            days(24, 2), days(6), daily=35,
            events=(Change(days(17, 4), "admin@acme.test", "revoke"),)),
    DemoKey("acme", "user", "admin@acme.test", "staging debugging", "admin@acme.test",
            frozenset({"environments:read", "secrets:read", "secrets:decrypt"}),
            days(26, 18), days(3, 6), daily=12,
            scopes={"environments:read": STAGING, "secrets:read": STAGING,
                    "secrets:decrypt": STAGING}),
    DemoKey("acme", "user", "member@acme.test", "laptop", "member@acme.test", MEMBER,
            days(12, 1), days(18), daily=20),
    CliLogin("acme", "member@acme.test", "mia-macbook.local", days(2, 3), daily=15),
    CliLogin("acme", "admin@acme.test", "adam-thinkpad", days(9, 6), daily=10),
    # Acme: service accounts' keys.
    DemoKey("acme", "svc", "deploy-bot", "GitHub Actions deploy", "admin@acme.test", DEPLOY,
            days(52, 2), daily=40,
            scopes={p: "project:Payments" for p in DEPLOY if p.startswith(("secrets", "apps"))},
            protections={"allowed_ips": ["198.51.100.128/25", "2001:db8:ac::/48"],
                         "rate_limits": [{"limit": 60, "window": "minute"}]},
            events=(Call(days(8, 2), "deploy payments-api"),
                    Change(days(5, 7), "admin@acme.test", "rotate"),
                    Call(days(1, 1), "deploy payments-api"))),
    DemoKey("acme", "svc", "ci", "CI test runner", "admin@acme.test",
            frozenset({"projects:read", "environments:read", "secrets:read", "secrets:decrypt"}),
            days(30, 4), days(335), daily=300,
            scopes={"secrets:read": "environment:Payments/web/development",
                    "secrets:decrypt": "environment:Payments/web/development"},
            events=(Call(days(3, 2), "try to create a key"),)),
    DemoKey("acme", "svc", "ci", "GitLab runner (old)", "owner@acme.test", READ_ONLY,
            days(50, 1), daily=250,
            events=(Change(days(6, 5), "admin@acme.test", "disable"),)),
    DemoKey("acme", "svc", "deploy-bot", "Heroku deploy (old)", "admin@acme.test", DEPLOY,
            days(40, 3), daily=30,
            events=(Change(days(4, 6), "acme-contractor/payments-fork", "leak"),)),
    # Acme: project keys.
    DemoKey("acme", "project", "Payments", "payments webhook worker", "admin@acme.test",
            frozenset({"projects:read", "targets:read", "environments:read", "secrets:read",
                       "secrets:decrypt"}),
            days(33, 6), daily=1400,
            protections={"rate_limits": [{"limit": 100, "window": "minute"},
                                         {"limit": 10000, "window": "day"}],
                         "budget": {"amount": 50000, "refill": "monthly",
                                    "refill_amount": 50000}}),
    DemoKey("acme", "project", "Storefront", "storefront CDN purge", "owner@acme.test",
            frozenset({"apps:read", "apps:publish"}), days(18, 2), days(72), daily=80),
    DemoKey("acme", "project", "Storefront", "image resizer (unused)", "admin@acme.test",
            frozenset({"apps:read"}), days(140, 2)),
    DemoKey("acme", "project", "Analytics", "reports nightly job", "admin@acme.test",
            frozenset({"projects:read", "secrets:read", "secrets:decrypt"}), days(25, 8),
            daily=40,
            scopes={"secrets:read": "environment:Analytics/worker/production",
                    "secrets:decrypt": "environment:Analytics/worker/production"}),
    # Acme: organization keys; the policy comes after the never-expiring grafana key.
    DemoKey("acme", "org", "", "grafana read-only", "admin@acme.test", READ_ONLY, days(45, 3),
            daily=720),
    PolicyChange("acme", "org", "owner@acme.test", 90, days(14, 2)),
    DemoKey("acme", "org", "", "terraform", "admin@acme.test", TERRAFORM, days(10, 4),
            days(80), daily=8, events=(Call(days(2, 5), "create the Mobile team"),)),
    DemoKey("acme", "org", "", "billing export", "owner@acme.test",
            frozenset({"organization:read", "members:read"}), days(8, 1), days(82), daily=24),
    # Globex: a few keys of its own.
    DemoKey("globex", "user", "owner@globex.test", "laptop", "owner@globex.test", OWNER,
            days(9, 2), days(21), daily=30),
    DemoKey("globex", "org", "", "hammock sync", "owner@globex.test", READ_ONLY, days(20, 3),
            daily=96),
    DemoKey("globex", "project", "Hammock", "hammock deploy", "owner@globex.test",
            frozenset({"apps:read", "apps:publish"}), days(15, 6), days(75), daily=6),
)  # fmt: skip
