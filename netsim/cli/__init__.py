"""The `netsim` command line: every command's arguments, output and exit code live in this package.

Exit codes (the same for every command, documented in the README):
  0  ran, and no expectation was violated (outcomes without an expectation included)
  1  an expectation was violated (for `netsim pair`: the session did not connect)
  2  bad input or usage: one line `netsim: error: ...` naming the file, field or value
  3  netsim itself broke (a traceback follows)
  4  sessions stayed inconclusive (the machine's load; docs/load.md) and no expectation was violated
130  interrupted (Ctrl-C or SIGTERM): "netsim: interrupted"; the lab is removed, records so far are kept
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from netsim.cli import doctor as doctor_cmds
from netsim.cli import estimate as estimate_cmds
from netsim.cli import lab as lab_cmds
from netsim.cli import pair as pair_cmds
from netsim.cli import results as results_cmds
from netsim.cli import rules as rules_cmds
from netsim.cli import run as run_cmds
from netsim.cli import services as service_cmds
from netsim.cli.common import (
    EXIT_BROKEN,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageParser,
    input_errors,
    show_warnings,
)
from netsim.errors import printable
from netsim.pause import pause_point


def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(prog="netsim", description="NAT traversal lab for WebRTC")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lab_cmds.add_parsers(sub)
    pair_cmds.add_parsers(sub)
    run_cmds.add_parsers(sub)
    results_cmds.add_parsers(sub)
    service_cmds.add_parsers(sub)
    rules_cmds.add_parsers(sub)
    estimate_cmds.add_parsers(sub)
    doctor_cmds.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # usage errors: one line, exit 2 (UsageParser)
    show_warnings()
    try:
        pause_point("imports")
        return int(args.func(args))
    except input_errors() as e:
        return _input_error(e)
    except KeyboardInterrupt:
        print("netsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader left early (`netsim export RUN --csv | head`): not a bug
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # else Python complains at exit
        return EXIT_OK
    except Exception:
        traceback.print_exc()
        print("netsim: internal error (a bug in netsim; the traceback above says where)", file=sys.stderr)
        return EXIT_BROKEN


def _input_error(e: BaseException) -> int:
    text = " ".join(str(e).split()) or type(e).__name__
    print(f"netsim: error: {printable(text)}", file=sys.stderr)  # a record's text stays text
    return EXIT_INPUT


if __name__ == "__main__":
    raise SystemExit(main())
