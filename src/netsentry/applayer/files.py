"""Files: what the file keywords (`filename`, `fileext`, `filemd5`, `filesize`, `file.name`)
and EVE `fileinfo` see of a transaction, as Suricata's file tracking (util-file.c,
app-layer-htp-file.c) for HTTP/1.x.

A body is a file: the response body of a request (named by the response's
Content-Disposition filename, else the request's URI path), a request body of a
PUT (named by the URI path), and each part of a multipart/form-data request body
that carries a filename. A file's data is the body after de-chunking and
decompression (what `file.data` inspects); it is complete when its side of the
transaction is. The md5 is computed on demand over the kept body, so it is
known only for a file the body limit kept whole (`file_cut` says when not):
no per-byte cost for traffic no rule or record hashes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from netsentry.applayer.uri import decode_percent, split_target

# set once hash rules are loaded (filemd5/filesha1/filesha256 lists, built or read from the
# rule cache): a body past its inspection limit is hashed as it streams (Hashes), so its
# file still has hashes; without such rules nothing is hashed per byte
STREAM_HASH = False
ALGOS = ("md5", "sha1", "sha256")


class Hashes:
    """The md5, sha1 and sha256 of a file that is not kept whole, fed as it streams."""

    __slots__ = ("h",)

    def __init__(self, start: bytes = b"") -> None:
        self.h = {a: hashlib.new(a, start) for a in ALGOS}

    def update(self, data: bytes) -> None:
        for h in self.h.values():
            h.update(data)

    def hexdigest(self, algo: str) -> str | None:
        h = self.h.get(algo)
        return h.hexdigest() if h is not None else None


_FILENAME = re.compile(rb"""filename\*?\s*=\s*(?:"([^"]*)"|([^;\s]*))""", re.I)
_BOUNDARY = re.compile(rb"""boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))""", re.I)


@dataclass(slots=True)
class File:
    name: bytes
    data: bytes            # the kept data (all of it unless `cut`)
    size: int              # bytes of file data seen
    complete: bool         # the side of the transaction carrying it is done
    cut: bool              # the kept data is not the whole file
    hashes: Hashes | None = None    # a cut file's hashes over all of it (STREAM_HASH)

    def append(self, chunk: bytes, limit: int) -> None:
        """More of a streamed file (SMTP attachment, FTP data; `data` a bytearray): kept up
        to `limit` bytes, the rest only counted, and the file marked cut."""
        room = limit - len(self.data)
        if room > 0:
            self.data.extend(chunk[:room])         # type: ignore[attr-defined]
        if len(chunk) > room:
            self.cut = True
        self.size += len(chunk)

    def digest(self, algo: str = "md5") -> str | None:
        """The hex hash (md5, sha1, sha256) of the whole file, None while it is open or
        when not all of it was kept."""
        if not self.complete:
            return None
        if self.cut:
            return self.hashes.hexdigest(algo) if self.hashes is not None else None
        return hashlib.new(algo, self.data).hexdigest()


def disposition_name(value: bytes | None) -> bytes | None:
    """The filename parameter of a Content-Disposition value."""
    if not value:
        return None
    m = _FILENAME.search(value)
    if m is None:
        return None
    name = m.group(1) if m.group(1) is not None else m.group(2)
    if value[m.start():m.start() + 9].lower() == b"filename*" and b"''" in name:
        name = decode_percent(name.split(b"''", 1)[1])      # RFC 5987 charset''value
    return name or None


def _uri_path(tx: Any) -> bytes:
    return decode_percent(split_target(tx.uri_raw or b"")[1])


def _multipart(tx: Any, body: bytes, complete: bool, cut: bool) -> list[File]:
    ctype = tx.header(b"content-type", True) or b""
    m = _BOUNDARY.search(ctype)
    if m is None or b"multipart/" not in ctype.lower():
        return []
    delim = b"--" + (m.group(1) or m.group(2))
    files: list[File] = []
    parts = body.split(delim)
    for i, part in enumerate(parts[1:], 1):
        if part.startswith(b"--"):
            break                                       # the closing delimiter
        head, sep, data = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        name = None
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-disposition:"):
                name = disposition_name(line.split(b":", 1)[1])
        if name is None:
            continue
        closed = i < len(parts) - 1                     # another delimiter follows
        if data.endswith(b"\r\n") and closed:
            data = data[:-2]
        files.append(File(name, data, len(data), complete or closed, cut and not closed))
    return files


def http_files(tx: Any, to_server: bool) -> list[File]:
    """The files of one side of an HTTP transaction (none before its body starts)."""
    d = int(to_server)
    size = tx.req_file_len if to_server else tx.resp_file_len
    cut = bool(tx.file_cut & (1 << d))
    complete = bool(tx.done[d])
    body = bytes(tx.req_body if to_server else tx.resp_body)
    hashes = tx.file_hash[d] if cut and tx.file_hash is not None else None
    if to_server:
        if not size:
            return []
        method = (tx.method or b"").upper()
        if method == b"PUT":
            return [File(_uri_path(tx), body, size, complete, cut, hashes)]
        return _multipart(tx, body, complete, cut)
    if tx.resp_headers is None or not tx.resp_header_raw or (not size and not complete):
        return []
    if not size:
        return []                  # no body: no file (a 304, a HEAD, an empty 200)
    name = disposition_name(tx.header(b"content-disposition", False)) or _uri_path(tx)
    return [File(name, body, size, complete, cut, hashes)]


def files_eve(files: list[File], tx_id: int) -> list[dict[str, Any]]:
    """The `files` array Suricata adds to an alert on a transaction with files
    (output-json-alert.c AlertAddFiles): each file's name, state and size."""
    out = []
    for f in files:
        rec: dict[str, Any] = {"filename": f.name.decode("utf-8", "replace"), "gaps": False,
                               # Suricata names no state of an open file (output-json.c
                               # EveFileInfo: CLOSED, TRUNCATED, ERROR, else UNKNOWN)
                               "state": "CLOSED" if f.complete else "UNKNOWN"}
        md5 = f.digest() if f.complete else None
        if md5 is not None and getattr(f, "hashed", False):
            rec["md5"] = md5
        rec["stored"] = False
        rec["size"] = f.size
        rec["tx_id"] = tx_id
        out.append(rec)
    return out


# the file getter of each protocol that has files
FILES = {"http": http_files}


def tx_files(tx: Any, to_server: bool) -> list[File]:
    get = FILES.get(tx.proto)
    return get(tx, to_server) if get is not None else []
