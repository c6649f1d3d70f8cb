"""URI normalisation as libhtp does it with Suricata's default personality (IDS).

`http.uri` is the normalised request target, `http.uri.raw` the one on the wire.
libhtp (htp_normalize_parsed_uri, htp_decode_path_inplace,
htp_normalize_uri_path_inplace, htp_uriencoding_normalize_inplace) by default:

- splits an absolute URI (`http://host:port/path?q`) and keeps path and query;
- path: decodes every %XX (an invalid escape stays as written), `+` stays,
  then removes dot segments (`/./`, `/../`, RFC 3986 5.2.4); backslashes and
  repeated slashes stay (path-separators decoding/compression are off by default);
- query: decodes every valid %XX as well (libhtp-rs, Suricata 8: the
  normalised query goes through decode_uri_inplace; `+` stays, as Suricata
  turns plus-space decoding off; libhtp 0.5 decoded only unreserved
  characters);
- the fragment (`#...`) is not part of the normalised URI.
"""

from __future__ import annotations

import re

_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")     # a valid %XX; an invalid one is left as written


def _decoded(m: re.Match[bytes]) -> bytes:
    return bytes((int(m[1], 16),))


def decode_percent(data: bytes) -> bytes:
    """Every valid %XX decoded; an invalid one kept as written."""
    return _ESCAPE.sub(_decoded, data) if b"%" in data else data


def remove_dot_segments(path: bytes) -> bytes:
    """RFC 3986 5.2.4, as htp_normalize_uri_path_inplace."""
    if b"." not in path:
        return path
    inp = path
    out: list[bytes] = []
    while inp:
        if inp.startswith(b"../"):
            inp = inp[3:]
        elif inp.startswith(b"./"):
            inp = inp[2:]
        elif inp.startswith(b"/./"):
            inp = inp[2:]
        elif inp == b"/.":
            inp = b"/"
        elif inp.startswith(b"/../"):
            inp = inp[3:]
            if out:
                out.pop()
        elif inp == b"/..":
            inp = b"/"
            if out:
                out.pop()
        elif inp in (b".", b".."):
            inp = b""
        else:
            j = inp.find(b"/", 1)
            if j < 0:
                out.append(inp)
                inp = b""
            else:
                out.append(inp[:j])
                inp = inp[j:]
    return b"".join(out)


def split_target(raw: bytes) -> tuple[bytes | None, bytes, bytes | None]:
    """(authority or None, path, query or None) of a request target."""
    authority = None
    rest = raw
    low = raw[:8].lower()
    if low.startswith(b"http://") or low.startswith(b"https://"):
        after = raw[raw.find(b"//") + 2:]
        end = len(after)
        for sep in (b"/", b"?", b"#"):
            k = after.find(sep)
            if 0 <= k < end:
                end = k
        authority = after[:end]
        rest = after[end:]
    frag = rest.find(b"#")
    if frag >= 0:
        rest = rest[:frag]
    q = rest.find(b"?")
    if q >= 0:
        return authority, rest[:q], rest[q + 1:]
    return authority, rest, None


def normalise_uri(raw: bytes) -> bytes:
    """libhtp's normalised URI (path and query) of a raw request target."""
    _, path, query = split_target(raw)
    path = remove_dot_segments(decode_percent(path))
    if query is None:
        return path
    return path + b"?" + decode_percent(query)
