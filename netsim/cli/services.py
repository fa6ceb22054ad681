"""Service commands: the signaling server standalone, and signaling tokens."""

from __future__ import annotations

import argparse
import os
import ssl
import stat
import sys
from pathlib import Path
from typing import Any

from netsim.cli.common import EXIT_OK, InputError, port, positive_int
from netsim.services.signaling import (
    DEFAULT_BURST,
    DEFAULT_HOST,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_PER_SOURCE,
    DEFAULT_PORT,
    DEFAULT_RATE,
    SECRET_ENV,
    USER_RE,
    make_token,
)
from netsim.services.signaling_server import serve


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("signaling", help="run the WebSocket signaling server (no lab needed)")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"listen address (default {DEFAULT_HOST})")
    p.add_argument(
        "--port", type=port, default=DEFAULT_PORT, help=f"TCP port, 0 = any (default {DEFAULT_PORT})"
    )
    _secret_arguments(p)
    p.add_argument(
        "--rate", type=float, default=DEFAULT_RATE, help="messages/s per connection, 0 = unlimited"
    )
    p.add_argument("--burst", type=int, default=DEFAULT_BURST, help="rate limiter bucket size")
    p.add_argument(
        "--max-connections",
        type=positive_int,
        default=DEFAULT_MAX_CONNECTIONS,
        help=f"open connections before new ones get HTTP 503 (default {DEFAULT_MAX_CONNECTIONS})",
    )
    p.add_argument(
        "--max-per-source",
        type=positive_int,
        default=DEFAULT_MAX_PER_SOURCE,
        help="open connections from one address before its new ones get HTTP 503 "
        f"(default {DEFAULT_MAX_PER_SOURCE})",
    )
    p.add_argument(
        "--tls", nargs=2, metavar=("CERT", "KEY"), help="serve wss:// with this certificate and key (PEM)"
    )
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--static", type=_directory, metavar="DIR", help="serve DIR's files over HTTP at /app/")
    p.set_defaults(func=cmd_signaling)
    t = sub.add_parser("token", help="print the signaling token of a user")
    _secret_arguments(t)
    t.add_argument("user")
    t.set_defaults(func=cmd_token)


def _secret_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--secret-file",
        type=Path,
        default=None,
        help="file holding the token secret (surrounding whitespace ignored)",
    )
    p.add_argument(
        "--secret",
        default=None,
        help=f"token secret; visible to every user in ps (default: --secret-file, else ${SECRET_ENV})",
    )


def _secret(args: argparse.Namespace) -> str:
    if args.secret is not None and args.secret_file is not None:
        raise InputError("give --secret or --secret-file, not both")
    secret = args.secret
    if args.secret_file is not None:
        secret = _read_secret_file(args.secret_file)
    elif secret is None:
        secret = os.environ.get(SECRET_ENV)
    if not secret:
        raise InputError(f"a secret is required (--secret-file, ${SECRET_ENV} or --secret)")
    return str(secret)


def _read_secret_file(path: Path) -> str:
    try:
        text = path.read_text().strip()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"--secret-file {path}: no such file") from None
    except UnicodeDecodeError:
        raise InputError(f"--secret-file {path}: not a text file") from None
    except OSError as e:
        raise InputError(f"--secret-file {path}: {e.strerror or e}") from None
    if not text:
        raise InputError(f"--secret-file {path}: the file is empty")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(
            f"netsim: warning: --secret-file {path} is readable by other users (chmod 600)", file=sys.stderr
        )
    return text


def _check_tls(tls: list[str] | None) -> tuple[str, str] | None:
    """The certificate and key must load here, so a bad file is one line, not uvicorn's traceback."""
    if tls is None:
        return None
    cert, key = tls
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise InputError(
            f"--tls {cert} {key}: cannot load the certificate and key ({e.strerror or e})"
        ) from None
    return cert, key


def _directory(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"not a directory: {text}")
    return path


def cmd_signaling(args: argparse.Namespace) -> int:
    secret = _secret(args)
    tls = _check_tls(args.tls)

    def announce(url: str) -> None:
        print(f"signaling: listening on {url}/ws/{{user}}?token=T", flush=True)

    try:
        serve(
            args.host,
            args.port,
            secret,
            args.rate,
            args.burst,
            log_level=args.log_level,
            on_ready=announce,
            max_connections=args.max_connections,
            tls=tls,
            max_per_source=args.max_per_source,
            static_dir=args.static,
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
