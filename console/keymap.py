"""The keymap's grammar: what a key name is as Textual names it, and a [keymap] entry's
keys checked with one line naming a bad one (console.settings validates the table with it)."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator

from services.dsn import shown

# A key as Textual names it: modifiers joined by '+', then one printable character, a named
# key (f5, pageup, escape) or a character's name (question_mark, slash).
MODIFIERS = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})
NAMED_KEYS = frozenset({
    "escape", "enter", "return", "tab", "space", "backspace", "delete", "insert", "home", "end",
    "pageup", "pagedown", "up", "down", "left", "right", "slash", "backslash", "at", "minus", "plus",
    "underscore", *(f"f{n}" for n in range(1, 25)),
})  # fmt: skip
BINDING_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


def is_key(key: str) -> bool:
    *modifiers, name = key.split("+") if len(key) > 1 else [key]
    if not name or any(m not in MODIFIERS for m in modifiers):
        return False
    if len(name) == 1:
        return name.isprintable() and not name.isspace() and name != ","
    if name in NAMED_KEYS:
        return True
    try:
        unicodedata.lookup(name.replace("_", " "))
    except KeyError:
        return False
    return True


def keys_of(value: str) -> str:
    """A keymap entry's keys ('f1' or 'ctrl+h,f1'); raises ValueError naming a bad one."""
    keys = [k.strip() for k in value.split(",")]
    bad = [k for k in keys if not is_key(k)]
    if bad:
        raise ValueError(
            f"{shown(bad[0])} is not a key: use a character ('h', '?'), a key name (f1, pageup, escape, "
            "question_mark) with optional ctrl+/shift+/alt+, several separated by commas"
        )
    return ",".join(keys)


Keys = Annotated[str, AfterValidator(keys_of)]
