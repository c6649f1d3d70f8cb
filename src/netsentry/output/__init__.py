"""Outputs: where events go. One module per output kind, registered by name.

The names are the keys of the ``outputs:`` section of the configuration
(``eve-log``, ``console``, later ``syslog``). A module registers a factory
with `register`; `open_outputs` builds the enabled ones. The sensor only
ever calls ``emit(event)``, ``flush()``, ``reopen()`` and ``close()``, and
asks each output which event types it wants (``event_types``) so it can skip
building events nobody will write.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from netsentry.config import ConfigError
from netsentry.event import Event

# Every event type the pipeline produces (EVE's `event_type` values).
EVENT_TYPES = ("alert", "drop", "anomaly", "flow", "stats", "http", "dns", "tls", "smtp", "ftp", "ftp_data", "ssh",
               "sip", "llmnr", "template", "dcerpc", "smb", "pgsql", "ldap", "enip", "modbus", "dnp3", "ike",
               "mqtt", "ntp", "tftp", "snmp", "krb5", "dhcp", "rfb", "websocket",
               "nfs", "quic")

# Modules that register an output kind; imported on first use so that
# importing `netsentry.output` stays cheap and free of cycles.
BUILTIN_MODULES = ("netsentry.output.eve", "netsentry.output.console", "netsentry.output.syslog",
                   "netsentry.output.redis", "netsentry.output.metrics")


@dataclass
class OutputContext:
    """What an output may need besides its own config section."""

    logdir: Path = Path(".")
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    # the engine runs inline (IPS: stream.inline, `replay --simulate-ips`): EVE's verdict
    # of a rejected packet is "drop" there and "alert" in IDS mode (Suricata's EveAddVerdict)
    ips: bool = False


class Output:
    """Base class (and interface) of an output."""

    name = ""
    # event types this output writes; None means every type
    event_types: frozenset[str] | None = None

    def emit(self, event: Event) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def attach_source(self, source: Any) -> None:
        """The sensor is about to read `source` (it has ``.path`` when it is capture
        files). Outputs that name the file in their records keep it; others ignore it."""

    def flush(self) -> None:
        pass

    def reopen(self) -> None:
        """SIGHUP (logrotate's postrotate, Suricata's convention): a file output
        reopens its path, so records after the rotation go to the new file and
        none is lost or written twice. Outputs without a file of their own
        (console, network senders) keep this no-op. Called in the main thread
        between packets, never from inside ``emit``."""

    def close(self) -> None:
        self.flush()

    def wants(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types


OutputFactory = Callable[[Mapping[str, Any], OutputContext], Output]
_REGISTRY: dict[str, OutputFactory] = {}


def register(name: str) -> Callable[[OutputFactory], OutputFactory]:
    """Decorator: make `factory` the output kind called `name` in ``outputs:``."""
    def deco(factory: OutputFactory) -> OutputFactory:
        _REGISTRY[name] = factory
        return factory
    return deco


def registered() -> dict[str, OutputFactory]:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    return dict(_REGISTRY)


# Outputs that create or truncate a file when built: built after every other output,
# so that a bad setting anywhere stops start-up before the file is touched.
FILE_OUTPUTS = frozenset({"eve-log"})


def open_outputs(outputs_cfg: Mapping[str, Any], ctx: OutputContext) -> list[Output]:
    """Create every output whose section says ``enabled: true``, returned in the
    configuration's order (the order records are handed to them)."""
    kinds = registered()
    enabled = [(name, section) for name, section in outputs_cfg.items()
               if isinstance(section, Mapping) and section.get("enabled", False)]
    for name, _ in enabled:
        if name not in kinds:
            raise ConfigError(f"no output of that kind (known: {', '.join(sorted(kinds))})", f"outputs.{name}")
    build_order = sorted(range(len(enabled)), key=lambda i: enabled[i][0] in FILE_OUTPUTS)
    built: dict[int, Output] = {}
    try:
        for i in build_order:
            name, section = enabled[i]
            built[i] = kinds[name](section, ctx)
        opened = [built[i] for i in range(len(enabled))]
        from netsentry.output.integrity import connect_checkpoint_listeners
        connect_checkpoint_listeners(opened)        # integrity checkpoints -> e.g. syslog
    except BaseException:
        for out in built.values():
            out.close()
        raise
    return opened


def check_event_types(types: list[str], key: str) -> frozenset[str]:
    """Validate an output's ``types:`` list against the event types that exist."""
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise ConfigError(f"unknown event type '{unknown[0]}' (known: {', '.join(EVENT_TYPES)})", key)
    return frozenset(types)
