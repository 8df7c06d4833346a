"""Names people read: refuse the characters that make a name show as something else.

Plain Python, no Django: the CLI checks names with it before sending them, the server's
validators (keyportal.validators) with it on every door; the server depends on this
distribution, keyportal-cli, for it.
"""

from __future__ import annotations

import unicodedata

# Text-direction embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) and the
# invisible direction marks (U+061C, U+200E, U+200F). They reorder what a reader sees without
# changing what is stored: "deploy‮yek-dor" shows as "deployrod-key" (CVE-2021-42574).
DIRECTION_CONTROLS = frozenset(
    {"\u061c", "\u200e", "\u200f"}
    | {chr(code) for code in range(0x202A, 0x202F)}
    | {chr(code) for code in range(0x2066, 0x206A)}
)
# Line and paragraph separators break a line as a newline does, in a table or a log line.
LINE_SEPARATORS = frozenset({"\u2028", "\u2029"})


def unsafe_character(name: str) -> str | None:
    """Return the first character of `name` that cannot be shown safely, or None.

    Refused: control characters (Unicode category Cc: NUL to U+001F, DEL, U+0080 to U+009F,
    newlines and tabs included), text-direction controls and line separators.
    """
    for character in name:
        if (
            character in DIRECTION_CONTROLS
            or character in LINE_SEPARATORS
            or unicodedata.category(character) == "Cc"
        ):
            return character
    return None


def name_problem(name: str) -> str | None:
    """Return why `name` cannot be a name, naming the character; None when it can."""
    character = unsafe_character(name)
    if character is None:
        return None
    return (
        "Names cannot contain control characters or text-direction overrides "
        f"(U+{ord(character):04X})."
    )
