#!/usr/bin/env python3
"""SIEM delivery cost and losses: replay throughput with EVE only vs EVE + syslog TCP to a
real rsyslogd, and the syslog queue's losses while the receiver is frozen.

usage: bench_siem.py [PCAP] [-S RULES] [--repeat N] [--outage SECONDS] [--queue-size N]

Throughput: `netsentry replay --no-progress -S RULES PCAP` in a child process,
alternating EVE only and EVE + ``outputs.syslog`` (tcp, octet counting, the
default types alert/drop/anomaly) to an rsyslogd started here on a loopback
port (writing to a file, as a SIEM's collector would), N times each. Figures:
wall seconds and packets per wall second, and the child's CPU time (user +
sys, which includes the sender thread), best of N; the machine is shared, so
alternation and best-of make the two comparable.

Outage (`--outage S`): rsyslogd is frozen (SIGSTOP) just before a replay
starts and resumed (SIGCONT) S seconds later; the replay's drain-timeout is
longer than S, so the records still queued then are delivered. Reported:
produced, sent, dropped (from the output's closing log line), and what
rsyslog wrote. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO / ".." / "shared" / "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rsyslog:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.out = workdir / "received.log"
        conf = workdir / "rsyslog.conf"
        conf.write_text(f"""
global(workDirectory="{workdir}" maxMessageSize="64k")
module(load="imtcp")
input(type="imtcp" port="{self.port}" address="127.0.0.1")
action(type="omfile" file="{self.out}" asyncWriting="on" ioBufferSize="1m")
""")
        rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
        self.proc = subprocess.Popen([rsyslogd, "-n", "-f", str(conf), "-i", str(workdir / "pid")])
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def lines(self) -> int:
        if not self.out.exists():
            return 0
        with open(self.out, "rb") as f:
            return sum(1 for _ in f)

    def stop(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.terminate()
        self.proc.wait(10)


def replay(pcap: Path, rules: Path, logdir: Path, sets: list[str]) -> tuple[float, float, str]:
    args = [sys.executable, "-m", "netsentry", "replay", "--no-progress", "-q", str(pcap), "-S", str(rules),
            "-l", str(logdir)]
    for item in sets:
        args += ["--set", item]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(args, capture_output=True, text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"replay failed: {proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stderr


def packets(logdir: Path) -> int:
    with open(logdir / "eve.json", "rb") as f:
        last = f.readlines()[-1]
    return json.loads(last)["stats"]["decoder"]["pkts"]


def closed(stderr: str) -> dict:
    return next(json.loads(ln) for ln in stderr.splitlines() if '"output closed"' in ln)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pcap", nargs="?", default=str(HERE / "out" / "bench-1m.pcap"))
    ap.add_argument("-S", dest="rules", default=str(SHARED / "bench.rules"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--outage", type=float, default=0.0)
    ap.add_argument("--queue-size", type=int, default=10000)
    args = ap.parse_args()
    pcap, rules = Path(args.pcap), Path(args.rules)
    with tempfile.TemporaryDirectory(prefix="bench-siem-") as tmp:
        work = Path(tmp)
        (work / "rs").mkdir()
        rs = Rsyslog(work / "rs")
        try:
            syslog = ["outputs.syslog.enabled=true", "outputs.syslog.transport=tcp",
                      f"outputs.syslog.port={rs.port}", f"outputs.syslog.queue-size={args.queue_size}"]
            best: dict[str, list[float]] = {"eve": [1e9, 1e9], "eve+syslog": [1e9, 1e9]}
            n = 0
            for i in range(args.repeat):
                for name, sets in (("eve", []), ("eve+syslog", syslog)):
                    wall, cpu, err = replay(pcap, rules, work / "log", sets)
                    n = packets(work / "log")
                    extra = ""
                    if sets:
                        c = closed(err)
                        extra = f" produced={c['produced']} sent={c['sent']} dropped={c['dropped']}"
                    print(f"run {i + 1} {name:10s} wall {wall:6.2f}s ({n / wall:8.0f} pkt/s)"
                          f"  cpu {cpu:6.2f}s ({n / cpu:8.0f} pkt/cpu-s){extra}", flush=True)
                    best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
            for name, (wall, cpu) in best.items():
                print(f"best {name:10s} {n / wall:8.0f} pkt/s wall, {n / cpu:8.0f} pkt/cpu-s ({n} packets)")
            print(f"ratio eve+syslog / eve: wall {best['eve'][0] / best['eve+syslog'][0]:.3f}, "
                  f"cpu {best['eve'][1] / best['eve+syslog'][1]:.3f} (throughput)")
            if args.outage:
                before = rs.lines()
                os.kill(rs.proc.pid, signal.SIGSTOP)
                timer_start = time.monotonic()
                proc = subprocess.Popen(
                    [sys.executable, "-m", "netsentry", "replay", "--no-progress", "-q", str(pcap), "-S", str(rules),
                     "-l", str(work / "log"), *sum((["--set", s] for s in syslog), []),
                     "--set", f"outputs.syslog.drain-timeout={args.outage + 60:.1f}"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                while time.monotonic() - timer_start < args.outage:
                    time.sleep(0.1)
                loop_done = proc.poll() is not None or b'"event_type":"stats"' in (work / "log" / "eve.json").read_bytes()[-8192:]
                os.kill(rs.proc.pid, signal.SIGCONT)
                _, err = proc.communicate()
                c = closed(err)
                time.sleep(2)
                print(f"outage {args.outage:.0f}s (replay's capture loop finished during it: {loop_done}): "
                      f"produced={c['produced']} sent={c['sent']} dropped={c['dropped']} "
                      f"reconnects={c['reconnects']} queue-size={args.queue_size} "
                      f"rsyslog wrote {rs.lines() - before}")
        finally:
            rs.stop()


if __name__ == "__main__":
    main()
