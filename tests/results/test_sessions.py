"""netsim/results/sessions.py: how a record's values are shown (pure, no root)."""

from __future__ import annotations

import pytest

from netsim.results.sessions import needs_relay_word, relay_needed_text


@pytest.mark.parametrize(
    ("share", "unknown", "text"),
    [
        (None, 0, "–"),  # no sessions
        (None, 4, "unknown (4)"),  # nobody knows: never 0 %
        (0.25, 0, "25%"),
        (0.0, 2, "0% of known (2 unknown)"),  # a --concurrent run: only direct sessions know (false)
    ],
)
def test_relay_needed_text_never_passes_a_share_of_some_for_one_of_all(
    share: float | None, unknown: int, text: str
) -> None:
    assert relay_needed_text(share, unknown) == text


def test_needs_relay_word() -> None:
    words = [needs_relay_word({"needs_relay": v}) for v in (True, False, None)]  # type: ignore[typeddict-item]
    assert words == ["needed", "not needed", "unknown"]
