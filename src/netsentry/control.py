"""The control socket: a running daemon answers ``netsentry ctl`` over a unix socket.

Protocol, shaped like Suricata's unix-command socket: the client sends one
JSON object per line, ``{"command": "blocklist-add", "arguments": {"address":
"192.0.2.7", "ttl": 600}}``, and reads one JSON line back, ``{"return": "OK",
"message": ...}`` or ``{"return": "NOK", "message": "why"}``.

Threads: a server thread accepts connections, reads and *validates* each
request (an unknown command or a bad argument is answered at once and changes
nothing), then queues it. The main thread runs queued commands between packets
(`drain`, from the daemon's wake-ups), because the sensor's state (block list,
counters, ruleset) belongs to the capture loop and is not locked. The server
thread waits for that answer and writes it back.

The socket is created with mode 0600 (only its owner, root or the run-as
user, may steer the sensor) in a directory created 0750 if missing
(``unix-command.filename``, default ``/run/netsentry/netsentry.socket``).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import stat
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netsentry.log import get_logger

MAX_REQUEST = 65536        # bytes: a request is a short JSON line
CLIENT_TIMEOUT = 5.0       # seconds a client may take to send its request
ANSWER_TIMEOUT = 60.0      # seconds the server waits for the main thread (a reload may take a while)

Reply = Callable[[dict[str, Any]], None]
# (arguments, reply) -> None; runs in the main thread; calls reply exactly once (maybe later)
Handler = Callable[[dict[str, Any], Reply], None]
# arguments -> normalised arguments; runs in the server thread; raises ValueError with the reason
Validator = Callable[[dict[str, Any]], dict[str, Any]]


class CommandError(ValueError):
    """A request that cannot run: its message goes back to the client as NOK."""


@dataclass
class Command:
    name: str
    help: str
    handler: Handler
    validate: Validator = field(default=lambda args: args)


def ok(message: Any) -> dict[str, Any]:
    return {"return": "OK", "message": message}


def nok(message: str) -> dict[str, Any]:
    return {"return": "NOK", "message": message}


class ControlServer:
    """Serves `commands` on the unix socket at `path` (see the module doc)."""

    def __init__(self, path: str, commands: Mapping[str, Command]) -> None:
        self.path = path
        self.commands = dict(commands)
        self._queue: queue.SimpleQueue[tuple[Command, dict[str, Any], Reply]] = queue.SimpleQueue()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._made_dirs: list[str] = []
        self.wakeup: Callable[[], None] = lambda: None     # the daemon's "drain soon" hook
        self.counters = {"netsentry.control.commands": 0, "netsentry.control.errors": 0}

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Bind (mode 0600) and start the server thread. OSError with the path on failure."""
        directory = os.path.dirname(self.path) or "."
        try:
            missing = []
            d = os.path.abspath(directory)
            while not os.path.isdir(d):
                missing.append(d)
                d = os.path.dirname(d)
            for d in reversed(missing):
                os.mkdir(d, 0o750)
                os.chmod(d, 0o750)               # whatever the umask
            self._made_dirs = missing             # removed again on close (tests, one-off runs)
            self._remove_stale()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            old_umask = os.umask(0o177)      # no window in which the socket is group/world writable
            try:
                sock.bind(self.path)
            finally:
                os.umask(old_umask)
            os.chmod(self.path, 0o600)
            sock.listen(8)
        except OSError as exc:
            raise OSError(f"control socket {self.path}: {exc.strerror or exc}") from None
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="netsentry-control", daemon=True)
        self._thread.start()
        get_logger().info("control socket listening", path=self.path)

    def _remove_stale(self) -> None:
        """A socket file left by a crashed daemon is removed; a live daemon's is not taken over."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise OSError(f"exists and is not a socket: {self.path}")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(self.path)
        except OSError:
            os.unlink(self.path)
            return
        finally:
            probe.close()
        raise OSError(f"another netsentry is listening on {self.path}")

    def close(self) -> None:
        """Stop serving and remove the socket file; queued commands are answered NOK."""
        self._stopping.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        for d in self._made_dirs:                 # deepest first; only if empty
            with contextlib.suppress(OSError):
                os.rmdir(d)
        self._made_dirs = []
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        while True:
            try:
                _, _, reply = self._queue.get_nowait()
            except queue.Empty:
                break
            reply(nok("the sensor is shutting down"))

    # --- main thread ---------------------------------------------------------------------

    def drain(self) -> int:
        """Run the queued commands (main thread, between packets); returns how many ran."""
        n = 0
        while True:
            try:
                command, args, reply = self._queue.get_nowait()
            except queue.Empty:
                return n
            n += 1
            try:
                command.handler(args, reply)
            except CommandError as exc:
                reply(nok(str(exc)))
            except Exception as exc:        # a bug in one command must not stop the sensor
                get_logger().exception("control command failed", command=command.name)
                reply(nok(f"{command.name} failed: {exc}"))

    def stats(self) -> Mapping[str, int]:
        return dict(self.counters)

    # --- server thread ---------------------------------------------------------------------

    def _serve(self) -> None:
        sock = self._sock
        while not self._stopping.is_set() and sock is not None:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                try:
                    self._handle(conn)
                except OSError:
                    pass               # the client went away; nothing to answer

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(CLIENT_TIMEOUT)
        data = b""
        while b"\n" not in data and len(data) <= MAX_REQUEST:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        answer = self._answer(data)
        if answer["return"] != "OK":
            self.counters["netsentry.control.errors"] += 1
        conn.sendall(json.dumps(answer).encode() + b"\n")

    def _answer(self, data: bytes) -> dict[str, Any]:
        if len(data) > MAX_REQUEST:
            return nok(f"request longer than {MAX_REQUEST} bytes")
        try:
            request = json.loads(data.split(b"\n", 1)[0] or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            return nok(f"request is not JSON: {exc}")
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            return nok('expected {"command": NAME, "arguments": {...}}')
        name = request["command"]
        command = self.commands.get(name)
        if command is None:
            return nok(f"unknown command {name!r} (commands: {', '.join(sorted(self.commands))})")
        args = request.get("arguments") or {}
        if not isinstance(args, dict):
            return nok(f"{name}: arguments must be an object")
        try:
            args = command.validate(args)
        except ValueError as exc:
            return nok(f"{name}: {exc}")
        self.counters["netsentry.control.commands"] += 1
        done = threading.Event()
        box: list[dict[str, Any]] = []

        def reply(answer: dict[str, Any]) -> None:
            if not box:
                box.append(answer)
                done.set()
        self._queue.put((command, args, reply))
        self.wakeup()
        if not done.wait(ANSWER_TIMEOUT):
            return nok(f"{name}: no answer from the sensor within {ANSWER_TIMEOUT:.0f} s")
        return box[0]


def request(path: str, command: str, arguments: Mapping[str, Any] | None = None,
            timeout: float = ANSWER_TIMEOUT + 5) -> dict[str, Any]:
    """Client side: send one command, return the answer. OSError when nobody listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(json.dumps({"command": command, "arguments": dict(arguments or {})}).encode() + b"\n")
        data = b""
        while b"\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data:
        raise OSError(f"{path}: the sensor closed the connection without answering")
    answer = json.loads(data)
    if not isinstance(answer, dict):
        raise OSError(f"{path}: unexpected answer {data[:80]!r}")
    return answer
