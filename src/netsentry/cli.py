"""The ``netsentry`` command: ``replay``, ``rules check``, ``version``.

Flags follow Suricata's spelling where one exists (``-r``, ``-S``, ``-s``,
``-c``, ``-l``, ``-k``, ``--set``, ``--simulate-ips``). Exit status: 0 ok,
1 runtime or input error (unreadable capture, unwritable log directory),
2 usage or configuration error. Expected errors are one line on stderr,
never a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from netsentry import __version__
from netsentry.config import Config, ConfigError, get, load_config

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130      # 128 + SIGINT
EXIT_TERMINATED = 143       # 128 + SIGTERM

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")


class UsageError(Exception):
    """Bad command line: exit 2."""


class InputError(Exception):
    """Bad input (captures, rules, log directory): exit 1."""


class Terminated(Exception):
    """SIGTERM during a replay: finish cleanly (flush flows, stats, close eve.json), then exit 143."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="netsentry", description="Network intrusion detection and prevention sensor.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    replay = sub.add_parser("replay", help="replay capture files through the sensor",
                            description="Replay pcap/pcapng files (or directories of them) through "
                                        "the sensor; writes LOGDIR/eve.json and prints a summary.")
    replay.add_argument("pcaps", nargs="*", metavar="PCAP",
                        help="capture file, or a directory whose *.pcap, *.pcapng and *.cap files are replayed in first-packet time order")
    replay.add_argument("-r", dest="more_pcaps", action="append", default=[], metavar="PCAP",
                        help="capture file or directory (Suricata's spelling; may repeat)")
    replay.add_argument("-S", dest="exclusive_rules", action="append", default=[], metavar="RULES",
                        help="rule file to load instead of the configured rule-files (may repeat)")
    replay.add_argument("-s", dest="extra_rules", action="append", default=[], metavar="RULES",
                        help="rule file to load in addition to the configured rule-files (may repeat)")
    _config_flags(replay)
    replay.add_argument("-l", dest="logdir", default=".", metavar="LOGDIR",
                        help="directory for eve.json (default: current directory)")
    replay.add_argument("-k", dest="checksums", choices=("all", "none"),
                        help="checksum validation: all (bad-checksum packets are not inspected) or none")
    replay.add_argument("--simulate-ips", action="store_true",
                        help="inline (IPS) mode: drop rules drop, drops are counted and logged")
    replay.add_argument("-q", "--quiet", action="store_true", help="no summary, no progress bar")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")

    rules = sub.add_parser("rules", help="rule file tools")
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="SUBCOMMAND", parser_class=_Parser)
    check = rules_sub.add_parser("check", help="parse rule files and report every problem with file:line")
    check.add_argument("files", nargs="+", metavar="FILE")
    _config_flags(check)
    check.add_argument("--strict", action="store_true", help="warnings count as errors")
    check.add_argument("--verbose", action="store_true", help="list every skipped rule, not a few per reason")

    sub.add_parser("version", help="print the version")
    return parser


def _config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", dest="config", metavar="CONFIG", help="configuration file (YAML)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one configuration value, e.g. --set flow.max-flows=100000 (may repeat)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        handler = COMMANDS[args.command]
        return handler(args, parser)
    except (UsageError, ConfigError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    except InputError as exc:
        _error(str(exc))
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED


def _error(message: str) -> None:
    text = message if message.startswith(("netsentry", "config error")) else f"netsentry: {message}"
    print(text.replace("\n", " "), file=sys.stderr)


# --- version ------------------------------------------------------------------

def cmd_version(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    print(f"netsentry {__version__}")
    return EXIT_OK


# --- rules check --------------------------------------------------------------

def cmd_rules(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.rules_command != "check":
        raise UsageError("netsentry rules: expected a subcommand: check (see netsentry rules --help)")
    config = load_config(args.config, args.overrides)
    _setup_logging(config)
    from netsentry.rules.check import run
    return run(list(args.files), config, bool(args.strict), verbose=bool(args.verbose))


# --- replay -------------------------------------------------------------------

def cmd_replay(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    targets = list(args.pcaps) + list(args.more_pcaps)
    if not targets:
        raise UsageError("netsentry replay: give at least one PCAP (see netsentry replay --help)")
    config = load_config(args.config, args.overrides)
    apply_replay_flags(config, args)
    _setup_logging(config)
    paths = expand_captures(targets)

    from netsentry.capture import CaptureError, read_captures
    try:
        source = read_captures(paths)
    except CaptureError as exc:
        raise InputError(str(exc)) from None
    check_link_types(source)
    ruleset = load_ruleset(config)

    from netsentry.output import OutputContext, open_outputs
    from netsentry.sensor import Sensor
    from netsentry.summary import ReplayProgress, format_summary

    sensor = Sensor(config, [], ruleset)       # every stage's settings checked before any file is touched
    logdir = Path(args.logdir)
    try:
        outputs = open_outputs(config.get("outputs") or {}, OutputContext(logdir=logdir))
    except OSError as exc:
        raise InputError(str(exc)) from None
    sensor.attach_outputs(outputs)
    progress = None
    if not (args.quiet or args.no_progress):
        progress = ReplayProgress(source.size)
    stopped_by: str | None = None
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    from netsentry.log import get_logger
    get_logger().info("replay started", files=len(paths), bytes=source.size, logdir=str(logdir),
                      ips=sensor.inline)
    from netsentry.output.hangup import Hangup
    hangup = Hangup(sensor.reopen_outputs).install()     # logrotate: SIGHUP reopens eve.json
    try:
        sensor.run(hangup.guard(source), progress)
    except KeyboardInterrupt:
        stopped_by = "SIGINT"
    except Terminated:
        stopped_by = "SIGTERM"
    finally:
        signal.signal(signal.SIGTERM, previous)
        if progress is not None:
            progress.close()
        try:
            result = sensor.finish()
        except OSError as exc:
            raise InputError(f"cannot write output: {exc}") from None
        finally:
            hangup.restore()

    if not args.quiet:
        eve_path = _eve_path(outputs)
        print(format_summary(result, eve_path, inline=sensor.inline), flush=True)
    if stopped_by is not None:
        _error(f"interrupted by {stopped_by} after {result.packets:,} packets; output is complete up to there")
        return EXIT_INTERRUPTED if stopped_by == "SIGINT" else EXIT_TERMINATED
    if result.capture_error is not None:
        _error(str(result.capture_error))
        return EXIT_RUNTIME
    return EXIT_OK


def apply_replay_flags(config: Config, args: argparse.Namespace) -> None:
    """Fold the replay flags into the configuration the stages read."""
    if args.checksums is not None:
        config["decoder"]["checksum-validation"] = args.checksums == "all"
    if args.simulate_ips:
        config["stream"]["inline"] = True
    if args.exclusive_rules:
        # -S: exactly these files; absolute so default-rule-path does not apply to them
        config["rule-files"] = [os.path.abspath(p) for p in args.exclusive_rules]
    if args.extra_rules:
        config["rule-files"] = list(config.get("rule-files") or []) + [
            os.path.abspath(p) for p in args.extra_rules]


def expand_captures(targets: Sequence[str]) -> list[str]:
    """Files as given; directories become their capture files in time order.

    A directory is usually a capture split into pieces (`tcpdump -C`, ring
    buffers: `x.pcap9` sorts after `x.pcap10` by name), and the anomaly
    engine's windows only make sense if packet time moves forward, so its
    files are ordered by their first packet's timestamp (name breaks ties)."""
    paths: list[str] = []
    for target in targets:
        if os.path.isdir(target):
            found = sorted(
                (os.path.join(target, name) for name in os.listdir(target)
                 if name.lower().endswith(CAPTURE_SUFFIXES) and os.path.isfile(os.path.join(target, name))),
                key=_first_packet_time)
            if not found:
                raise InputError(f"{target}: no *.pcap, *.pcapng or *.cap files in this directory")
            paths.extend(found)
        else:
            paths.append(target)
    return paths


def _first_packet_time(path: str) -> tuple[float, str]:
    """Sort key: (first packet's time, path); damaged or empty files sort last,
    by name, and report their error when the replay reaches them."""
    from netsentry.capture import first_timestamp
    ts = first_timestamp(path)
    return (math.inf if ts is None else ts), path


def check_link_types(source: Any) -> None:
    """Refuse a capture whose link type no decoder handles, as Suricata does, before replaying."""
    from netsentry.decode.link import LINKTYPES
    for reader in getattr(source, "readers", [source]):
        for linktype in reader.linktypes:
            if linktype not in LINKTYPES:
                raise InputError(f"{reader.path}: unsupported link type {linktype} "
                                 f"(supported: {', '.join(str(t) for t in sorted(LINKTYPES))})")


def load_ruleset(config: Config) -> Any:
    """Load the configured rule files; None when there are none (no signature stage)."""
    from netsentry.sensor import rule_paths
    paths = rule_paths(config)
    if not paths:
        return None
    for path in paths:
        if not os.path.exists(path):
            raise InputError(f"{path}: cannot read rule file: No such file or directory")
    from netsentry.log import get_logger
    from netsentry.rules import UnsupportedError, load_rules
    ruleset = load_rules(paths, config)
    log = get_logger()
    for warning in ruleset.warnings:
        log.warning(warning)
    # A wrong rule is worth a line each; rules that are merely unsupported (ET Open:
    # 21k, mostly app-layer) are summarised by reason, `rules check --verbose` lists them.
    unsupported: dict[str, list[Any]] = {}
    for err in ruleset.errors:
        if isinstance(err, UnsupportedError):
            unsupported.setdefault(err.category, []).append(err)
        else:
            log.warning("rule skipped", error=str(err))
    for reason, errs in sorted(unsupported.items(), key=lambda kv: -len(kv[1])):
        log.warning("rules skipped: unsupported", reason=reason, rules=len(errs), example=str(errs[0]))
    log.info("rules loaded", signatures=len(ruleset.signatures), skipped=len(ruleset.errors),
             files=len(ruleset.files), seconds=round(ruleset.load_seconds, 3))
    return ruleset


def _setup_logging(config: Config) -> None:
    from netsentry.log import setup_logging
    try:
        setup_logging(str(get(config, "logging.level", "info")), str(get(config, "logging.format", "auto")))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _eve_path(outputs: list[Any]) -> Path | None:
    for out in outputs:
        path = getattr(out, "path", None)
        if out.name == "eve-log" and path is not None:
            return path
    return None


COMMANDS = {"replay": cmd_replay, "rules": cmd_rules, "version": cmd_version}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
