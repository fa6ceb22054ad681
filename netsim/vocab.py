"""netsim's vocabulary: every name and number shared between stages is defined here, once.

Stages import these instead of spelling the strings again, so a NAT kind, a verdict or a port means the same
thing in the lab, the session, the suite, the records and the report.
"""

from __future__ import annotations

from typing import Final, Literal

# --- NAT kinds ---------------------------------------------------------------------------------------------
# The five kinds of the NAT matrix, from most to least permissive (libwebrtc's test matrix uses the same).
OPEN: Final = "open"  # no NAT: the site's hosts have public addresses
FULL_CONE: Final = "full-cone"
RESTRICTED_CONE: Final = "restricted-cone"
PORT_RESTRICTED_CONE: Final = "port-restricted-cone"
SYMMETRIC: Final = "symmetric"
NAT_KINDS: Final = (OPEN, FULL_CONE, RESTRICTED_CONE, PORT_RESTRICTED_CONE, SYMMETRIC)
UDP_BLOCKED: Final = "udp-blocked"  # a firewall, not a NAT: only TCP 443 gets out
# Every preset with a rules file of its own, in display order.
NAT_PRESETS: Final = (*NAT_KINDS, UDP_BLOCKED)
CUSTOM_NAT: Final = "custom"  # a NAT spec built from mapping/filtering knobs or a researcher's rules file

# --- IP modes and IPv6 firewalls (docs/nat.md) ------------------------------------------------------------
# A site's (or host's) IP mode: IPv4 only (today's labs, the default), dual-stack, IPv6-only behind a NAT64
# carrier, IPv6-only with 464XLAT (a CLAT on the host).
IPV4_ONLY: Final = "none"
DUAL: Final = "dual"
IPV6_ONLY: Final = "only"
CLAT: Final = "clat"
IP_MODES: Final = (IPV4_ONLY, DUAL, IPV6_ONLY, CLAT)
# IPv6 firewall presets, named in RFC terms: RFC 6092 transparent mode, RFC 6092's endpoint-independent
# filtering, a plain conntrack firewall (address-and-port-dependent filtering, the default), UDP blocked.
FW6_OPEN: Final = "open"
FW6_EIF: Final = "eif"
FW6_APDF: Final = "apdf"
FW6_BLOCK_UDP: Final = "block-udp"
FW6_PRESETS: Final = (FW6_OPEN, FW6_EIF, FW6_APDF, FW6_BLOCK_UDP)
FW6_DEFAULT: Final = FW6_APDF

# RFC 4787 mapping and filtering behaviours.
EIM: Final = "endpoint-independent"
ADM: Final = "address-dependent"
APDM: Final = "address-and-port-dependent"
BEHAVIOURS: Final = (EIM, ADM, APDM)

# --- session options ---------------------------------------------------------------------------------------
UDP: Final = "udp"
TCP: Final = "tcp"
TLS: Final = "tls"
TURN_TRANSPORTS: Final = (UDP, TCP, TLS)
NO_TURN: Final = "none"
TURN_CHOICES: Final = (*TURN_TRANSPORTS, NO_TURN)
POLICIES: Final = ("all", "relay")
SIDES: Final = ("a", "b")

# Peer stacks: aiortc (Python), Chromium (libwebrtc) and Firefox (nICEr), the browsers users ship, and Pion
# (Go). A side may also be a program the user brings, `exec:COMMAND`, that speaks the peer protocol
# (docs/peers.md).
PEER_STACKS: Final = ("aiortc", "chromium", "firefox", "pion")
AIORTC: Final = "aiortc"
CHROMIUM: Final = "chromium"
FIREFOX: Final = "firefox"
PION: Final = "pion"
EXEC_PREFIX: Final = "exec:"
BROWSERS: Final = (CHROMIUM, FIREFOX)  # stacks that run in a browser started per host (costly)
# Stacks that renegotiate an ICE restart; a session restarts only when both sides do.
RESTART_STACKS: Final = (CHROMIUM, FIREFOX, PION)

Turn = Literal["udp", "tcp", "tls", "none"]
TurnTransport = Literal["udp", "tcp", "tls"]
Policy = Literal["all", "relay"]
Side = Literal["a", "b"]
Stack = Literal["aiortc", "chromium", "firefox", "pion"]
PeerName = Stack | str  # a Stack, or "exec:COMMAND" (a program speaking the peer protocol)

# --- outcomes ----------------------------------------------------------------------------------------------
DIRECT_HOST: Final = "direct-host"  # host candidates at both ends
DIRECT: Final = "direct"  # through a NAT's mapping (srflx or prflx), no relay
RELAY: Final = "relay"  # a TURN relay carries the data (also the relay candidate type)
FAILED: Final = "failed"
VERDICTS: Final = (DIRECT_HOST, DIRECT, RELAY, FAILED)
DIRECT_VERDICTS: Final = (DIRECT_HOST, DIRECT)
BOTH: Final = "both"  # a relay side (besides a or b): both sides' allocations carry the data
HOST: Final = "host"
CANDIDATE_TYPES: Final = (HOST, "srflx", "prflx", RELAY)
CandidateType = Literal["host", "srflx", "prflx", "relay"]
FAMILIES: Final = ("ipv4", "ipv6")  # a candidate's or a selected pair's address family

Family = Literal["ipv4", "ipv6"]

Verdict = Literal["direct-host", "direct", "relay", "failed"]

# A session's outcome against its expectation (records.ResultRecord.outcome): passed/violated, an
# expectation held or did not; unchecked, there was none; inconclusive, the machine's load makes the answer
# worthless (netsim/session/load.py), whatever the expectation.
PASSED: Final = "passed"
VIOLATED: Final = "violated"
UNCHECKED: Final = "unchecked"
INCONCLUSIVE: Final = "inconclusive"
OUTCOMES: Final = (PASSED, VIOLATED, UNCHECKED, INCONCLUSIVE)
Outcome = Literal["passed", "violated", "unchecked", "inconclusive"]

# A held call's outcome (records.CallRecord; netsim.session.call judges it).
HELD: Final = "held"
RECOVERED: Final = "recovered"
DROPPED: Final = "dropped"
CALL_OUTCOMES: Final = (HELD, RECOVERED, DROPPED)
CallOutcome = Literal["held", "recovered", "dropped"]
RelaySide = Literal["a", "b", "both"]

# --- suite groups whose expectations come from the NAT matrix ----------------------------------------------
MATRIX_TURN: Final = "matrix-turn"
MATRIX_NOTURN: Final = "matrix-noturn"
MATRIX_GROUPS: Final = (MATRIX_TURN, MATRIX_NOTURN)
POPULATION: Final = "population"
# A matrix group's cells with IPv6 on a side (netsim matrix --ipv6): matrix-turn-ipv6, ...; the IPv4 oracle's
# expectations stay with the IPv4-only groups.
IPV6_GROUP_SUFFIX: Final = "-ipv6"

# --- ports on the lab's server -----------------------------------------------------------------------------
STUN_PORT: Final = 3478  # coturn: STUN and TURN over UDP and TCP
TURN_TLS_PORT: Final = 5349
AUX_PORT: Final = 443  # coturn's TCP/TLS listener that gets through the udp-blocked firewall
SIGNALING_PORT: Final = 443  # the signaling server on the second server address (also through the firewall)
RELAY_PORTS: Final = (50000, 59999)
