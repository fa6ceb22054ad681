"""netsim/cli/run.py: what `netsim population` prints of its sampled shares (pure, no root). (Not test_run.py:
tests/session/ has that basename, and the test directories are not packages.)"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from netsim.cli.run import sampled_shares


def _records(*pairs: tuple[str, bool | None]) -> list[dict[str, object]]:
    return [{"verdict": verdict, "needs_relay": needs} for verdict, needs in pairs]


def test_shares_with_wilson_intervals_when_every_session_knows_needs_relay() -> None:
    text = sampled_shares(
        _records(("direct", False), ("relay", True), ("relay", False), ("direct", False)), None
    )
    assert text.splitlines() == [
        "sampled shares (Wilson 95 %)",
        "  needs_relay  1/4 = 25.0%  [4.6%, 69.9%]",
        "  relay_won    2/4 = 50.0%  [15.0%, 85.0%]",
        "  direct       2/4 = 50.0%  [15.0%, 85.0%]",
    ]


def test_needs_relay_is_unchecked_not_zero_when_relay_less_runs_were_left_out() -> None:
    # --concurrent: only direct sessions know needs_relay (false); a share over them would read 0 %.
    est = SimpleNamespace(
        **{k: SimpleNamespace(share=0.2, low=0.1, high=0.3) for k in ("needs_relay", "relay_won", "direct")}
    )
    lines = sampled_shares(
        _records(("direct", False), ("relay", None), ("relay", None), ("direct", False)), est
    )
    needs = lines.splitlines()[1]
    unchecked = "unchecked for 2/4 sessions (no relay-less run): between 0.0% and 50.0%; not compared"
    assert needs == f"  needs_relay  {unchecked}"
    assert "estimate" not in needs and "agree" not in needs.lower()
    # the other shares are over every session and still compared (50 % [15, 85] overlaps 20 % [10, 30])
    assert (
        lines.splitlines()[2]
        == "  relay_won    2/4 = 50.0%  [15.0%, 85.0%]   estimate 20.0% [10.0%, 30.0%]  agree"
    )


def test_population_without_mix_draws_from_the_cited_mix_or_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17: the invented mix is never used silently."""
    from netsim.cli.run import DEFAULT_MIX, _mix_weights
    from netsim.suite import blend
    from netsim.suite.mixes import MixFileError

    shares, mix = _mix_weights(DEFAULT_MIX, "--mix")
    assert mix.name == "residential" and any(k.basis == "from" for k in mix.kinds) and "udp-blocked" in shares
    own, none = _mix_weights("open=1,symmetric=3", "--mix")  # your own weights stay yours
    assert own == {"open": 1.0, "symmetric": 3.0} and none is None
    blended, parts = _mix_weights("mobile=1,residential=1", "--mix")
    assert [m.name for m, _ in parts.parts] == ["mobile", "residential"] and sum(
        blended.values()
    ) == pytest.approx(1)
    monkeypatch.setattr(blend, "SHIPPED_DIR", tmp_path / "nowhere")  # netsim without its mixes/
    with pytest.raises(MixFileError, match="no mix file or shipped mix named 'residential'"):
        _mix_weights(DEFAULT_MIX, "--mix")
