"""The one base class of bad input: every stage's input error derives from `InputError`.

The CLI catches this class (exit 2, one line naming the file, field or value), so a stage that adds an
error class of its own can never send a user a traceback for bad input. Each stage keeps its own class
(TopologyError, NatError, OptionsError, ...) so callers can still tell them apart.
"""

from __future__ import annotations

import re
from typing import Final


class InputError(ValueError):
    """Bad input: a file, field, option or value that cannot be used; the message names it."""


# Characters a terminal acts on rather than shows: C0 controls (newline and tab aside), DEL, C1 controls
# (0x9b starts an escape sequence on some terminals), and the bidirectional overrides that reorder text.
_UNPRINTABLE: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: object, keep_newlines: bool = False) -> str:
    """Text for a terminal: every character it would act on shown as an escape (`\\x1b`, `\\u202e`), so a
    record's text can neither move the cursor, set a window title nor fake a line. Without keep_newlines,
    newlines and tabs are escaped too (one line stays one line)."""
    text = str(text)
    if not keep_newlines:
        text = text.replace("\n", "\\n").replace("\t", "\\t")
    return _UNPRINTABLE.sub(lambda m: _escape(m.group()), text)


def _escape(char: str) -> str:
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
