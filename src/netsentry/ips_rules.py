"""``netsentry ips rules``: the firewall rules that send traffic through the inline sensor.

Admins should not hand-write these: one missing ``--queue-bypass`` turns a
sensor restart into an outage, and forgetting ip6tables leaves IPv6
uninspected. The rules printed (or installed/removed) here:

- queue every packet of the chain (FORWARD on a gateway; INPUT/OUTPUT for the
  host's own traffic) to NFQUEUE: ``--queue-num N`` for one queue,
  ``--queue-balance A:B`` for several (the kernel hashes a flow's addresses
  symmetrically, so both directions of a flow reach the same queue);
- ``--queue-bypass``: while no sensor is bound to the queue (stopped,
  restarting, killed) packets pass uninspected instead of being dropped
  (fail-open; a full queue is the sensor's own ``nfq.fail-open``);
- the same for IPv4 (iptables) and IPv6 (ip6tables).

``--nft`` prints the nftables equivalent (an ``inet`` table covers both
families) for hosts that use nft; it is not installed by this command.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from typing import Any

CHAINS = ("FORWARD", "INPUT", "OUTPUT")
TOOLS = ("iptables", "ip6tables")


def add_parser(sub: Any) -> None:
    """Register ``ips`` (with its ``rules`` subcommand) on the CLI's subcommand parser."""
    ips = sub.add_parser("ips", help="inline (IPS) setup helpers")
    ips_sub = ips.add_subparsers(dest="ips_command", metavar="SUBCOMMAND", parser_class=type(ips))
    rules = ips_sub.add_parser("rules", help="print, install or remove the iptables/ip6tables NFQUEUE rules",
                               description="Print the iptables and ip6tables rules that queue traffic to "
                                           "`netsentry run -q`, with --queue-bypass (fail-open while the "
                                           "sensor is not running).")
    rules.add_argument("--queues", required=True, metavar="A[:B]", help="queue number or range, as `run -q`")
    rules.add_argument("--chain", choices=CHAINS, default="FORWARD",
                       help="FORWARD (a gateway's transit traffic, default), INPUT or OUTPUT (this host's own)")
    what = rules.add_mutually_exclusive_group()
    what.add_argument("--install", action="store_true", help="add the rules (skips rules already present)")
    what.add_argument("--remove", action="store_true", help="delete the rules (skips rules not present)")
    what.add_argument("--nft", action="store_true", help="print an nftables ruleset instead")


def queue_target(queues: list[int]) -> list[str]:
    """The NFQUEUE target arguments for a contiguous range of queues."""
    if len(queues) == 1:
        return ["-j", "NFQUEUE", "--queue-num", str(queues[0]), "--queue-bypass"]
    return ["-j", "NFQUEUE", "--queue-balance", f"{queues[0]}:{queues[-1]}", "--queue-bypass"]


def rule_specs(queues: list[int], chain: str) -> list[tuple[str, list[str]]]:
    """(tool, rule specification without the -I/-D/-C verb) for IPv4 and IPv6."""
    return [(tool, [chain] + queue_target(queues)) for tool in TOOLS]


def nft_ruleset(queues: list[int], chain: str) -> str:
    hook = chain.lower()
    target = str(queues[0]) if len(queues) == 1 else f"{queues[0]}-{queues[-1]}"
    return (
        "table inet netsentry {\n"
        f"\tchain {hook} {{\n"
        f"\t\ttype filter hook {hook} priority 0; policy accept;\n"
        f"\t\tqueue flags bypass to {target}\n"
        "\t}\n"
        "}\n"
    )


def _contiguous(queues: list[int]) -> list[int]:
    from netsentry.cli import UsageError
    if queues != list(range(queues[0], queues[0] + len(queues))):
        raise UsageError("netsentry ips rules: --queues must be one number or one range A:B")
    return queues


def cmd_ips(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from netsentry.capture.nfqueue import parse_queues
    from netsentry.cli import EXIT_OK, InputError, UsageError
    if getattr(args, "ips_command", None) != "rules":
        raise UsageError("netsentry ips: expected a subcommand: rules (see netsentry ips --help)")
    queues = parse_queues(args.queues, "--queues")
    if not queues:
        raise UsageError("netsentry ips rules: --queues needs a queue number or a range A:B")
    queues = _contiguous(queues)
    if args.nft:
        print(nft_ruleset(queues, args.chain), end="")
        return EXIT_OK
    specs = rule_specs(queues, args.chain)
    if not (args.install or args.remove):
        for tool, spec in specs:
            print(" ".join([tool, "-I"] + spec))
        return EXIT_OK
    for tool, _spec in specs:
        if shutil.which(tool) is None:
            raise InputError(f"netsentry ips rules: {tool} not found (Debian package iptables)")
    for tool, spec in specs:
        present = subprocess.run([tool, "-w", "-C"] + spec, capture_output=True).returncode == 0
        if args.install and present or args.remove and not present:
            print(f"{tool}: already {'present' if present else 'absent'}: {' '.join(spec)}")
            continue
        verb = "-I" if args.install else "-D"
        done = subprocess.run([tool, "-w", verb] + spec, capture_output=True, text=True)
        if done.returncode != 0:
            reason = (done.stderr or done.stdout).strip().splitlines()
            raise InputError(f"netsentry ips rules: {tool} {verb} {' '.join(spec)}: "
                             f"{reason[-1] if reason else 'failed'}")
        print(f"{tool}: {'installed' if args.install else 'removed'}: {' '.join(spec)}")
    return EXIT_OK
