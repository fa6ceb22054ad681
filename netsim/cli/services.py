"""Service commands: the signaling server standalone, and signaling tokens."""

from __future__ import annotations

import argparse
import os
from typing import Any

from netsim.cli.common import EXIT_OK, InputError, port
from netsim.services.signaling import (
    DEFAULT_BURST,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_RATE,
    SECRET_ENV,
    USER_RE,
    make_token,
    serve,
)


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("signaling", help="run the WebSocket signaling server (no lab needed)")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"listen address (default {DEFAULT_HOST})")
    p.add_argument(
        "--port", type=port, default=DEFAULT_PORT, help=f"TCP port, 0 = any (default {DEFAULT_PORT})"
    )
    p.add_argument("--secret", default=None, help=f"token secret (default: ${SECRET_ENV})")
    p.add_argument(
        "--rate", type=float, default=DEFAULT_RATE, help="messages/s per connection, 0 = unlimited"
    )
    p.add_argument("--burst", type=int, default=DEFAULT_BURST, help="rate limiter bucket size")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_signaling)
    t = sub.add_parser("token", help="print the signaling token of a user")
    t.add_argument("--secret", default=None, help=f"token secret (default: ${SECRET_ENV})")
    t.add_argument("user")
    t.set_defaults(func=cmd_token)


def _secret(args: argparse.Namespace) -> str:
    secret = args.secret or os.environ.get(SECRET_ENV)
    if not secret:
        raise InputError(f"a secret is required (--secret or ${SECRET_ENV})")
    return str(secret)


def cmd_signaling(args: argparse.Namespace) -> int:
    secret = _secret(args)

    def announce(url: str) -> None:
        print(f"signaling: listening on {url}/ws/{{user}}?token=T", flush=True)

    try:
        serve(
            args.host, args.port, secret, args.rate, args.burst, log_level=args.log_level, on_ready=announce
        )
    except OSError as e:
        raise InputError(
            f"--host {args.host} --port {args.port}: cannot listen there ({e.strerror or e})"
        ) from None
    return EXIT_OK


def cmd_token(args: argparse.Namespace) -> int:
    secret = _secret(args)
    if not USER_RE.fullmatch(args.user):
        raise InputError(f"invalid user id {args.user!r}")
    print(make_token(secret, args.user))
    return EXIT_OK
