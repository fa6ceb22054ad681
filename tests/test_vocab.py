"""One home for every name (docs/DESIGN.md): a vocabulary value — NAT kind, verdict, outcome, call outcome,
stack, TURN transport, port — spelled outside netsim/vocab.py fails, unless the allow-list says why that
spelling is something else; and every name vocab.py defines is used. No root."""

from __future__ import annotations

import ast
from pathlib import Path

from netsim import vocab

PACKAGE = Path(__file__).resolve().parents[1] / "netsim"

VOCABULARY: frozenset[str | int] = frozenset(
    {
        *vocab.NAT_PRESETS,
        vocab.CUSTOM_NAT,
        *vocab.VERDICTS[:-1],  # "failed" is also a peer, ICE and connection state: too common to tell
        *vocab.OUTCOMES,
        *vocab.CALL_OUTCOMES,
        *vocab.PEER_STACKS,
        *vocab.TURN_TRANSPORTS,
        vocab.STUN_PORT,
        vocab.TURN_TLS_PORT,
        vocab.AUX_PORT,
        *vocab.RELAY_PORTS,
    }
)

# (file, value): why that spelling is not the vocabulary's word.
ALLOWED = {
    ("peers/browser.py", "chromium"): "the browser binary's name on PATH",
    ("peers/firefox_launch.py", "firefox"): "the browser binary's name on PATH",
    ("peers/echo.py", "open"): "a data channel's readyState and event",
    ("peers/hold.py", "open"): "a data channel's readyState",
    ("results/report_run.py", "aiortc"): "a Python package's name (versions)",
    ("versions.py", "aiortc"): "a Python package's name",
    ("results/sessions.py", "direct"): "prose in the session view",
    ("results/tables.py", "passed"): "the record's `passed` field",
    ("services/signaling_server.py", "dropped"): "a connection's state",
    ("session/keepalive.py", "udp"): "tcpdump's filter",
}


def _not_words(tree: ast.AST) -> set[int]:
    """Constants that are not words of the vocabulary whatever they spell: docstrings, keys of a mapping
    (record field names, `x["passed"]`, `{"udp": ...}`) and pieces of f-strings."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            skip.add(id(body[0].value))
        if isinstance(node, ast.Subscript):
            skip.add(id(node.slice))
        elif isinstance(node, ast.Dict):
            skip.update(id(k) for k in node.keys if k is not None)
        elif isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
    return skip


def stray_spellings(root: Path) -> list[str]:
    """`file:line: value` for every vocabulary value spelled outside vocab.py and not allowed."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel == "vocab.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        skip = _not_words(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or isinstance(node.value, bool) or id(node) in skip:
                continue
            if node.value in VOCABULARY and (rel, node.value) not in ALLOWED:
                found.append(f"{rel}:{node.lineno}: {node.value!r}")
    return sorted(found)


def test_no_vocabulary_spelled_outside_its_home() -> None:
    assert stray_spellings(PACKAGE) == []


def test_every_allowance_is_still_needed() -> None:
    unused = []
    for (rel, value), _why in ALLOWED.items():
        tree = ast.parse((PACKAGE / rel).read_text())
        skip = _not_words(tree)
        if not any(
            isinstance(n, ast.Constant) and n.value == value and id(n) not in skip for n in ast.walk(tree)
        ):
            unused.append((rel, value))
    assert unused == []


def test_a_stray_spelling_is_caught(tmp_path: Path) -> None:
    """The check itself works: a verdict, a NAT kind and a port spelled again are found; a field name,
    a docstring and an f-string piece are not."""
    pkg = tmp_path / "netsim" / "session"
    pkg.mkdir(parents=True)
    (pkg / "bad.py").write_text(
        '"""relay"""\n'
        "def f(r):\n"
        '    if r["relay"] == "relay":\n'
        '        return {"symmetric": 1, "x": "symmetric"}, 3478, f"relay{r}"\n'
    )
    assert stray_spellings(tmp_path / "netsim") == [
        "session/bad.py:3: 'relay'",
        "session/bad.py:4: 'symmetric'",
        "session/bad.py:4: 3478",
    ]


def test_every_name_vocab_defines_is_used() -> None:
    """A name nobody uses is a second spelling waiting to happen (or dead): vocab.py keeps only used ones."""
    used: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name == "vocab.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.alias):
                used.add(node.asname or node.name)
            elif isinstance(node, ast.Attribute):
                used.add(node.attr)
    defined = [
        name for name in vars(vocab) if name.isupper() or (name[0].isupper() and not name.startswith("_"))
    ]
    # names that build other names in vocab.py (NAT_KINDS from OPEN, ...) are used there
    tree = ast.parse((PACKAGE / "vocab.py").read_text())
    internal = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    unused = [n for n in defined if n not in used and n not in internal and n not in ("Final", "Literal")]
    assert unused == []
