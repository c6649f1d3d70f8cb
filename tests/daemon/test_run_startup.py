"""`netsentry run` start-up errors of the daemon operations: one line, nothing opened."""

from __future__ import annotations

from netsentry.cli import main


def run(capsys, tmp_path, *args):
    rc = main(["run", "-i", "lo", "-l", str(tmp_path / "log"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


def test_unknown_run_as_user(capsys, tmp_path):
    rc, err = run(capsys, tmp_path, "--user", "no-such-user-x")
    assert rc == 2 and err[-1] == "config error: run-as.user: no such user 'no-such-user-x'"
    assert not (tmp_path / "log").exists()


def test_bad_rule_management_file(capsys, tmp_path):
    rules = tmp_path / "r.rules"
    rules.write_text('alert udp any any -> any any (msg:"x"; content:"a"; sid:1;)\n')
    disable = tmp_path / "disable.conf"
    disable.write_text("1\nre:[\n")
    rc, err = run(capsys, tmp_path, "-S", str(rules), "--set", f"rule-management.disable-conf={disable}")
    assert rc == 1 and err[-1].startswith(f"netsentry: {disable}:2: disable-conf: bad regular expression")
    assert not (tmp_path / "log").exists()


def test_bad_block_list_setting(capsys, tmp_path):
    rc, err = run(capsys, tmp_path, "--set", "respond.blocklist.max-entries=0")
    assert rc == 2 and "respond.blocklist.max-entries" in err[-1]
    assert not (tmp_path / "log").exists()
