"""Traffic ends for the namespace tests, run as ``ip netns exec NS python netns_peer.py CMD ...``.

Servers log what they receive as JSON lines (flushed per line) so a test can
read them while they run; clients print one JSON object with the outcome.
Only plain sockets: what is being tested is the sensor between them.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time

SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)

def _log(path: str, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def tcp_server(port: str, logfile: str) -> None:
    srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("::", int(port)))
    srv.listen(64)
    _log(logfile, {"listening": int(port)})
    n = 0

    def handle(conn: socket.socket, cid: int, peer: str) -> None:
        conn.settimeout(30)
        total = 0
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                total += len(data)
                _log(logfile, {"conn": cid, "peer": peer, "data": data[:200].decode("latin-1"), "total": total})
                conn.sendall(data)
        except OSError as exc:
            _log(logfile, {"conn": cid, "error": str(exc)})
        finally:
            _log(logfile, {"conn": cid, "closed": total})
            conn.close()

    while True:
        conn, addr = srv.accept()
        n += 1
        threading.Thread(target=handle, args=(conn, n, addr[0]), daemon=True).start()


def tcp_client(host: str, port: str, message: str, timeout: str = "3") -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(float(timeout))
    out: dict = {}
    try:
        s.connect((host, int(port)))
        s.sendall(message.encode())
        reply = b""
        while len(reply) < len(message):
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
        out = {"result": "ok", "reply": reply.decode("latin-1")}
    except ConnectionRefusedError:
        out = {"result": "refused"}
    except ConnectionResetError:
        out = {"result": "reset"}
    except (TimeoutError, socket.timeout):
        out = {"result": "timeout"}
    except OSError as exc:
        out = {"result": "error", "error": str(exc)}
    finally:
        s.close()
    print(json.dumps(out), flush=True)


def tcp_bulk(host: str, port: str, nbytes: str, seconds: str) -> None:
    """Send `nbytes` spread over `seconds` (the test kills the sensor meanwhile), then read the echo."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(20)
    total = int(nbytes)
    chunk = b"x" * 1000
    steps = max(1, total // len(chunk))
    pause = float(seconds) / steps
    received = [0]

    def reader() -> None:
        try:
            while received[0] < total:
                data = s.recv(65536)
                if not data:
                    break
                received[0] += len(data)
        except OSError:
            pass

    try:
        s.connect((host, int(port)))
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        sent = 0
        while sent < total:
            s.sendall(chunk[: total - sent])
            sent += min(len(chunk), total - sent)
            time.sleep(pause)
        t.join(20)
        print(json.dumps({"result": "ok", "sent": sent, "echoed": received[0]}), flush=True)
    except OSError as exc:
        print(json.dumps({"result": "error", "error": str(exc), "echoed": received[0]}), flush=True)
    finally:
        s.close()


def udp_server(port: str, logfile: str) -> None:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    # room for a whole flood (20,000 datagrams of ~1 KB truesize each) while this process waits
    # for a core: SO_RCVBUF is capped by net.core.rmem_max (212992 on a stock kernel), which a
    # burst overflows as soon as the reader falls behind. The tests run as root: FORCE ignores the cap
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    s.bind(("::", int(port)))
    s.settimeout(0.2)
    _log(logfile, {"listening": int(port)})
    count = 0
    last = -1
    while True:
        try:
            s.recv(65536)
            count += 1
            continue
        except (TimeoutError, socket.timeout):
            pass
        if count != last:
            _log(logfile, {"received": count})
            last = count


def udp_blast(host: str, port: str, count: str, payload: str = "flood") -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    data = payload.encode()
    addr = (host, int(port))
    sent = 0
    for _ in range(int(count)):
        try:
            s.sendto(data, addr)
            sent += 1
        except OSError:
            time.sleep(0.0005)
    print(json.dumps({"sent": sent}), flush=True)


COMMANDS = {"tcp-server": tcp_server, "tcp-client": tcp_client, "tcp-bulk": tcp_bulk,
            "udp-server": udp_server, "udp-blast": udp_blast}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
