"""Read the part of a Suricata ``suricata.yaml`` that netsentry shares.

A site moving from Suricata, or a suricata-verify test, hands us its own
configuration. Most of it (threading, af-packet, app-layer parser limits,
logging) means nothing here; the parts that change what netsentry detects and
writes have the same meaning in both, so we translate those into netsentry's
own configuration tree and merge it like a ``-c`` file (same validation,
same one-line errors). Everything else is listed once in a log note, never
silently taken for understood.

Translated (Suricata key -> netsentry key):

- ``vars.address-groups`` / ``vars.port-groups`` -> the same
- ``default-rule-path``, ``rule-files``, ``classification-file``,
  ``reference-config-file``, ``threshold-file`` -> the same (relative
  ``threshold-file``, ``classification-file`` and ``reference-config-file``
  are resolved against the configuration file's directory first)
- ``outputs: [- eve-log: {enabled, filename, append, community-id,
  community-id-seed, ipv6-compress, types}]`` -> ``outputs.eve-log``; ``types`` entries may
  be names or ``{name: options}``; ``drop: {flows, alerts}`` keeps its
  options, types netsentry does not write are noted and left out
- ``stream.midstream``, ``stream.async-oneside``, ``stream.inline`` (``auto`` follows the run mode),
  ``stream.checksum-validation`` -> ``decoder.checksum-validation``
- ``stream.reassembly.{depth,memcap,toserver-chunk-size,toclient-chunk-size,urgent}``,
  ``host-os-policy`` -> the same
- ``decoder.{vxlan,geneve,teredo}.{enabled,ports}`` -> the same
- ``flow-timeouts.<proto>.{new,established,closed}`` -> ``flow.timeouts``; the ones the
  file leaves unset are Suricata's built-in values (`SURICATA_BUILTIN_TIMEOUTS`), not
  netsentry's defaults (which are Suricata's sample suricata.yaml's)
- ``vlan.use-for-tracking`` -> the same
- ``action-order`` -> ``detect.action-order``
- ``packet-alert-max`` -> ``detect.packet-alert-max``
- ``detect.{guess-applayer-tx,stream-tx-log-limit}`` -> the same
- exception policies, same keys: ``exception-policy`` (the master switch),
  ``stream.midstream-policy``, ``stream.reassembly.memcap-policy``,
  ``flow.memcap-policy``, ``defrag.memcap-policy``, ``app-layer.error-policy``
- ``firewall.policies`` -> the same (firewall mode's default policies)
- ``detect.thresholds`` is not translated (Suricata's hash sizes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from netsentry.config import Config, ConfigError

# top-level keys copied as they are
_SAME_KEYS = ("default-rule-path", "rule-files", "datasets", "default-data-dir",
              "reputation-categories-file", "reputation-files", "default-reputation-path")
# top-level file keys resolved against the config file's directory when relative
_FILE_KEYS = ("threshold-file", "classification-file", "reference-config-file")
_EVE_SCALARS = ("enabled", "filename", "append", "community-id", "community-id-seed", "ethernet", "pcap-file",
                "metadata", "ipv6-compress")
_TIMEOUT_KEYS = ("new", "established", "closed")
# stream.reassembly keys with the same meaning in both (stream/settings.py checks the values)
_REASSEMBLY_KEYS = ("depth", "memcap", "memcap-policy", "toserver-chunk-size", "toclient-chunk-size", "urgent")


def looks_like_suricata(doc: Any) -> bool:
    """Suricata's `outputs` is a list of one-key maps; netsentry's is a mapping."""
    return isinstance(doc, Mapping) and isinstance(doc.get("outputs"), list)


def translate(doc: Mapping[str, Any], path: str | Path, known_event_types: frozenset[str] | tuple[str, ...],
              whole_file: bool = True) -> tuple[Config, list[str]]:
    """The netsentry configuration tree `doc` stands for, and the dotted keys ignored.
    `whole_file`: `doc` is a whole suricata.yaml (what it leaves unset is Suricata's
    built-in value, `_builtin_flow_timeouts`), not one ``--set`` option."""
    base = Path(path).resolve().parent
    out: Config = {}
    ignored: list[str] = []
    for key, value in doc.items():
        key = str(key)
        handler = _TOP_LEVEL.get(key)
        if handler is None:
            ignored.append(key)
            continue
        handler(out, value, ignored, base, known_event_types, str(path))
    if whole_file:
        _builtin_flow_timeouts(out)
    return out, ignored


# Suricata's compiled-in flow timeouts (flow-private.h, FlowInitFlowProto): what a
# suricata.yaml without a `flow-timeouts` entry (or without one of its keys) runs
# with, which are not the values its sample suricata.yaml spells out (tcp closed 10
# s, not 60; tcp new 30, established 300)
SURICATA_BUILTIN_TIMEOUTS = {
    "default": {"new": 30, "established": 300, "closed": 0},
    "tcp": {"new": 30, "established": 300, "closed": 10},
    "udp": {"new": 30, "established": 300},
    "icmp": {"new": 30, "established": 300},
}


def _builtin_flow_timeouts(out: Config) -> None:
    """Fill the flow timeouts the file leaves unset with Suricata's built-in ones, so a
    flow ends when Suricata would end it under the same file."""
    timeouts = out.setdefault("flow", {}).setdefault("timeouts", {})
    for proto, values in SURICATA_BUILTIN_TIMEOUTS.items():
        given = timeouts.setdefault(proto, {})
        for k, v in values.items():
            given.setdefault(k, v)


# --- one translator per Suricata top-level key (a registration table) ------------

def _vars(out: Config, value: Any, ignored: list[str], base: Path, types: Any, src: str) -> None:
    if not isinstance(value, Mapping):
        raise ConfigError("expected a mapping", "vars", src)
    for group in ("address-groups", "port-groups"):
        if isinstance(value.get(group), Mapping):
            # Suricata writes port variables as numbers or text; both are fine here
            out.setdefault("vars", {})[group] = {str(k): v for k, v in value[group].items()}
    ignored.extend(f"vars.{k}" for k in value if k not in ("address-groups", "port-groups"))


def _copy(key: str) -> Any:
    def handler(out: Config, value: Any, ignored: list[str], base: Path, types: Any, src: str) -> None:
        out[key] = value
    return handler


def _file(key: str) -> Any:
    def handler(out: Config, value: Any, ignored: list[str], base: Path, types: Any, src: str) -> None:
        if isinstance(value, str) and value and not os.path.isabs(value) and (base / value).exists():
            value = str(base / value)
        out[key] = value
    return handler


def _outputs(out: Config, value: Any, ignored: list[str], base: Path, types: Any, src: str) -> None:
    if isinstance(value, Mapping) and all(str(k).isdigit() for k in value):
        # Suricata's --set addresses a list entry by its index (`outputs.1.eve-log...`);
        # which entry an index names depends on Suricata's own suricata.yaml, so only
        # what the entry says is used
        value = [value[k] for k in sorted(value, key=lambda k: int(k))]
    for i, item in enumerate(value or ()):
        if not isinstance(item, Mapping) or len(item) != 1:
            raise ConfigError("expected a list of one-key mappings (- eve-log: ...)", f"outputs[{i}]", src)
        name, body = next(iter(item.items()))
        if name != "eve-log":
            ignored.append(f"outputs.{name}")
            continue
        out.setdefault("outputs", {})["eve-log"] = _eve_log(body or {}, ignored, types, src)


def _frame_logging(entry: Any) -> bool:
    """A `frame` entry of eve-log's types that is on: Suricata then marks every frame type of
    every protocol (FrameConfigEnableAll), which numbers the frames an alert names (frame
    records themselves are not written: applayer/frames.py)."""
    if entry == "frame":
        return True
    if isinstance(entry, Mapping) and "frame" in entry:
        opts = entry["frame"]
        on = opts.get("enabled", True) if isinstance(opts, Mapping) else True
        return on is True or str(on).lower() in ("yes", "true", "on", "1")
    return False


def _eve_log(body: Mapping[str, Any], ignored: list[str], known: Any, src: str) -> Config:
    eve: Config = {k: body[k] for k in _EVE_SCALARS if k in body}
    ignored.extend(f"outputs.eve-log.{k}" for k in body if k not in _EVE_SCALARS and k != "types")
    if "types" not in body:
        return eve
    if isinstance(body["types"], Mapping):
        # `--set outputs.1.eve-log.types.2.anomaly...`: one entry of Suricata's list by its
        # index, which says nothing about the other types: the configured list stays
        ignored.append("outputs.eve-log.types (by index)")
        if any(isinstance(v, Mapping) and _frame_logging(v) for v in body["types"].values()):
            eve["frame-logging"] = True
        return eve
    if any(_frame_logging(e) for e in body.get("types") or ()):
        eve["frame-logging"] = True
    names: list[str] = []
    for entry in body.get("types") or ():
        if isinstance(entry, Mapping):
            name, opts = next(iter(entry.items()))
        else:
            name, opts = entry, None
        name = str(name)
        if name not in known:
            ignored.append(f"outputs.eve-log.types.{name}")
            continue
        names.append(name)
        if name == "drop" and isinstance(opts, Mapping):
            drop = {k: opts[k] for k in ("flows", "alerts", "verdict") if k in opts}
            eve["drop"] = drop
            ignored.extend(f"outputs.eve-log.types.drop.{k}" for k in opts if k not in drop)
        elif name == "alert" and isinstance(opts, Mapping):
            # the alert options netsentry writes (payload, payload-printable, payload-length, packet), as
            # outputs.eve-log.alert.<option>; YAML 1.1 reads Suricata's yes/no as booleans
            alert = {k: opts[k] for k in ("payload", "payload-printable", "payload-length", "packet", "verdict")
                     if isinstance(opts.get(k), bool)}
            if isinstance(opts.get("payload-buffer-size"), (str, int)) and not isinstance(
                    opts["payload-buffer-size"], bool):
                alert["payload-buffer-size"] = opts["payload-buffer-size"]
            meta = opts.get("metadata")
            if meta is False:
                alert["metadata"] = False       # no flow, app-layer or rule metadata in alerts
            rule_meta = meta.get("rule") if isinstance(meta, Mapping) else None
            if isinstance(rule_meta, Mapping) and isinstance(rule_meta.get("reference"), bool):
                alert["reference"] = rule_meta["reference"]     # metadata.rule.reference: the rule's URLs
            if isinstance(opts.get("reference"), bool) and "reference" not in alert:
                alert["reference"] = opts["reference"]
            xff = opts.get("xff")
            if isinstance(xff, Mapping):        # checked where the eve-log reads it
                alert["xff"] = {k: xff[k] for k in ("enabled", "mode", "deployment", "header") if k in xff}
            if alert:
                eve["alert"] = alert
            ignored.extend(f"outputs.eve-log.types.alert.{k}" for k in opts
                           if k not in alert and not (k == "metadata" and ("reference" in alert or "metadata" in alert)))
        elif name == "smtp" and isinstance(opts, Mapping):
            # extended, custom, md5: checked by applayer/smtp.py configure
            smtp = {k: opts[k] for k in ("extended", "custom", "md5") if k in opts}
            if smtp:
                eve["smtp"] = smtp
            ignored.extend(f"outputs.eve-log.types.smtp.{k}" for k in opts if k not in smtp)
        elif name == "pgsql" and isinstance(opts, Mapping):
            # passwords: read by applayer/pgsql.py configure
            if isinstance(opts.get("passwords"), bool):
                eve["pgsql"] = {"passwords": opts["passwords"]}
            ignored.extend(f"outputs.eve-log.types.pgsql.{k}" for k in opts if k != "passwords")
        elif name == "dhcp" and isinstance(opts, Mapping):
            # extended: checked by applayer/dhcp.py configure
            if "extended" in opts:
                eve["dhcp"] = {"extended": opts["extended"]}
            ignored.extend(f"outputs.eve-log.types.dhcp.{k}" for k in opts if k not in ("extended", "enabled"))
        elif name == "mqtt" and isinstance(opts, Mapping):
            # passwords, string-log-limit: checked by applayer/mqtt.py configure
            mqtt = {k: opts[k] for k in ("passwords", "string-log-limit") if k in opts}
            if mqtt:
                eve["mqtt"] = mqtt
            ignored.extend(f"outputs.eve-log.types.mqtt.{k}" for k in opts if k not in mqtt)
        elif name == "quic" and isinstance(opts, Mapping):
            # ja4: read by applayer/quic.py configure
            if "ja4" in opts:
                eve["quic"] = {"ja4": opts["ja4"]}
            ignored.extend(f"outputs.eve-log.types.quic.{k}" for k in opts if k not in ("ja4", "enabled"))
        elif name == "tls" and isinstance(opts, Mapping):
            # ja4: read by applayer/tls.py configure
            if "ja4" in opts:
                eve["tls"] = {"ja4": opts["ja4"]}
            ignored.extend(f"outputs.eve-log.types.tls.{k}" for k in opts if k not in ("ja4", "enabled"))
        elif isinstance(opts, Mapping):
            ignored.extend(f"outputs.eve-log.types.{name}.{k}" for k in opts)
    eve["types"] = names
    return eve


def _stream(out: Config, value: Any, ignored: list[str], base: Path, types: Any, src: str) -> None:
    if not isinstance(value, Mapping):
        return
    stream: Config = {}
    for k, v in value.items():
        if k in ("midstream", "async-oneside", "drop-invalid") and isinstance(v, bool):
            stream[k] = v
        elif k == "inline" and isinstance(v, bool):
            stream[k] = v
        elif k == "inline" and v == "auto":
            pass                       # Suricata: inline when running as an IPS; --simulate-ips says so here
        elif k == "midstream-policy" and isinstance(v, str):
            stream[k] = v              # exception policies: same keys, same values (exception_policy.py)
        elif k == "reassembly" and isinstance(v, Mapping):
            # the reassembly settings that change what detection sees (stream/settings.py) and
            # its exception policy (exception_policy.py)
            reasm: Config = {}
            for rk, rv in v.items():
                if rk in _REASSEMBLY_KEYS:
                    reasm[rk] = rv
                else:
                    ignored.append(f"stream.reassembly.{rk}")
            if reasm:
                stream["reassembly"] = reasm
        elif k == "checksum-validation" and isinstance(v, bool):
            # Suricata's switch for TCP checksums before stream handling; netsentry has one
            # switch for every checksum (-k all|none overrides either)
            out.setdefault("decoder", {})["checksum-validation"] = v
        else:
            ignored.append(f"stream.{k}")
    if stream:
        out["stream"] = stream


def _decoder(out: Config, value: Any, ignored: list[str], base: Path, types: Any, src: str) -> None:
    """`decoder.{vxlan,geneve,teredo}.{enabled,ports}`: the UDP tunnels (decode/udptunnel.py)."""
    if not isinstance(value, Mapping):
        return
    dec: Config = {}
    for name, body in value.items():
        if name in ("vxlan", "geneve", "teredo") and isinstance(body, Mapping):
            for k, v in body.items():
                if k == "enabled":
                    dec.setdefault(name, {})[k] = v
                elif k == "ports":          # netsentry's key is text, as Suricata's port variables
                    v = "[%s]" % ", ".join(map(str, v)) if isinstance(v, list) else v
                    dec.setdefault(name, {})[k] = str(v) if isinstance(v, int) and not isinstance(v, bool) else v
                else:
                    ignored.append(f"decoder.{name}.{k}")
        else:
            ignored.append(f"decoder.{name}")
    if dec:
        out.setdefault("decoder", {}).update(dec)


def _flow_timeouts(out: Config, value: Any, ignored: list[str], base: Path, types: Any, src: str) -> None:
    if not isinstance(value, Mapping):
        return
    timeouts: Config = {}
    for proto, body in value.items():
        if proto not in ("default", "tcp", "udp", "icmp") or not isinstance(body, Mapping):
            ignored.append(f"flow-timeouts.{proto}")
            continue
        for k, v in body.items():
            if k in _TIMEOUT_KEYS and not (proto in ("udp", "icmp") and k == "closed"):
                timeouts.setdefault(proto, {})[k] = v
            else:
                ignored.append(f"flow-timeouts.{proto}.{k}")
    if timeouts:
        out.setdefault("flow", {})["timeouts"] = timeouts


def _action_order(out: Config, value: Any, ignored: list[str], base: Path, types: Any, src: str) -> None:
    out.setdefault("detect", {})["action-order"] = value


def _alert_max(out: Config, value: Any, ignored: list[str], base: Path, types: Any, src: str) -> None:
    out.setdefault("detect", {})["packet-alert-max"] = value


# detect keys of the same name and meaning (Suricata 8's transaction guessing for packet and
# stream rules' alerts); the rest of Suricata's detect section (profiles, grouping, prefilter
# tuning) is noted as ignored
_DETECT_KEYS = ("guess-applayer-tx", "stream-tx-log-limit")


def _detect(out: Config, value: Any, ignored: list[str], base: Path, types: Any, src: str) -> None:
    if not isinstance(value, Mapping):
        ignored.append("detect")
        return
    for k, v in value.items():
        if k in _DETECT_KEYS:
            out.setdefault("detect", {})[k] = v
        else:
            ignored.append(f"detect.{k}")


# app-layer keys taken over as they are (dotted, under app-layer); the rest is reported ignored
_APP_LAYER_KEYS = ("protocols.http.libhtp.default-config.double-decode-path",
                   "protocols.http.libhtp.default-config.double-decode-query",
                   "protocols.tls.encryption-handling", "protocols.tls.ja4-fingerprints",
                   "protocols.ssh.encryption-handling",
                   "protocols.dnp3.request-flood", "protocols.dnp3.max-points", "protocols.dnp3.max-objects")


def _app_layer(out: Config, value: Any, ignored: list[str], base: Path, types: Any, src: str) -> None:
    if not isinstance(value, Mapping):
        raise ConfigError("expected a mapping", "app-layer", src)
    taken = False
    for dotted in _APP_LAYER_KEYS:
        node: Any = value
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is not None:
            target = out.setdefault("app-layer", {})
            parts = dotted.split(".")
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = node
            taken = True
    # libhtp's body limits: netsentry's own keys of the same meaning
    libhtp: Any = value
    for part in ("protocols", "http", "libhtp", "default-config"):
        libhtp = libhtp.get(part) if isinstance(libhtp, Mapping) else None
    for key in ("request-body-limit", "response-body-limit"):
        v = libhtp.get(key) if isinstance(libhtp, Mapping) else None
        if v is not None:
            out.setdefault("app-layer", {}).setdefault("protocols", {}).setdefault("http", {})[key] = v
            taken = True
    tls: Any = value.get("protocols")
    tls = tls.get("tls") if isinstance(tls, Mapping) else None
    if isinstance(tls, Mapping) and "encryption-handling" not in tls and "no-reassemble" in tls:
        # the option encryption-handling replaced: true is bypass, false track-only
        legacy = tls["no-reassemble"]
        on = legacy is True or str(legacy).lower() in ("yes", "true", "on", "1")
        out.setdefault("app-layer", {}).setdefault("protocols", {}).setdefault("tls", {})[
            "encryption-handling"] = "bypass" if on else "track-only"
        taken = True
    if isinstance(value.get("error-policy"), str):
        out.setdefault("app-layer", {})["error-policy"] = value["error-policy"]
        taken = True
    smtp: Any = value.get("protocols")
    smtp = smtp.get("smtp") if isinstance(smtp, Mapping) else None
    if isinstance(smtp, Mapping):
        # same keys, same meanings (applayer/smtp.py configure checks the values)
        mine = {k: dict(v) if isinstance(v, Mapping) else v for k, v in smtp.items() if k in _SMTP_KEYS}
        for k, v in list(mine.items()):
            if isinstance(v, dict):
                mine[k] = {sk: sv for sk, sv in v.items() if sk in _SMTP_KEYS[k]}
        if mine:
            out.setdefault("app-layer", {}).setdefault("protocols", {})["smtp"] = mine
            taken = True
    h2: Any = value.get("protocols")
    h2 = h2.get("http2") if isinstance(h2, Mapping) else None
    if isinstance(h2, Mapping):
        # the same limits, the same meanings (applayer/http2.py configure)
        mine = {k: v for k, v in h2.items() if k in ("enabled", "max-streams", "max-table-size", "max-reassembly-size")}
        if mine:
            out.setdefault("app-layer", {}).setdefault("protocols", {})["http2"] = mine
            taken = True
    protos: Any = value.get("protocols")
    for name, keys in _PROTOCOL_KEYS.items():
        node = protos.get(name) if isinstance(protos, Mapping) else None
        if isinstance(node, Mapping):
            # the same keys, the same meanings (each protocol's configure checks the values)
            mine = {k: v for k, v in node.items() if k in keys}
            if mine:
                out.setdefault("app-layer", {}).setdefault("protocols", {}).setdefault(name, {}).update(mine)
                taken = True
    ignored.append("app-layer (all but libhtp double-decode-path/-query, body limits, smtp, http2 limits, "
                   "tls/ssh encryption-handling, tls ja4-fingerprints and error-policy)"
                   if taken else "app-layer")


# app-layer.protocols.NAME keys the parsers of round 12 read (applayer/enabled.py and each
# module's configure)
_PROTOCOL_KEYS: dict[str, tuple[str, ...]] = {
    "mqtt": ("enabled", "max-msg-length", "subscribe-topic-match-limit", "unsubscribe-topic-match-limit"),
    "ntp": ("enabled",), "tftp": ("enabled",), "snmp": ("enabled",), "krb5": ("enabled",),
    "rfb": ("enabled",), "dhcp": ("enabled",), "telnet": ("enabled",), "websocket": ("enabled", "max-payload-size"),
    "nfs": ("enabled",), "quic": ("enabled",),
}

# app-layer.protocols.smtp keys netsentry reads: scalars, and the mappings' keys
_SMTP_KEYS: dict[str, tuple[str, ...]] = {
    "raw-extraction": (),
    "mime": ("decode-mime", "decode-base64", "decode-quoted-printable", "header-value-depth",
             "extract-urls", "extract-urls-schemes", "log-url-scheme", "body-md5"),
    "inspected-tracker": ("content-limit", "content-inspect-min-size", "content-inspect-window"),
}


def _memcap_policy(section: str) -> Any:
    """`flow.memcap-policy` / `defrag.memcap-policy`: the exception policies of those caps
    (the rest of the section is Suricata's table sizing, nothing netsentry uses)."""
    def handler(out: Config, value: Any, ignored: list[str], base: Path, types: Any, src: str) -> None:
        if not isinstance(value, Mapping):
            ignored.append(section)
            return
        if isinstance(value.get("memcap-policy"), str):
            out.setdefault(section, {})["memcap-policy"] = value["memcap-policy"]
        ignored.extend(f"{section}.{k}" for k in value if k != "memcap-policy")
    return handler


def _vlan(out: Config, value: Any, ignored: list[str], base: Path, types: Any, src: str) -> None:
    if not isinstance(value, Mapping):
        return
    for k, v in value.items():
        if k == "use-for-tracking":
            out.setdefault("vlan", {})[k] = v
        else:
            ignored.append(f"vlan.{k}")


def _firewall(out: Config, value: Any, ignored: list[str], base: Path, types: Any, src: str) -> None:
    """``firewall.policies`` (Suricata 8's firewall mode defaults, detect/firewall.py),
    ``enabled``, ``rule-path`` and ``rule-files`` kept as is."""
    if not isinstance(value, dict):
        return              # `firewall: true` and the like: the rule set itself turns the mode on
    for k, v in value.items():
        if k == "policies" and isinstance(v, dict):
            out.setdefault("firewall", {})["policies"] = v
        elif k == "enabled" and isinstance(v, bool):
            out.setdefault("firewall", {})["enabled"] = v
        elif k == "rule-path" and isinstance(v, str):
            out.setdefault("firewall", {})["rule-path"] = v
        elif k == "rule-files" and (v is None or isinstance(v, list)):
            out.setdefault("firewall", {})["rule-files"] = [str(f) for f in v or [] if f]
        else:
            ignored.append(f"firewall.{k}")


def _security(out: Config, value: Any, ignored: list[str], base: Path, types: Any, src: str) -> None:
    """``security.lua`` (rules/keywords/lua.py) kept; the rest of `security` (landlock,
    limit-noproc) is Suricata's process hardening, ignored."""
    if not isinstance(value, dict):
        return
    for k, v in value.items():
        if k == "lua" and isinstance(v, dict):
            lua = out.setdefault("security", {}).setdefault("lua", {})
            for lk, lv in v.items():
                if lk in ("allow-rules", "max-bytes", "max-instructions", "allow-restricted-functions") \
                        and lv is not None:
                    lua[lk] = lv
                else:
                    ignored.append(f"security.lua.{lk}")
        elif k != "lua":
            ignored.append(f"security.{k}")


_TOP_LEVEL = {
    "vars": _vars,
    "app-layer": _app_layer,
    "outputs": _outputs,
    "stream": _stream,
    "decoder": _decoder,
    "flow-timeouts": _flow_timeouts,
    "action-order": _action_order,
    "packet-alert-max": _alert_max,
    "detect": _detect,
    "exception-policy": _copy("exception-policy"),     # the master switch (exception_policy.py)
    "flow": _memcap_policy("flow"),
    "defrag": _memcap_policy("defrag"),
    "host-os-policy": _copy("host-os-policy"),
    "vlan": _vlan,
    "firewall": _firewall,
    "security": _security,
    **{k: _copy(k) for k in _SAME_KEYS},
    **{k: _file(k) for k in _FILE_KEYS},
}
