"""Port-scan and host-sweep table keys are bytes; their parts must come back exactly."""

from __future__ import annotations

import ipaddress

import pytest

from netsentry.anomaly.scan import (ICMP_TAG, PORT_BYTES, UDP_TAG, scan_key_parts,
                                    sweep_key_parts)

V4 = [ipaddress.ip_address(a).packed for a in ("10.0.0.1", "192.168.1.2")]
V6 = [ipaddress.ip_address(a).packed for a in ("2001:db8::1", "fe80::2")]


@pytest.mark.parametrize("src,dst", [V4, V6])
def test_port_scan_key_parts(src, dst):
    assert scan_key_parts(src + dst) == (src, dst, 6)
    assert scan_key_parts(src + dst + UDP_TAG) == (src, dst, 17)


@pytest.mark.parametrize("src", [V4[0], V6[0]])
@pytest.mark.parametrize("port", [0, 1, 53, 255, 256, 1023, 8080, 65535])
def test_host_sweep_key_parts(src, port):
    assert sweep_key_parts(src + PORT_BYTES[port]) == (src, 6, port)
    assert sweep_key_parts(src + PORT_BYTES[port] + UDP_TAG) == (src, 17, port)
    for proto in (1, 58):
        assert sweep_key_parts(src + ICMP_TAG[proto]) == (src, proto, -1)


def test_keys_of_different_kinds_never_collide():
    keys = set()
    for src in (*V4, *V6):
        for port in (0, 53, 65535):
            keys.add(src + PORT_BYTES[port])
            keys.add(src + PORT_BYTES[port] + UDP_TAG)
        keys.update(src + tag for tag in ICMP_TAG.values())
    assert len(keys) == 4 * (3 * 2 + 2)
