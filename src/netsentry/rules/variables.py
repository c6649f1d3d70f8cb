"""Rule variables from the config: `vars.address-groups` and `vars.port-groups`.

Values stay text here (``"[192.168.0.0/16,10.0.0.0/8]"``, ``"!$HOME_NET"``, or
a bare port number from YAML); addresses.py and ports.py resolve ``$NAME``
references lazily, with cycle detection, when a rule uses them. Accepts the
nested config dict (`netsentry.config`) or any mapping with a ``vars`` key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Suricata's shipped defaults, used when the config has no vars section.
DEFAULT_ADDRESS_GROUPS = {
    "HOME_NET": "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]",
    "EXTERNAL_NET": "!$HOME_NET",
    **{k: "$HOME_NET" for k in ("HTTP_SERVERS", "SMTP_SERVERS", "SQL_SERVERS", "DNS_SERVERS",
                                "TELNET_SERVERS", "DC_SERVERS", "DNP3_SERVER", "DNP3_CLIENT",
                                "MODBUS_CLIENT", "MODBUS_SERVER", "ENIP_CLIENT", "ENIP_SERVER")},
    "AIM_SERVERS": "$EXTERNAL_NET",
}
DEFAULT_PORT_GROUPS = {
    "HTTP_PORTS": "80", "SHELLCODE_PORTS": "!80", "ORACLE_PORTS": "1521", "SSH_PORTS": "22",
    "DNP3_PORTS": "20000", "MODBUS_PORTS": "502", "FILE_DATA_PORTS": "[$HTTP_PORTS,110,143]",
    "FTP_PORTS": "21", "GENEVE_PORTS": "6081", "VXLAN_PORTS": "4789", "TEREDO_PORTS": "3544",
}


def _section(config: Mapping[str, Any] | None, key: str, default: dict[str, str]) -> dict[str, str]:
    if config is None:
        return dict(default)
    vars_ = config.get("vars")
    if not isinstance(vars_, Mapping):
        return dict(default)
    group = vars_.get(key)
    if not isinstance(group, Mapping):
        return dict(default)
    return {str(k): str(v) for k, v in group.items()}


def address_groups(config: Mapping[str, Any] | None) -> dict[str, str]:
    return _section(config, "address-groups", DEFAULT_ADDRESS_GROUPS)


def port_groups(config: Mapping[str, Any] | None) -> dict[str, str]:
    return _section(config, "port-groups", DEFAULT_PORT_GROUPS)


def check_variables(config: Mapping[str, Any] | None) -> None:
    """Resolve every address and port variable once, at start-up, as Suricata does:
    a bad one is a `ConfigError` naming it, not a silent skip of the rules using it."""
    from netsentry.config import ConfigError
    from netsentry.rules.addresses import AddressParser
    from netsentry.rules.errors import RuleError
    from netsentry.rules.ports import PortParser
    checks: list[tuple[str, dict[str, str], Any]] = [
        ("vars.address-groups", address_groups(config), AddressParser),
        ("vars.port-groups", port_groups(config), PortParser),
    ]
    for section, groups, parser_class in checks:
        parser = parser_class(groups)
        for name in groups:
            try:
                parser.parse(f"${name}")
            except RuleError as exc:
                raise ConfigError(f"invalid value {groups[name]!r}: {exc.reason}",
                                  f"{section}.{name}") from None
