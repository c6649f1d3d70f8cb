"""`netsentry ips rules --install/--remove` against real iptables, in a namespace of its own."""

from __future__ import annotations

import sys

import pytest

from netns_lab import Lab, unavailable_reason

pytestmark = pytest.mark.netns


def test_ips_rules_install_and_remove_in_a_namespace() -> None:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    lab = Lab()
    try:
        ns = lab.ns("i")
        cmd = [sys.executable, "-m", "netsentry", "ips", "rules", "--queues", "2:3", "--chain", "INPUT"]
        assert "installed" in lab.run(ns, *cmd, "--install").stdout
        assert "already present" in lab.run(ns, *cmd, "--install").stdout
        for tool in ("iptables", "ip6tables"):
            rules = lab.run(ns, tool, "-S", "INPUT").stdout
            assert "-A INPUT -j NFQUEUE --queue-balance 2:3 --queue-bypass" in rules
        assert "removed" in lab.run(ns, *cmd, "--remove").stdout
        assert "NFQUEUE" not in lab.run(ns, "iptables", "-S", "INPUT").stdout
        assert "NFQUEUE" not in lab.run(ns, "ip6tables", "-S", "INPUT").stdout
    finally:
        lab.close()
