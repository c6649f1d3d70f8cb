"""Critical assets: validation with key paths, longest-prefix lookup, alert enrichment."""

from __future__ import annotations

import ipaddress

import pytest

from netsentry.assets import AssetMap
from netsentry.config import ConfigError
from netsentry.decode.packet import Packet
from netsentry.event import Alert, Event

ASSETS = [
    {"name": "dmz", "cidr": "10.0.0.0/24", "criticality": "medium"},
    {"name": "payroll-db", "cidr": ["10.0.0.5", "2001:db8::5"], "criticality": "critical"},
    {"name": "web", "cidr": "10.0.0.10/32", "criticality": "high"},
]


def packed(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def alert_event(src: str, dst: str, severity: int = 3) -> Event:
    pkt = Packet()
    pkt.ip_version = 6 if ":" in src else 4
    pkt.src, pkt.dst = packed(src), packed(dst)
    return Event("alert", 1.0, pkt, None, Alert(1, "x", severity=severity))


def test_most_specific_network_wins():
    m = AssetMap({"assets": ASSETS})
    assert m.lookup(packed("10.0.0.5")).name == "payroll-db"
    assert m.lookup(packed("10.0.0.77")).name == "dmz"
    assert m.lookup(packed("2001:db8::5")).criticality == "critical"
    assert m.lookup(packed("10.0.1.1")) is None


@pytest.mark.parametrize("src, dst, severity, raised", [
    ("203.0.113.1", "10.0.0.5", 3, 1),     # critical: -2
    ("10.0.0.10", "203.0.113.1", 3, 2),    # high (as source): -1
    ("203.0.113.1", "10.0.0.10", 1, 1),    # never below 1
    ("203.0.113.1", "10.0.0.77", 3, 3),    # medium: unchanged
])
def test_enrich_raises_severity_for_high_and_critical(src, dst, severity, raised):
    m = AssetMap({"assets": ASSETS})
    ev = alert_event(src, dst, severity)
    assert m.enrich(ev) is True
    assert ev.alert.severity == raised
    entries = ev.extra["netsentry"]["assets"]
    assert entries[0]["ip"] in (src, dst) and entries[0]["role"] in ("src", "dest")


def test_enrich_lists_both_ends_and_keeps_other_extras():
    m = AssetMap({"assets": ASSETS})
    ev = alert_event("10.0.0.10", "10.0.0.5")
    ev.extra = {"netsentry": {"anomaly": {"detector": "port-scan"}}}
    m.enrich(ev)
    assert ev.extra["netsentry"]["anomaly"] == {"detector": "port-scan"}
    assert [(a["role"], a["name"]) for a in ev.extra["netsentry"]["assets"]] == [("src", "web"), ("dest", "payroll-db")]
    assert ev.extra["netsentry"]["severity_raised_from"] == 3 and ev.alert.severity == 1


def test_events_without_assets_are_untouched():
    m = AssetMap({"assets": ASSETS})
    ev = alert_event("203.0.113.1", "198.51.100.1")
    assert m.enrich(ev) is False and ev.extra is None and ev.alert.severity == 3


@pytest.mark.parametrize("assets, message", [
    ([{"name": "a", "cidr": "10.0.0.0/8", "criticality": "high"},
      {"name": "b", "cidr": "10.0.0.0/8", "criticality": "low"},
      {"name": "c", "cidr": "10.0.0.300/8", "criticality": "low"}],
     "assets[2].cidr: invalid network '10.0.0.300/8'"),
    ([{"name": "a", "cidr": "10.0.0.1/8", "criticality": "high"}], "assets[0].cidr: host bits set '10.0.0.1/8'"),
    ([{"name": "a", "cidr": ["10.0.0.0/8", "nope"], "criticality": "high"}], "assets[0].cidr[1]: invalid network 'nope'"),
    ([{"name": "a", "cidr": "10.0.0.0/8", "criticality": "urgent"}], "assets[0].criticality: expected one of low"),
    ([{"name": "a", "cidr": "10.0.0.0/8"}], "assets[0].criticality: missing"),
    ([{"name": "a", "cidr": "10.0.0.0/8", "criticality": "low", "owner": "x"}], "assets[0].owner: unknown key"),
    (["10.0.0.1"], "assets[0]: expected a mapping"),
    ({"a": 1}, "assets: expected a list"),
])
def test_validation_errors_name_the_key(assets, message):
    with pytest.raises(ConfigError) as info:
        AssetMap({"assets": assets})
    assert message in str(info.value)
