"""Daemon operations around a running sensor: reload, block list, control socket, systemd.

`netsentry run` (daemon.py) builds one `Operations` after the sensor and
before capture starts, and calls `tick` from the packet source's wake-ups
(at least once a second, traffic or not). Everything here runs in the main
thread between packets; the only other threads are the control socket's
server and a rule reload's build, and both hand their results over through
queues that `tick` drains.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping
from typing import Any

from netsentry import notify
from netsentry.config import ConfigError, get
from netsentry.control import Command, CommandError, ControlServer, Reply, nok, ok
from netsentry.log import get_logger
from netsentry.reload import RuleReloader
from netsentry.respond.blocklist import parse_address
from netsentry.respond.responder import Responder

DEFAULT_SOCKET = "/run/netsentry/netsentry.socket"


def socket_path(config: Mapping[str, Any]) -> str | None:
    """``unix-command.filename`` when ``unix-command.enabled``; None when the socket is off."""
    if not get(config, "unix-command.enabled", True):
        return None
    path = get(config, "unix-command.filename", DEFAULT_SOCKET)
    if not isinstance(path, str) or not path:
        raise ConfigError(f"expected a socket path, got {path!r}", "unix-command.filename")
    return path


def build_responder(sensor: Any, config: Mapping[str, Any]) -> Responder | None:
    """The block list and its triggers (``respond.blocklist``), attached to `sensor`; None when off."""
    if not get(config, "respond.blocklist.enabled", True):
        return None
    from netsentry.respond.blocklist import build_blocklist
    blocklist, policy = build_blocklist(config)
    responder = Responder(sensor, blocklist, policy)
    sensor.responder = responder
    return responder


class Operations:
    def __init__(self, sensor: Any, config: Mapping[str, Any],
                 load_config: Callable[[], Mapping[str, Any]]) -> None:
        self.sensor = sensor
        self.config = config
        sensor.live = True
        self.responder = sensor.responder if sensor.responder is not None else build_responder(sensor, config)
        self.reloader = RuleReloader(sensor, load_config)
        sensor.counter_sources.append(self.reloader.stats)
        self.watchdog = notify.Watchdog()
        self.control: ControlServer | None = None
        path = socket_path(config)
        if path is not None:
            self.control = ControlServer(path, self.commands())
            sensor.counter_sources.append(self.control.stats)

    # --- start and stop -------------------------------------------------------------------

    def start(self) -> None:
        """Open the control socket (as root, before privileges are dropped).

        A socket that cannot be opened (another sensor holds the path, a read-only
        directory) is logged as an error and the sensor runs without it, as
        capture matters more than control; `netsentry ctl` then says it cannot reach it."""
        if self.control is None:
            return
        try:
            self.control.start()
        except OSError as exc:
            get_logger().error("control socket unavailable; running without it", error=str(exc))
            self.control = None

    def owned_paths(self) -> list[str]:
        """What the run-as user must own to clean up after itself: the control socket and its directory."""
        if self.control is None or not os.path.exists(self.control.path):
            return []
        return [os.path.dirname(self.control.path) or ".", self.control.path]

    def ready(self) -> None:
        """Capture is running: tell systemd (Type=notify) and start the watchdog keep-alives."""
        notify.notify("READY=1", "STATUS=running", f"MAINPID={os.getpid()}")
        self.watchdog.tick()

    def stopping(self) -> None:
        notify.notify("STOPPING=1", "STATUS=stopping")
        if self.control is not None:
            self.control.close()

    def on_reload(self) -> None:
        """SIGUSR2 (lifecycle.on_reload)."""
        self.reloader.request()

    def tick(self, now: float) -> None:
        """The daemon's wake-up: queued control commands, a finished reload, expiries, keep-alive."""
        if self.control is not None:
            self.control.drain()
        self.reloader.poll()
        if self.responder is not None:
            self.responder.tick(now)
        self.watchdog.tick()

    # --- control commands ---------------------------------------------------------------------

    def commands(self) -> dict[str, Command]:
        """The control socket's commands (``netsentry ctl``), by name."""
        table = [
            Command("stats", "every counter of the stats record, now", self._stats),
            Command("reload", "reload the rules (as SIGUSR2); answers when done", self._reload),
            Command("blocklist-list", "the blocked sources with reason, hits and time left", self._bl_list),
            Command("blocklist-add", "block ADDRESS for TTL seconds (default anomaly.block-ttl)",
                    self._bl_add, _validate_add),
            Command("blocklist-del", "unblock ADDRESS", self._bl_del, _validate_del),
            Command("shutdown", "stop the sensor cleanly (as SIGTERM)", self._shutdown),
        ]
        return {c.name: c for c in table}

    def _stats(self, args: dict[str, Any], reply: Reply) -> None:
        reply(ok(self.sensor.counters()))

    def _reload(self, args: dict[str, Any], reply: Reply) -> None:
        def answer(result: dict[str, Any]) -> None:
            reply(ok(result) if result["ok"] else nok(result["error"]))
        self.reloader.request(answer)

    def _blocklist(self) -> Any:
        if self.responder is None:
            raise CommandError("the block list is off (respond.blocklist.enabled: false)")
        return self.responder.blocklist

    def _bl_list(self, args: dict[str, Any], reply: Reply) -> None:
        reply(ok(self._blocklist().listing()))

    def _bl_add(self, args: dict[str, Any], reply: Reply) -> None:
        blocklist = self._blocklist()
        if not blocklist.add(args["packed"], "manual (ctl)", ttl=args.get("ttl")):
            raise CommandError(f"{args['address']} is in the allow list (anomaly.ignore-sources or "
                               f"this host's own address): not blocked")
        get_logger().info("blocklist add", address=args["address"], ttl=args.get("ttl", blocklist.ttl))
        reply(ok(f"blocked {args['address']}"))

    def _bl_del(self, args: dict[str, Any], reply: Reply) -> None:
        if not self._blocklist().remove(args["packed"]):
            raise CommandError(f"{args['address']} is not in the block list")
        get_logger().info("blocklist del", address=args["address"])
        reply(ok(f"unblocked {args['address']}"))

    def _shutdown(self, args: dict[str, Any], reply: Reply) -> None:
        reply(ok("shutting down"))
        os.kill(os.getpid(), signal.SIGTERM)      # the same clean stop as `systemctl stop`


def _validate_del(args: dict[str, Any]) -> dict[str, Any]:
    address = args.get("address")
    if not isinstance(address, str):
        raise ValueError("needs an address, e.g. 192.0.2.7 or 2001:db8::7")
    extra = set(args) - {"address"}
    if extra:
        raise ValueError(f"unknown argument(s): {', '.join(sorted(extra))}")
    return {"address": address, "packed": parse_address(address)}


def _validate_add(args: dict[str, Any]) -> dict[str, Any]:
    ttl = args.get("ttl")
    out = _validate_del({k: v for k, v in args.items() if k != "ttl"})
    if ttl is not None:
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl < 0 or ttl != ttl:
            raise ValueError(f"ttl must be a number of seconds >= 0 (0: until removed), got {ttl!r}")
        out["ttl"] = float(ttl)
    return out
