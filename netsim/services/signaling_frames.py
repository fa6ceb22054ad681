"""Signaling frames: what a client's frame must be before the server forwards it (docs/signaling.md).

Pure checks, no I/O: JSON with bounded nesting, no NaN or Infinity, no lone surrogate; an offer, answer,
candidate or bye with the fields a browser's RTCPeerConnection takes.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32  # JSON nesting (objects and arrays) a frame may have; browsers' signaling frames have 1-2
_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class BadMessage(ValueError):
    """A frame that does not follow the protocol; the text goes back to the sender."""


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _no_constants(name: str) -> Any:
    # NaN/Infinity are not JSON: a browser's JSON.parse would choke on the forwarded frame.
    raise BadMessage(f"{name} is not valid JSON")


def _utf8_len_over(text: str, limit: int) -> bool:
    # Cheap bound first: a str of n code points is at most 4n UTF-8 bytes.
    return len(text) > limit or (4 * len(text) > limit and len(text.encode()) > limit)


def _opt(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> None:
    value = obj.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise BadMessage(f"'{key}' must be {what} or null")


def validate_forward(obj: dict[str, Any]) -> str:
    """Check an offer/answer/candidate/bye frame; return its target."""
    target = obj.get("target")
    if not isinstance(target, str) or not target:
        raise BadMessage("'target' must be a non-empty string")
    kind = obj["type"]
    if kind in ("offer", "answer") and not isinstance(obj.get("sdp"), str):
        raise BadMessage(f"{kind} needs 'sdp' (string)")
    if kind == "candidate":
        _validate_candidate(obj)
    return target


def _validate_candidate(obj: dict[str, Any]) -> None:
    if "candidate" not in obj:
        raise BadMessage("candidate needs 'candidate' (string, or null for end of candidates)")
    _opt(obj, "candidate", str, "a string")
    _opt(obj, "sdpMid", str, "a string")
    _opt(obj, "sdpMLineIndex", int, "a non-negative integer")
    _opt(obj, "usernameFragment", str, "a string")
    index = obj.get("sdpMLineIndex")
    if index is not None and index < 0:
        raise BadMessage("'sdpMLineIndex' must be a non-negative integer or null")
    # Same rule as RTCPeerConnection.addIceCandidate: a real candidate needs a media section.
    if obj["candidate"] and obj.get("sdpMid") is None and index is None:
        raise BadMessage("a candidate needs 'sdpMid' or 'sdpMLineIndex'")


def _parse(text: str) -> dict[str, Any]:
    _check_depth(text)  # before json.loads: deep nesting would exhaust its recursion
    try:
        obj = json.loads(text, parse_constant=_no_constants)
    except ValueError as exc:  # JSONDecodeError and BadMessage are both ValueError
        raise BadMessage(exc.args[0] if isinstance(exc, BadMessage) else f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise BadMessage("a message must be a JSON object")
    # Only a \u escape can smuggle a lone surrogate into a str decoded from valid UTF-8.
    if "\\u" in text and not _encodable(obj):
        raise BadMessage("invalid text: a lone surrogate escape (\\ud800-\\udfff) is not a character")
    return obj


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH; cheap unless the frame has many brackets."""
    if text.count("{") + text.count("[") <= MAX_DEPTH:
        return
    depth = 0
    for match in _STRUCTURE.finditer(text):
        char = match.group()
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise BadMessage(f"nested deeper than {MAX_DEPTH} levels")
        elif char in "]}":
            depth -= 1


def _encodable(obj: dict[str, Any]) -> bool:
    try:
        _dump(obj).encode()
    except UnicodeEncodeError:
        return False
    return True
