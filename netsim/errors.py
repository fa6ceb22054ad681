"""The one base class of bad input: every stage's input error derives from `InputError`.

The CLI catches this class (exit 2, one line naming the file, field or value), so a stage that adds an
error class of its own can never send a user a traceback for bad input. Each stage keeps its own class
(TopologyError, NatError, OptionsError, ...) so callers can still tell them apart.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: a file, field, option or value that cannot be used; the message names it."""
