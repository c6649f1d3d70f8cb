"""How replay packets reach N workers: each worker reads the whole capture and keeps
its share (what workers.py does), or one reader hashes and hands batches over pipes.

    python bench/bench_share.py [CAPTURE] [--workers 2] [--batch 256] [--rounds 3]

Only the distribution layer is timed (the workers count what they get; no
decode): CPU seconds per process from its own process_time(), summed, so the
figure does not depend on how loaded the shared machine is. Reports CPU us per
packet of the whole capture for each model, min of `rounds`, alternating.
"""

from __future__ import annotations

import argparse
import multiprocessing
import pickle
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from netsentry.capture import read_captures  # noqa: E402
from netsentry.workers import ShareSource, worker_of  # noqa: E402


def each_reads_all(path: str, index: int, workers: int, out: "multiprocessing.Queue[float]") -> None:
    t = time.process_time()
    n = 0
    for _ in ShareSource(read_captures([path]), index, workers, lambda: False):
        n += 1
    out.put(time.process_time() - t)


def consumer(conn: "multiprocessing.connection.Connection", out: "multiprocessing.Queue[float]") -> None:
    t = time.process_time()
    n = 0
    while True:
        batch = pickle.loads(conn.recv_bytes())
        if not batch:
            break
        for _record in batch:
            n += 1
    out.put(time.process_time() - t)


def single_reader(path: str, workers: int, batch_size: int) -> tuple[float, float]:
    """CPU seconds of the reader plus its consumers, and of the reader alone (a serial stage)."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    pipes, procs = [], []
    for _ in range(workers):
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=consumer, args=(recv, out))
        proc.start()
        pipes.append(send)
        procs.append(proc)
    t = time.process_time()
    batches: list[list] = [[] for _ in range(workers)]
    for record in read_captures([path]):
        w = worker_of(record[1], record[3], workers)
        b = batches[w]
        b.append(record)
        if len(b) >= batch_size:
            pipes[w].send_bytes(pickle.dumps(b, protocol=pickle.HIGHEST_PROTOCOL))
            batches[w] = []
    for w, b in enumerate(batches):
        if b:
            pipes[w].send_bytes(pickle.dumps(b, protocol=pickle.HIGHEST_PROTOCOL))
        pipes[w].send_bytes(pickle.dumps([]))
    reader = time.process_time() - t
    total = reader + sum(out.get() for _ in procs)
    for proc in procs:
        proc.join()
    return total, reader


def each_reads(path: str, workers: int) -> float:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=each_reads_all, args=(path, i, workers, out)) for i in range(workers)]
    for p in procs:
        p.start()
    total = sum(out.get() for _ in procs)
    for p in procs:
        p.join()
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture", nargs="?", default=str(HERE / "out" / "bench-200000-12345.pcap"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    packets = sum(1 for _ in read_captures([args.capture]))
    best = {"each worker reads all": float("inf"), "one reader, pipes": float("inf")}
    reader_best = float("inf")
    t = time.process_time()
    for _ in read_captures([args.capture]):
        pass
    plain = time.process_time() - t
    for _ in range(args.rounds):
        best["each worker reads all"] = min(best["each worker reads all"], each_reads(args.capture, args.workers))
        total, reader = single_reader(args.capture, args.workers, args.batch)
        best["one reader, pipes"] = min(best["one reader, pipes"], total)
        reader_best = min(reader_best, reader)
    print(f"{packets:,} packets, {args.workers} workers; reading once (no sharing): "
          f"{plain / packets * 1e6:.2f} us/packet CPU")
    for name, cpu in best.items():
        print(f"{name}: {cpu / packets * 1e6:.2f} us/packet CPU (all processes)")
    print(f"  of which the single reader (serial): {reader_best / packets * 1e6:.2f} us/packet; "
          f"each-reads-all per worker: {best['each worker reads all'] / args.workers / packets * 1e6:.2f}")


if __name__ == "__main__":
    main()
