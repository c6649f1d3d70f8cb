"""Live capture and inline figures, in network namespaces this script creates and removes (root).

    .venv/bin/python bench/bench_live.py readers  [--count N] [--repeat R]
    .venv/bin/python bench/bench_live.py afpacket [--rates 2000,5000,...] [--seconds S] [--rules FILE] [--workers 1,2]
    .venv/bin/python bench/bench_live.py nfqueue  [--seconds S] [--rules FILE] [--workers 1,2]
    .venv/bin/python bench/bench_live.py ctl      [--repeat R] [--base SRC]

readers:  the AF_PACKET source alone, plain socket against TPACKET_V3 ring:
          N frames are queued in the kernel first (socket buffer / ring), then
          drained by `AfPacketSource` and timed (CPU and wall), so the sender's
          speed does not enter the figure. Alternating runs, best of R.
afpacket: `netsentry run -i` (the whole pipeline) while frames arrive at fixed
          rates for S seconds each; reports the kernel's drops per rate: the
          highest rate without drops is the figure.
nfqueue:  client | router | server; ping round trip (latency) and a TCP bulk
          transfer (throughput, packets/s) through the router with no queue,
          and with `netsentry run -q` inspecting every packet (fail-closed, so
          an overflow cannot pass packets uninspected and flatter the figure).
          With --workers 1,2 each count runs in turn (`-q 0:N-1` behind
          `--queue-balance`); the TCP transfer then runs as 8 parallel
          connections from 8 client addresses, since --queue-balance hashes
          the address pair only.
ctl:      time `netsentry ctl stats` round trips against an idle sensor (one
          process, then 2 workers), this tree against --base (default
          /work/ns-base/src), alternating, R rounds of 20 requests each.
afpacket with --workers: the frames carry 256 source ports (256 flows) so the
          fanout hash has something to spread.

Only addresses inside the namespaces (10.203.0.0/16). Time-bounded: each
step has a deadline. Figures go to stdout; docs/daemon.md keeps the last ones.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
TAG = uuid.uuid4().hex[:5]
_NAMESPACES: list[str] = []


def sh(*cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")
    return done


def ns(role: str) -> str:
    name = f"bn{TAG}{role}"
    sh("ip", "netns", "add", name)
    _NAMESPACES.append(name)
    sh("ip", "-n", name, "link", "set", "lo", "up")
    return name


def veth(a: str, dev_a: str, b: str, dev_b: str) -> None:
    sh("ip", "link", "add", f"b{TAG}x", "type", "veth", "peer", "name", f"b{TAG}y")
    sh("ip", "link", "set", f"b{TAG}x", "netns", a, "name", dev_a)
    sh("ip", "link", "set", f"b{TAG}y", "netns", b, "name", dev_b)
    sh("ip", "-n", a, "link", "set", dev_a, "up")
    sh("ip", "-n", b, "link", "set", dev_b, "up")


def cleanup() -> None:
    for name in _NAMESPACES:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def in_ns(name: str, *cmd: str) -> list[str]:
    return ["ip", "netns", "exec", name, *cmd]


# --- helpers run inside a namespace (this script, re-entered) ------------------------------

def _frame(dst_mac: bytes = b"\xff" * 6, sport: int = 40000) -> bytes:
    payload = b"bench-live-frame"
    udp = struct.pack("!HHHH", sport, 7001, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton("10.203.0.1"), socket.inet_aton("10.203.0.2"))
    return dst_mac + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp


def helper_send(dev: str, count: int, rate: float) -> None:
    """Send `count` frames on `dev` (raw AF_PACKET), at `rate` frames/s (0: as fast as possible)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((dev, 0))
    frames = [_frame(sport=40000 + i) for i in range(256)]     # 256 flows: the fanout hash spreads them
    frame = frames[0]
    send = s.send
    t0 = time.perf_counter()
    if rate <= 0:
        for _ in range(count):
            send(frame)
    else:
        burst = max(1, int(rate / 1000))          # a burst per millisecond
        sent = 0
        while sent < count:
            for i in range(min(burst, count - sent)):
                send(frames[(sent + i) & 255])
            sent += burst
            target = t0 + sent / rate
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    print(json.dumps({"sent": count, "seconds": time.perf_counter() - t0}), flush=True)


def helper_drain(dev: str, ring: str, count: int) -> None:
    """Open the source, say ready, wait for a line on stdin, then read `count` frames and time it."""
    sys.path.insert(0, str(ROOT / "src"))
    from netsentry.capture.afpacket import AfPacketInterface, AfPacketSource
    src = AfPacketSource([AfPacketInterface(dev, buffer_size=256 << 20, ring=ring)])
    print("ready", flush=True)
    sys.stdin.readline()
    n = 0
    c0, w0 = time.process_time(), time.perf_counter()
    deadline = w0 + 60
    src.on_tick = lambda now: None
    src.should_stop = lambda: n >= count or time.perf_counter() > deadline
    for _rec in src:
        n += 1
        if n >= count:
            break
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    stats = src.stats()
    src.close()
    print(json.dumps({"read": n, "cpu": cpu, "wall": wall, **stats}), flush=True)


# --- readers ---------------------------------------------------------------------------

def bench_readers(count: int, repeat: int) -> None:
    a, b = ns("a"), ns("b")
    veth(a, "va", b, "vb")
    best: dict[str, dict] = {}
    for i in range(repeat * 2):
        ring = ("socket", "tpacket-v3")[i % 2]
        drain = subprocess.Popen(in_ns(b, PY, __file__, "_drain", "vb", ring, str(count)),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert drain.stdout.readline().strip() == "ready"
        sh(*in_ns(a, PY, __file__, "_send", "va", str(count), "0"), timeout=120)
        time.sleep(0.2)
        drain.stdin.write("go\n")
        drain.stdin.flush()
        out = json.loads(drain.stdout.readline())
        drain.wait(30)
        out["pps_cpu"] = out["read"] / out["cpu"] if out["cpu"] else 0
        print(f"  {ring:10s} read {out['read']:>7,} in {out['cpu']:.3f}s CPU ({out['pps_cpu']:,.0f} frames/s CPU, "
              f"{out['read'] / out['wall']:,.0f}/s wall), kernel drops {out['capture.kernel_drops']}", flush=True)
        if out["read"] == count and (ring not in best or out["pps_cpu"] > best[ring]["pps_cpu"]):
            best[ring] = out
    for ring, out in best.items():
        print(f"best {ring}: {out['pps_cpu']:,.0f} frames/s (CPU time)")


# --- afpacket with the whole pipeline ------------------------------------------------------

def _daemon(name: str, logdir: Path, *args: str, src: str | None = None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=src or str(ROOT / "src"))
    err = open(logdir / "stderr.log", "w")
    proc = subprocess.Popen(in_ns(name, PY, "-m", "netsentry", "run", "-l", str(logdir), *args),
                            stderr=err, env=env)
    deadline = time.time() + 60
    while "capture started" not in (logdir / "stderr.log").read_text():
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError((logdir / "stderr.log").read_text())
        time.sleep(0.1)
    return proc


def _last_stats(logdir: Path) -> dict:
    stats = [json.loads(line) for line in (logdir / "eve.json").read_text().splitlines() if '"stats"' in line]
    return stats[-1]["stats"]


def bench_afpacket(rates: list[int], seconds: float, rules: str | None, ring: str, workers: list[int]) -> None:
    a, b = ns("a"), ns("b")
    veth(a, "va", b, "vb")
    for rate in rates:
      for n in workers:
        with tempfile.TemporaryDirectory() as tmp:
            logdir = Path(tmp)
            args = ["-i", "vb", "--workers", str(n), "--set", f"af-packet.ring={ring}",
                    "--set", "unix-command.enabled=false"] + (["-S", rules] if rules else [])
            proc = _daemon(b, logdir, *args)
            count = int(rate * seconds)
            sent = json.loads(sh(*in_ns(a, PY, __file__, "_send", "va", str(count), str(rate)),
                                 timeout=seconds * 5 + 30).stdout)
            time.sleep(1.5)
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            st = _last_stats(logdir)
            print(f"  workers {n}: {rate:>7,} frames/s offered (sent at {sent['sent'] / sent['seconds']:,.0f}/s): "
                  f"pipeline saw {st['decoder']['pkts']:,}, kernel drops {st['capture']['kernel_drops']:,}",
                  flush=True)


# --- nfqueue ---------------------------------------------------------------------------------

_ECHO_SERVER = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 7101))
while True:
    data, peer = s.recvfrom(2048); s.sendto(data, peer)
"""

_ECHO_CLIENT = """
import socket, time, json, statistics
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.0)
rtts = []
for i in range(300):
    t0 = time.perf_counter(); s.sendto(b"x" * 64, ("10.203.2.2", 7101))
    try:
        s.recv(2048); rtts.append((time.perf_counter() - t0) * 1000)
    except OSError:
        pass
    time.sleep(0.002)
print(json.dumps({"median": statistics.median(rtts), "p90": sorted(rtts)[int(len(rtts) * 0.9)], "n": len(rtts)}))
"""


def _ping(client: str, dst: str) -> dict:
    """UDP echo round trips (median and 90th percentile, ms): 300 sequential 64-byte requests."""
    return json.loads(sh(*in_ns(client, PY, "-c", _ECHO_CLIENT), timeout=60).stdout)


_BULK_SERVER = """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7100)); s.listen(8)
while True:
    c, _ = s.accept()
    while c.recv(1 << 16):
        pass
    c.close()
"""

_BULK_CLIENT = """
import socket, sys, time, json, threading
seconds, nconn = float(sys.argv[1]), int(sys.argv[2])
total = [0] * nconn
def one(i):
    s = socket.create_connection(("10.203.2.2", 7100), source_address=(f"10.203.1.{2 + i}", 0))
    data = b"x" * 65536; n = 0; t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        s.sendall(data); n += len(data)
    s.close(); total[i] = n
t0 = time.perf_counter()
threads = [threading.Thread(target=one, args=(i,)) for i in range(nconn)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps({"bytes": sum(total), "seconds": time.perf_counter() - t0}))
"""


def _proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) a running process has used, from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_nfqueue(seconds: float, rules: str | None, workers: list[int],
                  batchcounts: list[int] | None = None, repeat: int = 1) -> None:
    c, r, s = ns("c"), ns("r"), ns("s")
    veth(c, "c0", r, "r0")
    veth(r, "r1", s, "s0")
    nconn = 8 if max(workers) > 1 else 1
    for i in range(nconn):
        sh("ip", "-n", c, "addr", "add", f"10.203.1.{2 + i}/24", "dev", "c0")
    sh("ip", "-n", r, "addr", "add", "10.203.1.1/24", "dev", "r0")
    sh("ip", "-n", r, "addr", "add", "10.203.2.1/24", "dev", "r1")
    sh("ip", "-n", s, "addr", "add", "10.203.2.2/24", "dev", "s0")
    sh("ip", "-n", c, "route", "add", "default", "via", "10.203.1.1")
    sh("ip", "-n", s, "route", "add", "default", "via", "10.203.2.1")
    sh(*in_ns(r, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"))
    server = subprocess.Popen(in_ns(s, PY, "-c", _BULK_SERVER))
    echo = subprocess.Popen(in_ns(s, PY, "-c", _ECHO_SERVER))
    time.sleep(0.5)
    try:
        def bulk() -> dict:
            out = sh(*in_ns(c, PY, "-c", _BULK_CLIENT, str(seconds), str(nconn)), timeout=seconds + 60).stdout
            return json.loads(out)

        base_rtt = _ping(c, "10.203.2.2")
        base = bulk()
        print(f"  no queue:   UDP echo RTT median {base_rtt['median']:.3f} ms (p90 {base_rtt['p90']:.3f}), "
              f"TCP {base['bytes'] / base['seconds'] / 1e6:,.1f} MB/s ({nconn} connections)", flush=True)
        for n in workers:
            queue = ["--queue-num", "0"] if n == 1 else ["--queue-balance", f"0:{n - 1}"]
            sh(*in_ns(r, "iptables", "-I", "FORWARD", "-j", "NFQUEUE", *queue, "--queue-bypass"))
            try:
                # nfq.batchcount values alternate within each round, so drift on the shared
                # machine hits them alike
                for round_ in range(repeat):
                    for batch in batchcounts or [1]:
                        _nfqueue_run(c, r, n, batch, round_, rules, bulk, base_rtt)
            finally:
                sh(*in_ns(r, "iptables", "-D", "FORWARD", "-j", "NFQUEUE", *queue, "--queue-bypass"), check=False)
    finally:
        server.kill()
        echo.kill()


def _nfqueue_run(c: str, r: str, n: int, batch: int, round_: int, rules: str | None,
                 bulk: Any, base_rtt: dict) -> None:
    """One daemon run behind the router's queue(s): n workers, nfq.batchcount `batch`."""
    with tempfile.TemporaryDirectory() as tmp:
        logdir = Path(tmp)
        proc = _daemon(r, logdir, "-q", "0" if n == 1 else f"0:{n - 1}", "--set", "nfq.fail-open=false",
                       "--set", f"nfq.batchcount={batch}", "--set", "unix-command.enabled=false",
                       *(["-S", rules] if rules else []))
        time.sleep(1.0)         # every worker bound (the parent says started before they are)
        cpu0 = _proc_cpu(proc.pid) or 0.0      # start-up (imports, rules) is not counted
        rtt = _ping(c, "10.203.2.2")
        res = bulk()
        cpu = (_proc_cpu(proc.pid) or 0.0) - cpu0 if n == 1 else 0.0   # workers are children
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        st = _last_stats(logdir)
        pkts = st["decoder"]["pkts"]
        print(f"  netsentry, {n} worker(s), batchcount {batch}, round {round_ + 1}: UDP echo RTT median "
              f"{rtt['median']:.3f} ms (p90 {rtt['p90']:.3f}; +{rtt['median'] - base_rtt['median']:.3f} ms), "
              f"TCP {res['bytes'] / res['seconds'] / 1e6:,.2f} MB/s; {pkts:,} packets inspected, "
              f"~{pkts / res['seconds']:,.0f} packets/s over the transfer; "
              f"{st.get('netsentry', {}).get('nfq', {}).get('verdict_batches', 0):,} batch messages; "
              f"kernel drops {st['capture']['kernel_drops']:,}"
              + (f"; daemon CPU {cpu:.2f} s, {cpu / pkts * 1e6:.1f} us/packet" if cpu else ""),
              flush=True)


# --- ctl answer latency --------------------------------------------------------------------------

_CTL_CLIENT = """
import json, sys, time
sys.path.insert(0, sys.argv[2])
from netsentry.control import request
times = []
for _ in range(int(sys.argv[3])):
    t0 = time.perf_counter()
    answer = request(sys.argv[1], "stats")
    assert answer["return"] == "OK", answer
    times.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.05)
times.sort()
print(json.dumps({"median": times[len(times) // 2], "max": times[-1]}))
"""


def bench_ctl(repeat: int, base: str) -> None:
    a, b = ns("a"), ns("b")
    veth(a, "va", b, "vb")
    best: dict[tuple[str, int], dict] = {}
    for _ in range(repeat):
        for n in (1, 2):
            for label, src in (("base", base), ("new", str(ROOT / "src"))):
                if label == "base" and n > 1:
                    continue            # the base tree runs one process only
                with tempfile.TemporaryDirectory() as tmp:
                    logdir = Path(tmp)
                    sock = str(logdir / "ctl.socket")
                    proc = _daemon(b, logdir, "-i", "vb", "--workers", str(n),
                                   "--set", f"unix-command.filename={sock}", src=src) if label == "new" else \
                        _daemon(b, logdir, "-i", "vb", "--set", f"unix-command.filename={sock}", src=src)
                    time.sleep(1.5)
                    out = json.loads(sh(*in_ns(b, PY, "-c", _CTL_CLIENT, sock, src, "20"), timeout=120).stdout)
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(60)
                key = (label, n)
                print(f"  {label:4s} workers {n}: ctl stats round trip median {out['median']:.1f} ms, "
                      f"max {out['max']:.1f} ms", flush=True)
                if key not in best or out["median"] < best[key]["median"]:
                    best[key] = out
    for (label, n), out in sorted(best.items()):
        print(f"best {label} workers {n}: median {out['median']:.1f} ms, max {out['max']:.1f} ms")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_send":
        return helper_send(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    if len(sys.argv) > 1 and sys.argv[1] == "_drain":
        return helper_drain(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("readers", "afpacket", "nfqueue", "ctl"))
    ap.add_argument("--workers", default="1", help="worker counts to run in turn, e.g. 1,2")
    ap.add_argument("--base", default="/work/ns-base/src", help="ctl: the tree to compare with")
    ap.add_argument("--count", type=int, default=50000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rates", default="2000,5000,10000,20000,40000")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rules", default=None)
    ap.add_argument("--batchcounts", default="1", help="nfqueue: nfq.batchcount values to compare, e.g. 1,20")
    ap.add_argument("--ring", default="socket", choices=("socket", "tpacket-v3"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_live.py needs root (network namespaces)")
    try:
        if args.what == "readers":
            bench_readers(args.count, args.repeat)
        elif args.what == "afpacket":
            bench_afpacket([int(r) for r in args.rates.split(",")], args.seconds, args.rules, args.ring,
                           [int(w) for w in args.workers.split(",")])
        elif args.what == "ctl":
            bench_ctl(args.repeat, args.base)
        else:
            bench_nfqueue(args.seconds, args.rules, [int(w) for w in args.workers.split(",")],
                          [int(b) for b in args.batchcounts.split(",")], args.repeat)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
