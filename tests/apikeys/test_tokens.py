"""Token functions: generation, format and checksum, digest, preview. No database."""

from __future__ import annotations

import hashlib
import re
import string
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from keyportal_cli.tokens import (
    BASE62,
    CHECKSUM_LENGTH,
    PREFIXES,
    SECRET_LENGTH,
    TOKEN_PATTERN,
    checksum,
    generate_token,
    has_token_format,
    token_candidates,
    token_digest,
    token_kind,
    token_preview,
)

KINDS = st.sampled_from(sorted(PREFIXES))
# Any other character: a same-class base62 one most often, sometimes anything Unicode has.
REPLACEMENTS = st.one_of(
    st.sampled_from(BASE62),
    st.sampled_from(string.punctuation + string.whitespace),
    st.characters(),
)


def test_base62_alphabet_is_digits_and_letters():
    """The alphabet holds exactly the 62 digits and ASCII letters."""
    assert sorted(BASE62) == sorted(string.digits + string.ascii_letters)
    assert len(set(BASE62)) == 62


@given(kind=KINDS)
def test_every_generated_token_has_the_format(kind):
    """A new token of any kind passes the format check and names its kind."""
    token = generate_token(kind)

    assert has_token_format(token)
    assert token_kind(token) == kind


@given(kind=KINDS)
def test_token_layout(kind):
    """A token is its kind's prefix, 32 base62 characters, and a 6-character checksum."""
    token = generate_token(kind)
    prefix = PREFIXES[kind]

    assert token.startswith(prefix)
    rest = token[len(prefix) :]
    assert len(rest) == SECRET_LENGTH + CHECKSUM_LENGTH
    assert set(rest) <= set(BASE62)


@given(kind=KINDS, data=st.data())
def test_changing_any_one_character_fails_the_format(kind, data):
    """Replacing any single character, by any other one, makes the token fail the check."""
    token = generate_token(kind)
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1), label="position")
    replacement = data.draw(
        REPLACEMENTS.filter(lambda char: char != token[position]), label="replacement"
    )
    changed = token[:position] + replacement + token[position + 1 :]

    assert not has_token_format(changed)


@settings(max_examples=50)
@given(kind=KINDS)
def test_every_single_base62_substitution_fails(kind):
    """Each position, changed to each other base62 character in turn, fails the check."""
    token = generate_token(kind)
    for position in range(len(PREFIXES[kind]), len(token)):
        for char in BASE62:
            if char != token[position]:
                changed = token[:position] + char + token[position + 1 :]
                assert not has_token_format(changed), (position, char)


@given(kind=KINDS, data=st.data())
def test_dropping_or_adding_a_character_fails(kind, data):
    """A token one character short, or one too long, fails the check."""
    token = generate_token(kind)
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    extra = data.draw(st.sampled_from(BASE62))

    assert not has_token_format(token[:position] + token[position + 1 :])
    assert not has_token_format(token[:position] + extra + token[position:])
    assert not has_token_format(token + extra)


@given(kind=KINDS)
def test_surrounding_whitespace_fails(kind):
    """A pasted token with a space or newline around it is not taken as well-formed."""
    token = generate_token(kind)

    for changed in (f" {token}", f"{token} ", f"{token}\n", f"\n{token}"):
        assert not has_token_format(changed)


@given(text=st.text(max_size=80))
def test_random_text_fails(text):
    """Arbitrary text is refused, and the check never raises."""
    assert not has_token_format(text)


@given(kind=KINDS, secret=st.text(alphabet=BASE62, min_size=38, max_size=38))
def test_a_right_looking_token_passes_only_with_its_checksum(kind, secret):
    """Prefix and length are not enough: the last 6 characters must be the body's CRC32."""
    token = PREFIXES[kind] + secret

    assert has_token_format(token) == (token[-6:] == checksum(token[:-6]))


def test_unknown_prefixes_fail():
    """A valid-looking secret behind another prefix, or none, fails the check."""
    token = generate_token("user")
    body = token[len("sk-user-") :]

    for prefix in ("", "sk-", "sk-admin-", "SK-USER-", "pk-user-", "sk_user_"):
        assert not has_token_format(prefix + body)
    assert token_kind("sk-admin-" + body) is None


def test_one_hundred_thousand_tokens_are_unique():
    """100,000 new tokens, across the kinds, never repeat."""
    kinds = sorted(PREFIXES)
    tokens = {generate_token(kinds[n % len(kinds)]) for n in range(100_000)}

    assert len(tokens) == 100_000


def test_secrets_differ_between_kinds_and_calls():
    """The random part is fresh on every call, not derived from the kind."""
    secrets_part = {generate_token(kind)[len(PREFIXES[kind]) :] for kind in PREFIXES for _ in "ab"}

    assert len(secrets_part) == 2 * len(PREFIXES)


@given(kind=KINDS)
def test_digest_is_sha256_hex_of_the_whole_token(kind):
    """The stored digest is the SHA-256 hex of the whole token, prefix and checksum included."""
    token = generate_token(kind)
    digest = token_digest(token)

    assert digest == hashlib.sha256(token.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest != hashlib.sha256(token[len(PREFIXES[kind]) :].encode()).hexdigest()


@given(kind=KINDS)
def test_preview_is_prefix_ellipsis_and_last_four(kind):
    """The preview shows the kind's prefix, "..." and the last 4 characters, nothing more."""
    token = generate_token(kind)
    preview = token_preview(token)

    assert preview == f"{PREFIXES[kind]}...{token[-4:]}"
    assert token[len(PREFIXES[kind]) : -4] not in preview


@given(kind=KINDS)
def test_checksum_is_the_crc32_of_the_body_in_base62(kind):
    """The last 6 characters decode, in base62, to the CRC32 of everything before them."""
    token = generate_token(kind)
    value = 0
    for char in token[-CHECKSUM_LENGTH:]:
        value = value * 62 + BASE62.index(char)

    assert value == zlib.crc32(token[:-CHECKSUM_LENGTH].encode())
    assert checksum(token[:-CHECKSUM_LENGTH]) == token[-CHECKSUM_LENGTH:]


def test_token_pattern_follows_the_prefixes_and_lengths():
    """The scanners' regex, written out for pasting, says what PREFIXES and the lengths say."""
    kinds = "|".join(prefix.removeprefix("sk-").removesuffix("-") for prefix in PREFIXES.values())
    length = SECRET_LENGTH + CHECKSUM_LENGTH
    expected = rf"sk-(?:{kinds})-[0-9A-Za-z]{{{length}}}"

    assert expected == TOKEN_PATTERN
    assert all(prefix == f"sk-{kind}-" for kind, prefix in PREFIXES.items())


@given(
    kind=KINDS,
    before=st.sampled_from([" ", "\n", "=", '"', "'", "(", "/", ":", "-", "\t", "é", "`"]),
    after=st.sampled_from([" ", "\n", "\r\n", '"', "'", ")", ",", ";", ".", "-", "é", "`"]),
)
def test_a_token_is_found_between_any_non_word_characters(kind, before, after):
    """Quoted, assigned, in a URL or at either end of the text: the whole token is found."""
    token = generate_token(kind)

    assert list(token_candidates(token)) == [token]
    assert list(token_candidates(f"KEY{before}{token}")) == [token]
    assert list(token_candidates(f"{token}{after}more")) == [token]
    assert list(token_candidates(f"a{before}{token}{after}b")) == [token]


@given(kind=KINDS, extra=st.sampled_from([*BASE62, "_"]))
def test_a_token_glued_to_a_word_is_still_found(kind, extra):
    """A letter, digit or underscore right before or after (`API_KEY_sk-...`, `sk-..._prod`)
    does not hide the key: it has leaked all the same."""
    token = generate_token(kind)

    assert list(token_candidates(token + extra)) == [token]
    assert list(token_candidates(extra + token)) == [token]
    assert list(token_candidates(f"{token}{extra}{token}")) == [token, token]


def test_a_longer_run_is_a_candidate_that_fails_the_checksum():
    """What only starts like a key is matched by the pattern and dropped by the checksum."""
    token = generate_token("org")
    longer = "sk-org-Z" + token[len("sk-org-") :]

    [candidate] = token_candidates(longer)
    assert candidate == longer[: len(token)]
    assert not has_token_format(candidate)


def test_previews_and_other_prefixes_are_not_candidates():
    """A preview has no 38-character run; another prefix or another case is not a token's."""
    token = generate_token("project")
    body = token[len("sk-project-") :]
    lookalikes = [
        token_preview(token),
        "sk-user-...abcd",
        "sk-admin-" + body,
        "SK-PROJECT-" + body,
        "sk_project_" + body,
        "sk-project-" + body[:-1],
        "sk-project-" + body[:20] + "-" + body[20:],
    ]

    assert list(token_candidates("\n".join(lookalikes))) == []


def test_candidates_are_the_shape_only_and_the_checksum_decides():
    """Two tokens on a line come out in order; a changed character still matches the shape."""
    first, second = generate_token("org"), generate_token("svc")
    broken = first[:-1] + ("A" if first[-1] != "A" else "B")

    found = list(token_candidates(f"a={first} b={second} c={broken}"))

    assert found == [first, second, broken]
    assert [has_token_format(token) for token in found] == [True, True, False]
