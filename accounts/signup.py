"""The signed link that finishes signing up.

Step 1 asks for a name, an email and an organization name, and answers "check your inbox"
whatever the email: only the inbox learns whether it has an account. A new address gets this
link, which carries step 1's answers (never a password) signed with SECRET_KEY. Nothing is
stored until the link is followed and a password chosen; the account then existing is what
makes the link work once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta

from django.core import signing

SALT = "keyportal.accounts.signup"
LINK_LIFETIME = timedelta(hours=24)


class SignupLinkInvalid(Exception):
    """The link was not made here, was altered, or has expired; the message says which."""


@dataclass(frozen=True)
class SignupRequest:
    email: str
    display_name: str
    organization_name: str


def signup_token_make(request: SignupRequest) -> str:
    """Return the signed, URL-safe token for a signup link."""
    return signing.dumps(asdict(request), salt=SALT, compress=True)


def signup_token_read(token: str) -> SignupRequest:
    """Return what a signup link's token carries, or raise SignupLinkInvalid."""
    try:
        data = signing.loads(token, salt=SALT, max_age=LINK_LIFETIME)
    except signing.SignatureExpired:
        raise SignupLinkInvalid("This link has expired. Sign up again for a new one.") from None
    except signing.BadSignature:
        raise SignupLinkInvalid("This link is not valid. Sign up again for a new one.") from None
    return SignupRequest(**data)
