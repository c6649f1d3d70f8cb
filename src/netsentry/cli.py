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
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from netsentry import __version__
from netsentry.config import Config, ConfigError, get, load_config

from netsentry.lifecycle import EXIT_BAD_INPUT, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, EXIT_USAGE

EXIT_RUNTIME = EXIT_BAD_INPUT
EXIT_INTERRUPTED = EXIT_SIGINT
EXIT_TERMINATED = EXIT_SIGTERM

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")


class UsageError(Exception):
    """Bad command line: exit 2."""


class InputError(Exception):
    """Bad input (captures, rules, log directory): exit 1."""


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
    pipeline_flags(replay, bpf_help="replay only the packets this capture filter (tcpdump syntax, in a file) accepts")
    replay.add_argument("--simulate-ips", action="store_true",
                        help="inline (IPS) mode: drop rules drop, drops are counted and logged")
    replay.add_argument("-q", "--quiet", action="store_true", help="no summary, no progress bar")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")
    # a flag, not an optional value: `--report capture.pcap` must not take the capture as OUT
    replay.add_argument("--report", action="store_true",
                        help="at the end, write the HTML report of eve.json to LOGDIR/report.html")
    replay.add_argument("--report-file", metavar="OUT", help="write the report here instead (implies --report)")
    from netsentry.workers import add_worker_flags
    add_worker_flags(replay)

    rules = sub.add_parser("rules", help="rule file tools")
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="SUBCOMMAND", parser_class=_Parser)
    check = rules_sub.add_parser("check", help="parse rule files and report every problem with file:line")
    check.add_argument("files", nargs="+", metavar="FILE")
    _config_flags(check)
    check.add_argument("--strict", action="store_true", help="warnings count as errors")
    check.add_argument("--verbose", action="store_true", help="list every skipped rule, not a few per reason")

    sub.add_parser("version", help="print the version")
    from netsentry.output.integrity_verify import add_parser as add_log_parser
    from netsentry.report.command import add_parser as add_report_parser
    add_report_parser(sub)
    add_log_parser(sub, _Parser)
    from netsentry import daemon, ips_rules
    daemon.add_parser(sub)
    ips_rules.add_parser(sub)
    from netsentry import ctl
    ctl.add_parser(sub)
    return parser


def pipeline_flags(p: argparse.ArgumentParser, bpf_help: str) -> None:
    """The flags every command that runs the pipeline shares (replay, run), in Suricata's
    spelling: rules (-S/-s), configuration (-c, --suricata-config, --set), -l, -k, -F."""
    p.add_argument("-S", dest="exclusive_rules", action="append", default=[], metavar="RULES",
                   help="rule file to load instead of the configured rule-files (may repeat)")
    p.add_argument("-s", dest="extra_rules", action="append", default=[], metavar="RULES",
                   help="rule file to load in addition to the configured rule-files (may repeat)")
    _config_flags(p)
    p.add_argument("-l", dest="logdir", default=".", metavar="LOGDIR",
                   help="directory for eve.json (default: current directory)")
    p.add_argument("-k", dest="checksums", choices=("all", "none"),
                   help="checksum validation: all (bad-checksum packets are not inspected) or none")
    p.add_argument("-F", dest="bpf_file", metavar="BPF-FILE", help=bpf_help)
    p.add_argument("--profile-rules", action="store_true",
                   help="per-rule profiling (checks, matches, time): at the end the top rules by total "
                        "time go to stderr and LOGDIR/rule_perf.log (detect/profile.py)")
    p.add_argument("--profile-rules-top", type=int, default=20, metavar="N",
                   help="how many rules --profile-rules reports (default 20)")
    p.add_argument("-v", dest="verbose_log", action="count", default=0,
                   help="more log output: -v info, -vv and more debug (Suricata's -v; may repeat)")
    p.add_argument("--no-random", action="store_true",
                   help="accepted for Suricata compatibility: netsentry's hashing uses no random seed")
    p.add_argument("--data-dir", dest="data_dir", metavar="DIR",
                   help="directory for state files (datasets 'save'/'state'); default: LOGDIR "
                        "(config key default-data-dir)")


def _config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", dest="config", metavar="CONFIG",
                   help="configuration file (YAML; a Suricata suricata.yaml is recognised, see --suricata-config)")
    p.add_argument("--suricata-config", dest="suricata_config", metavar="YAML",
                   help="a Suricata suricata.yaml ('' for none): the keys netsentry shares (vars, outputs.eve-log, "
                        "stream, threshold-file, ...) are applied before -c and --set, the rest ignored with a note; "
                        "--set then also accepts Suricata keys netsentry lacks (noted, ignored)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one configuration value, e.g. --set flow.max-flows=100000 (may repeat)")


# Commands whose process ends when the command returns, with nothing of theirs left open:
# the entry point skips the interpreter's tear-down for them (see _fast_exit).
FAST_EXIT = frozenset({"replay", "rules"})


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        bpf_words(args, extra, parser)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        handler = COMMANDS[args.command]
        status = handler(args, parser)
        if argv is None and args.command in _ENTRY and sys.getprofile() is None and sys.gettrace() is None:
            _fast_exit(status)          # not under cProfile or coverage: they save their data at exit
        return status
    except (UsageError, ConfigError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    except InputError as exc:
        _error(str(exc))
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED


_ENTRY: set[str] = set()


def bpf_words(args: argparse.Namespace, extra: list[str], parser: argparse.ArgumentParser) -> None:
    """Suricata's command line: what follows the options is a BPF filter expression
    (`suricata -r x.pcap port 22`). For replay the words argparse did not take become
    `args.bpf_expression`; anything else left over, or an option among them, is an error."""
    if not extra:
        return
    if getattr(args, "command", None) == "replay" and not any(w.startswith("-") for w in extra):
        if getattr(args, "bpf_file", None):
            parser.error("a BPF filter expression and -F cannot be given together")
        args.bpf_expression = " ".join(extra)
        return
    parser.error(f"unrecognized arguments: {' '.join(extra)}")


def _fast_exit(status: int) -> NoReturn:
    """End the process now, without the interpreter's tear-down.

    Tear-down walks every object once more (module dicts, then a last full collection)
    and, with a loaded ET Open ruleset of ~10^6 objects, frees them one by one: a few
    tenths of a second of a warm-cache replay that has nothing left to do. Only called
    from the process entry point (`entry`), after the command returned: its outputs are
    flushed and closed (Sensor.finish), worker processes joined; what is left is flushing
    Python's own buffers and the logging handlers, done here. atexit handlers do not run:
    netsentry registers none on these paths."""
    import logging
    try:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(status)


def entry() -> int:
    """The ``netsentry`` console script and ``python -m netsentry``: `main` as the whole
    process, so the replay and rules commands may end it without tear-down."""
    _ENTRY.update(FAST_EXIT)
    return main()


def _error(message: str) -> None:
    text = message if message.startswith(("netsentry", "config error")) else f"netsentry: {message}"
    print(text.replace("\n", " "), file=sys.stderr)


# --- version ------------------------------------------------------------------

def cmd_version(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from netsentry._compiled import status
    print(f"netsentry {__version__}")
    print(status())   # the one place that says which path runs (compiled or NETSENTRY_PURE=1)
    return EXIT_OK


# --- rules check --------------------------------------------------------------

def cmd_rules(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.rules_command != "check":
        raise UsageError("netsentry rules: expected a subcommand: check (see netsentry rules --help)")
    config = load_config(args.config, args.overrides, args.suricata_config)
    _setup_logging(config)
    from netsentry.rules.check import run
    return run(list(args.files), config, bool(args.strict), verbose=bool(args.verbose))


# --- replay -------------------------------------------------------------------

def cmd_replay(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from netsentry.lifecycle import Lifecycle, StopRequested, signal_name
    lifecycle = Lifecycle("replay")
    try:
        with lifecycle:
            return _replay(args, lifecycle)
    except StopRequested as stop:       # during start-up: nothing was written yet
        _error(f"interrupted by {signal_name(stop.signum)} during start-up; nothing written")
        return lifecycle.exit_code(stop.signum, ok=False)


def _replay(args: argparse.Namespace, lifecycle: Any) -> int:
    targets = list(args.pcaps) + list(args.more_pcaps)
    if not targets:
        raise UsageError("netsentry replay: give at least one PCAP (see netsentry replay --help)")
    config = load_config(args.config, args.overrides, args.suricata_config)
    apply_replay_flags(config, args)
    from netsentry.rules.variables import check_variables
    check_variables(config)         # every $VAR, even with no rules loaded (HOME_NET feeds the anomaly engine)
    _setup_logging(config)
    paths = expand_captures(targets)

    from netsentry.capture import CaptureError, read_captures
    try:
        source = read_captures(paths)
    except CaptureError as exc:
        raise InputError(str(exc)) from None
    check_link_types(source)
    if args.bpf_file:
        source = filtered_source(source, args.bpf_file)
    elif getattr(args, "bpf_expression", None):
        source = filtered_source(source, None, args.bpf_expression)
    ruleset = load_ruleset(config)

    from netsentry.lifecycle import signal_name
    from netsentry.output import OutputContext, open_outputs
    from netsentry.sensor import Sensor
    from netsentry.summary import ReplayProgress, format_summary

    sensor = Sensor(config, [], ruleset)       # every stage's settings checked before any file is touched
    logdir = Path(args.logdir)
    from netsentry.workers import replay_command, workers_for_replay
    workers = workers_for_replay(config, args)
    if workers > 1 and args.profile_rules:
        raise UsageError("--profile-rules runs in one process: use --workers 1")
    if workers > 1:
        status = replay_command(args, config, paths, ruleset, lifecycle, workers)
        if (args.report or args.report_file) and status == EXIT_OK:
            eve_path = None
            if get(config, "outputs.eve-log.enabled", False):
                eve_path = logdir / str(get(config, "outputs.eve-log.filename", "eve.json"))
            return _write_report(args, eve_path)
        return status
    profiler = rule_profiler(args, sensor)
    lifecycle.running()                        # from here a signal is a clean stop: outputs get flushed
    try:
        outputs = open_outputs(config.get("outputs") or {}, OutputContext(logdir=logdir, ips=bool(get(config, "stream.inline", False))))
    except OSError as exc:
        raise InputError(str(exc)) from None
    sensor.attach_outputs(outputs)
    progress = None
    if not (args.quiet or args.no_progress):
        progress = ReplayProgress(source.size)
    from netsentry.log import get_logger
    get_logger().info("replay started", files=len(paths), bytes=source.size, logdir=str(logdir),
                      ips=sensor.inline)
    lifecycle.on_reopen(sensor.reopen_outputs)         # SIGHUP (logrotate): every output reopens
    try:
        sensor.run(lifecycle.guard(source), progress)
    finally:
        if progress is not None:
            progress.close()
        try:
            result = sensor.finish(lifecycle)
        except OSError as exc:
            raise InputError(f"cannot write output: {exc}") from None

    if profiler is not None:
        profiler.report(logdir)
    if not args.quiet:
        eve_path = _eve_path(outputs)
        print(format_summary(result, eve_path, inline=sensor.inline), flush=True)
    stopped_by = lifecycle.stopped_by
    if args.report or args.report_file:
        status = _write_report(args, _eve_path(outputs))
        if status != EXIT_OK and stopped_by is None and result.capture_error is None:
            return status
    if stopped_by is not None:
        how = ("the end-of-run flush was cut short by a second signal" if lifecycle.interrupted
               else "output is complete up to there")
        _error(f"interrupted by {signal_name(stopped_by)} after {result.packets:,} packets; {how}")
    elif result.capture_error is not None:
        _error(str(result.capture_error))
    return lifecycle.exit_code(stopped_by, ok=result.capture_error is None)


def rule_profiler(args: argparse.Namespace, sensor: Any) -> Any:
    """`--profile-rules`: the profiling path installed into the sensor's engine (detect/profile.py)."""
    if not getattr(args, "profile_rules", False):
        return None
    if args.profile_rules_top < 1:
        raise UsageError(f"--profile-rules-top: expected a positive number, got {args.profile_rules_top}")
    from netsentry.detect.profile import RuleProfiler
    return RuleProfiler(sensor.signatures, args.profile_rules_top)


def _write_report(args: argparse.Namespace, eve_path: Path | None) -> int:
    """`replay --report`: the HTML report of the run's eve.json (report/)."""
    from netsentry.report.command import run as write_report
    if eve_path is None:
        _error("--report needs the eve-log output (outputs.eve-log.enabled: true)")
        return EXIT_RUNTIME
    return write_report(str(eve_path), args.report_file or str(Path(args.logdir) / "report.html"),
                        quiet=bool(args.quiet))


def apply_replay_flags(config: Config, args: argparse.Namespace) -> None:
    """Fold the replay flags into the configuration the stages read."""
    if args.checksums is not None:
        config["decoder"]["checksum-validation"] = args.checksums == "all"
    if getattr(args, "verbose_log", 0):
        config.setdefault("logging", {})["level"] = "info" if args.verbose_log == 1 else "debug"
    data_dir = getattr(args, "data_dir", None)
    if data_dir:
        config["default-data-dir"] = os.path.abspath(data_dir)
    elif not config.get("default-data-dir"):
        # Suricata's default is a system directory; a replay keeps its state beside its logs
        config["default-data-dir"] = os.path.abspath(getattr(args, "logdir", ".") or ".")
    if args.simulate_ips:
        config["stream"]["inline"] = True
    for flag, files in (("-S", args.exclusive_rules), ("-s", args.extra_rules)):
        for name in files:
            if os.path.isdir(name):
                raise UsageError(f"netsentry replay: {flag} {name}: is a directory; give a rules file")
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


def filtered_source(source: Any, bpf_file: str | None, expression: str | None = None) -> Any:
    """``replay -F FILE`` (or a filter expression after the options): only the records the
    filter accepts; a bad filter is a usage error (exit 2)."""
    from netsentry.capture.bpf import BpfError, FilteredCapture, read_filter_file
    try:
        filtered = FilteredCapture(source, read_filter_file(bpf_file) if bpf_file else str(expression))
        filtered.check({lt for reader in getattr(source, "readers", [source]) for lt in reader.linktypes})
    except BpfError as exc:
        raise UsageError(str(exc)) from None
    return filtered


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
    from netsentry.rules import UnsupportedError
    from netsentry.rules.cache import load_ruleset as load_rules_cached
    ruleset = load_rules_cached(paths, config)     # detect.rule-cache (rules/cache.py)
    for err in ruleset.errors:       # a bad disable/enable/modify.conf line stops start-up
        if err.category == "rule management":
            raise InputError(str(err))
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
    from netsentry.config import take_notes
    from netsentry.log import get_logger
    for message, fields in take_notes():
        get_logger().info(message, **fields)


def _eve_path(outputs: list[Any]) -> Path | None:
    for out in outputs:
        path = getattr(out, "path", None)
        if out.name == "eve-log" and path is not None:
            return path
    return None


def cmd_report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from netsentry.report.command import cmd_report as run
    return run(args, parser)


def cmd_log(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from netsentry.output.integrity_verify import cmd_log as run
    return run(args, parser)


def cmd_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from netsentry.daemon import cmd_run as run
    return run(args, parser)


def cmd_ips(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from netsentry.ips_rules import cmd_ips as ips
    return ips(args, parser)


def cmd_ctl(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from netsentry.ctl import cmd_ctl as ctl
    return ctl(args, parser)


COMMANDS = {"replay": cmd_replay, "rules": cmd_rules, "version": cmd_version,
            "report": cmd_report, "log": cmd_log, "run": cmd_run, "ips": cmd_ips, "ctl": cmd_ctl}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(entry())
