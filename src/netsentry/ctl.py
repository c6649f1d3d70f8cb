"""``netsentry ctl``: talk to a running ``netsentry run`` over its control socket (control.py).

    netsentry ctl stats
    netsentry ctl reload
    netsentry ctl blocklist list
    netsentry ctl blocklist add ADDR [TTL]
    netsentry ctl blocklist del ADDR
    netsentry ctl shutdown

Prints the sensor's answer as JSON on stdout. Exit status: 0 the sensor did
it, 1 the sensor refused (the reason on stderr, nothing changed) or cannot be
reached, 2 a bad command line (checked here before anything is sent).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from typing import Any

from netsentry.config import load_config


def add_parser(sub: Any) -> None:
    """Register ``ctl`` on the CLI's subcommand parser (cli.py calls this)."""
    ctl = sub.add_parser("ctl", help="control a running sensor (stats, reload, blocklist, shutdown)",
                         description="Send one command to a running `netsentry run` over its control "
                                     "socket (unix-command.filename) and print the JSON answer.")
    ctl.add_argument("--socket", metavar="PATH", help="control socket (default: unix-command.filename)")
    ctl.add_argument("-c", dest="config", metavar="CONFIG", help="configuration file naming the socket")
    ctl.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override one configuration value")
    ctl.add_argument("words", nargs="+", metavar="COMMAND",
                     help="stats | reload | blocklist list | blocklist add ADDR [TTL] | "
                          "blocklist del ADDR | shutdown")


def _address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"not an IP address: {text!r}") from None


def parse_words(words: list[str]) -> tuple[str, dict[str, Any]]:
    """The command line's words -> (socket command, arguments). ValueError with a usage hint."""
    head, rest = words[0], words[1:]
    if head in ("stats", "reload", "shutdown") and not rest:
        return head, {}
    if head == "blocklist" and rest:
        sub, args = rest[0], rest[1:]
        if sub == "list" and not args:
            return "blocklist-list", {}
        if sub == "del" and len(args) == 1:
            return "blocklist-del", {"address": _address(args[0])}
        if sub == "add" and len(args) in (1, 2):
            out: dict[str, Any] = {"address": _address(args[0])}
            if len(args) == 2:
                try:
                    ttl = float(args[1])
                except ValueError:
                    raise ValueError(f"TTL must be a number of seconds, got {args[1]!r}") from None
                if not ttl >= 0:
                    raise ValueError(f"TTL must be >= 0 (0: until removed), got {args[1]!r}")
                out["ttl"] = ttl
            return "blocklist-add", out
    raise ValueError(f"unknown command {' '.join(words)!r}: expected stats, reload, blocklist list, "
                     f"blocklist add ADDR [TTL], blocklist del ADDR or shutdown")


def cmd_ctl(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from netsentry.cli import EXIT_OK, EXIT_RUNTIME, UsageError
    from netsentry.control import request
    from netsentry.operations import socket_path
    try:
        command, arguments = parse_words(list(args.words))
    except ValueError as exc:
        raise UsageError(f"netsentry ctl: {exc}") from None
    path = args.socket
    if path is None:
        path = socket_path(load_config(args.config, args.overrides))
        if path is None:
            raise UsageError("netsentry ctl: the control socket is off (unix-command.enabled: false)")
    try:
        answer = request(path, command, arguments)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        print(f"netsentry ctl: cannot reach the sensor at {path}: {reason}", file=sys.stderr)
        return EXIT_RUNTIME
    if answer.get("return") != "OK":
        print(f"netsentry ctl: {answer.get('message', answer)}", file=sys.stderr)
        return EXIT_RUNTIME
    print(json.dumps(answer.get("message"), indent=2, sort_keys=True))
    return EXIT_OK
