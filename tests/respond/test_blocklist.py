"""The dynamic block list: TTLs, the allow list, bounds, and what the sensor does with listed sources."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))
from daemon_helpers import T0, Collect, LiveLike, config_for, frame, write_rules  # noqa: E402

from netsentry.assets import NetworkMap  # noqa: E402
from netsentry.capture import read_captures  # noqa: E402
from netsentry.cli import load_ruleset  # noqa: E402
from netsentry.config import ConfigError, load_config  # noqa: E402
from netsentry.operations import build_responder  # noqa: E402
from netsentry.respond.blocklist import Blocklist, build_blocklist, own_addresses, parse_address  # noqa: E402
from netsentry.sensor import Sensor  # noqa: E402

A = parse_address("192.0.2.7")


@pytest.fixture(autouse=True)
def fresh_log_sink():
    """Rule loading logs; a sink of this test's own, not a stream an earlier test closed."""
    import io

    from netsentry.log import setup_logging
    setup_logging("info", "json", io.StringIO())
B = parse_address("2001:db8::9")
PCAPS = Path(__file__).resolve().parents[2] / "pcaps"


def blocklist(allow=(), ttl=60.0, max_entries=3) -> Blocklist:
    return Blocklist(NetworkMap((ipaddress.ip_network(a), True) for a in allow), ttl, max_entries)


def test_add_expire_and_remove():
    bl = blocklist()
    assert bl.add(A, "manual", now=100.0)
    assert bl.add(B, "manual", ttl=10, now=100.0)
    assert A in bl and B in bl
    assert bl.expire(now=109.9) == []
    assert bl.expire(now=110.0) == [B]
    assert bl.expire(now=160.0) == [A]
    assert len(bl) == 0
    assert bl.add(A, "x", ttl=0, now=0.0)           # 0: until removed
    assert bl.expire(now=1e12) == []
    assert bl.remove(A) and not bl.remove(A)
    assert bl.stats()["blocklist.expired"] == 2 and bl.stats()["blocklist.removed"] == 1


def test_allow_list_is_never_blocked():
    bl = blocklist(allow=["192.0.2.0/24"])
    assert not bl.add(A, "manual")
    assert A not in bl
    assert bl.stats()["blocklist.refused_allowed"] == 1
    assert bl.add(B, "manual")


def test_bounded_the_entry_closest_to_expiry_makes_room():
    bl = blocklist(max_entries=2)
    bl.add(A, "a", ttl=10, now=0)
    bl.add(B, "b", ttl=100, now=0)
    c = parse_address("198.51.100.1")
    bl.add(c, "c", ttl=50, now=0)
    assert len(bl) == 2 and A not in bl and B in bl and c in bl
    assert bl.stats()["blocklist.evicted"] == 1


def test_re_adding_extends_and_keeps_the_first_reason():
    bl = blocklist()
    bl.add(A, "first", ttl=10, now=0)
    bl.add(A, "second", ttl=100, now=0)
    [row] = bl.listing(now=50)
    assert row == {"address": "192.0.2.7", "reason": "first", "hits": 0, "added": 0,
                   "expires_in": 50.0}


def test_own_addresses_include_loopback():
    nets = own_addresses()
    assert ipaddress.ip_network("127.0.0.1/32") in nets


def test_config_one_allow_list_one_ttl():
    cfg = load_config(None, ["anomaly.block-ttl=42"])
    cfg["anomaly"]["ignore-sources"] = ["192.0.2.0/28"]
    bl, policy = build_blocklist(cfg)
    assert bl.ttl == 42
    assert not bl.add(A, "x")                        # in anomaly.ignore-sources
    assert not bl.add(parse_address("127.0.0.1"), "x")   # the host's own address
    cfg["respond"]["blocklist"]["allow-own-addresses"] = False
    bl, _ = build_blocklist(cfg)
    assert bl.add(parse_address("127.0.0.1"), "x")
    cfg["respond"]["blocklist"]["max-entries"] = 0
    with pytest.raises(ConfigError, match="respond.blocklist.max-entries"):
        build_blocklist(cfg)
    cfg["respond"]["blocklist"]["max-entries"] = 5
    cfg["respond"]["blocklist"]["classtypes"] = "trojan-activity"          # not a list
    with pytest.raises(ConfigError, match="respond.blocklist.classtypes"):
        build_blocklist(cfg)
    cfg["respond"]["blocklist"]["classtypes"] = []
    cfg["anomaly"]["ignore-sources"] = ["300.1.1.1"]
    with pytest.raises(ConfigError, match=r"anomaly.ignore-sources\[0\]"):
        build_blocklist(cfg)


# --- in the sensor --------------------------------------------------------------------------

RULE = 'alert udp any any -> any any (msg:"x"; content:"attack"; metadata:block-source yes; sid:7;)'


def sensor_with(tmp_path, *overrides, rules=RULE):
    cfg = config_for(write_rules(tmp_path / "r.rules", rules), *overrides)
    out = Collect()
    sensor = Sensor(cfg, [out], load_ruleset(cfg))
    responder = build_responder(sensor, cfg)
    return sensor, out, responder


def blocked_frames():
    # two flows from 10.0.0.1 (ports 1000, 1001), one from 10.0.0.3
    return [frame(b"hello", sport=1000), frame(b"hello", sport=1000), frame(b"hello", sport=1001),
            frame(b"hello", src="10.0.0.3")]


@pytest.mark.parametrize("inline", [False, True])
def test_listed_source_dropped_in_ips_and_logged_as_would_be_in_ids(tmp_path, inline):
    sensor, out, responder = sensor_with(tmp_path, f"stream.inline={str(inline).lower()}")
    responder.blocklist.add(parse_address("10.0.0.1"), "manual (ctl)", now=T0)
    res = sensor.run(LiveLike(blocked_frames()))
    drops = out.of("drop")
    # once per flow direction, as Suricata's drop log with flows: start
    assert [(d.pkt.pcap_cnt, d.pkt.sp) for d in drops] == [(1, 1000), (3, 1001)]
    for d in drops:
        assert d.extra == {"netsentry": {"blocklist": {"reason": "manual (ctl)", "ips": inline}}}
    assert res.drops == (3 if inline else 0)
    assert responder.blocklist.listing(now=T0)[0]["hits"] == 3
    assert sensor.counters()["netsentry.blocklist.dropped"] == 3


def test_drop_records_in_eve(tmp_path):
    """The EVE rendering of such a drop: Suricata's drop record plus netsentry.blocklist."""
    from netsentry.output import OutputContext, open_outputs
    sensor, _, responder = sensor_with(tmp_path, "stream.inline=true")
    outputs = open_outputs(sensor.config["outputs"], OutputContext(logdir=tmp_path))
    sensor.attach_outputs(outputs)
    responder.blocklist.add(parse_address("10.0.0.1"), "manual (ctl)", now=T0)
    sensor.run(LiveLike(blocked_frames()))
    sensor.finish()
    import json
    records = [json.loads(line) for line in (tmp_path / "eve.json").read_text().splitlines()]
    drops = [r for r in records if r["event_type"] == "drop"]
    assert len(drops) == 2
    assert drops[0]["src_ip"] == "10.0.0.1" and drops[0]["drop"]["udplen"] == 13
    assert drops[0]["netsentry"]["blocklist"] == {"reason": "manual (ctl)", "ips": True}


def test_entries_expire_on_packet_time_and_on_ticks(tmp_path):
    sensor, out, responder = sensor_with(tmp_path, "stream.inline=true")
    responder.blocklist.add(parse_address("10.0.0.1"), "m", ttl=0.015, now=T0)
    res = sensor.run(LiveLike(blocked_frames(), step=0.01))     # packets at T0, +0.01, +0.02, +0.03
    assert res.drops == 2                                       # the third is past the TTL
    assert len(responder.blocklist) == 0
    responder.blocklist.add(parse_address("10.0.0.9"), "m", ttl=1, now=T0)
    responder.tick(T0 + 2)                                      # a quiet source still expires
    assert len(responder.blocklist) == 0


def test_rule_with_configured_metadata_key_blocks_its_source(tmp_path):
    cfg = config_for(write_rules(tmp_path / "r.rules", RULE), "stream.inline=true")
    cfg["respond"]["blocklist"]["metadata-keys"] = ["block-source"]
    out = Collect()
    sensor = Sensor(cfg, [out], load_ruleset(cfg))
    responder = build_responder(sensor, cfg)
    frames = [frame(b"hello"), frame(b"attack"), frame(b"hello"), frame(b"hello", src="10.0.0.3")]
    res = sensor.run(LiveLike(frames))
    assert [row["reason"] for row in responder.blocklist.listing()] == ["rule 1:7 metadata block-source"]
    assert res.drops == 1                                       # packet 3; packet 4 is another host
    assert [d.pkt.pcap_cnt for d in out.of("drop")] == [3]


def test_without_a_configured_trigger_alerts_block_nothing(tmp_path):
    sensor, out, responder = sensor_with(tmp_path, "stream.inline=true")
    res = sensor.run(LiveLike([frame(b"attack"), frame(b"hello")]))
    assert len(out.of("alert")) == 1 and len(responder.blocklist) == 0 and res.drops == 0


def test_classtype_trigger_and_allow_list(tmp_path):
    rule = 'alert udp any any -> any any (msg:"x"; content:"attack"; classtype:trojan-activity; sid:8;)'
    cfg = config_for(write_rules(tmp_path / "r.rules", rule), "stream.inline=true")
    cfg["respond"]["blocklist"]["classtypes"] = ["trojan-activity"]
    cfg["anomaly"]["ignore-sources"] = ["10.0.0.3"]
    out = Collect()
    sensor = Sensor(cfg, [out], load_ruleset(cfg))
    responder = build_responder(sensor, cfg)
    sensor.run(LiveLike([frame(b"attack"), frame(b"attack", src="10.0.0.3"), frame(b"x"), frame(b"x", src="10.0.0.3")]))
    assert [row["address"] for row in responder.blocklist.listing()] == ["10.0.0.1"]
    assert [d.pkt.pcap_cnt for d in out.of("drop")] == [3]
    assert responder.blocklist.stats()["blocklist.refused_allowed"] == 1


def test_anomaly_flagged_scanner_is_blocked(tmp_path):
    cfg = load_config(None, ["respond.blocklist.on-anomaly=true", "respond.blocklist.allow-own-addresses=false"])
    out = Collect()
    sensor = Sensor(cfg, [out])
    responder = build_responder(sensor, cfg)
    sensor.run(read_captures([str(PCAPS / "anomaly-portscan.pcap")]))
    scanners = {e.pkt.src_ip for e in out.of("alert") if e.extra["netsentry"]["anomaly"]["detector"] == "port-scan"}
    assert scanners == {"203.0.113.50", "203.0.113.51", "203.0.113.52"}
    listing = responder.blocklist.listing(now=0)
    assert {row["address"] for row in listing} == scanners
    assert all(row["reason"].startswith("anomaly: NETSENTRY ANOMALY") for row in listing)
    drops = out.of("drop")
    assert drops and {d.pkt.src_ip for d in drops} <= scanners     # IDS: logged as would-be drops
    assert all(d.extra["netsentry"]["blocklist"]["ips"] is False for d in drops)


def test_anomaly_blocking_is_off_by_default(tmp_path):
    cfg = load_config(None, ["respond.blocklist.allow-own-addresses=false"])
    out = Collect()
    sensor = Sensor(cfg, [out])
    responder = build_responder(sensor, cfg)
    sensor.run(read_captures([str(PCAPS / "anomaly-portscan.pcap")]))
    assert out.of("alert") and len(responder.blocklist) == 0 and not out.of("drop")
