"""File keywords: `filename`, `fileext`, `filesize`, `filemd5`, `filesha1`, `filesha256`
(Suricata's detect-filename.c, detect-fileext.c, detect-filesize.c, detect-filemd5.c ...).

Each is a check on the files of a transaction (applayer/files.py) of the side being
inspected: a rule naming no protocol applies to every protocol with files (HTTP,
SMTP, ftp-data), in either direction, matching when one of the side's files satisfies it.

- `filename:[!]"name"`: the name contains it, without regard to case (Suricata 8
  turns the keyword into `file.name; content:"name"; nocase;`);
- `fileext:[!]"ext"`: the name ends in "." and the extension, without case;
- `filesize:[to_client|to_server,]N|<N|>N|A-B[KB|MB|GB]`: the size of a closed file
  (an open one only for `>`/`>=` once it is past the bound, as Suricata);
- `filemd5:[!]LIST` (and sha1, sha256): the file's hash is (is not) in LIST, a file
  of hex hashes one a line, found next to the rule file, else under
  `default-rule-path`, else as given;
- `filestore[:request|response|both|to_server|to_client[,file|tx|ssn|flow]]`: in
  Suricata a file match that holds for every file, with the storing done after the
  rule matched (detect-filestore.c); here the match only: the rule needs a file, and
  no file is written (fileinfo `stored` stays false).
"""

from __future__ import annotations

import os
from typing import Any

from netsentry.applayer import files as files_mod
from netsentry.applayer.files import tx_files
from netsentry.applayer.registry import BOTH, TO_CLIENT, TO_SERVER
from netsentry.rules.errors import RuleError
from netsentry.rules.keywords.applayer import tx_check
from netsentry.rules.numeric import parse_uint
from netsentry.rules.registry import RuleBuilder, keyword, unquote

_UNITS = (("kb", 1024), ("mb", 1 << 20), ("gb", 1 << 30), ("b", 1))
_SIDES = {"to_server": TO_SERVER, "to_client": TO_CLIENT}


def _negated(arg: str | None, what: str) -> tuple[bool, str]:
    text = (arg or "").strip()
    neg = text.startswith("!")
    value = unquote(text[1:].strip() if neg else text, what)
    if not value:
        raise RuleError(f"{what}: missing value")
    return neg, value


def _file_check(b: RuleBuilder, direction: int, fn: Any) -> None:
    """`fn(file) -> bool` on any file of the inspected side. The protocol is the rule's;
    a rule naming none checks the files of every protocol that has them (HTTP, SMTP,
    ftp-data: applayer/files.py FILES by the transaction's protocol), as Suricata
    registers its file keywords for each of them."""
    def check(tx: Any, to_server: bool) -> bool:
        return any(fn(f) for f in tx_files(tx, to_server))
    proto = b.sig.app_proto or (next(iter(b.app_protos)) if b.app_protos else None)
    if proto is None:
        b.tx_checks.append((None, direction, check))     # no protocol of its own to add
        return
    tx_check(b, proto, direction, check)


@keyword("filename", help='filename:[!]"name"; a file whose name contains it (no case)')
def filename(b: RuleBuilder, arg: str | None) -> None:
    neg, value = _negated(arg, "filename")
    needle = value.encode().lower()
    _file_check(b, BOTH, lambda f: (needle in f.name.lower()) != neg)


@keyword("fileext", help='fileext:[!]"ext"; a file whose name ends in .ext (no case)')
def fileext(b: RuleBuilder, arg: str | None) -> None:
    neg, value = _negated(arg, "fileext")
    suffix = b"." + value.encode().lower().lstrip(b".")
    _file_check(b, BOTH, lambda f: f.name.lower().endswith(suffix) != neg)


def _size_value(text: str) -> str:
    """`100KB` -> `102400` (Suricata's filesize units), operators and ranges kept."""
    out = []
    for token in text.replace("<>", " <> ").replace("-", " - ").split():
        low = token.lower()
        for unit, mult in _UNITS:
            if low.endswith(unit) and low[:-len(unit)].lstrip("<>=!").isdigit():
                prefix = token[:len(token) - len(unit)]
                digits = prefix.lstrip("<>=!")
                token = prefix[:len(prefix) - len(digits)] + str(int(digits) * mult)
                break
        out.append(token)
    return "".join(out)


@keyword("filesize", help="filesize:[to_client|to_server,]N|<N|>N|A-B[KB|MB|GB]; the size of a file")
def filesize(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "filesize")
    direction = BOTH
    side, comma, rest = text.partition(",")
    if comma and side.strip() in _SIDES:
        direction = _SIDES[side.strip()]
        text = rest
    text = text.strip()
    pred = parse_uint(_size_value(text), "filesize", 64)
    early = text.startswith(">")           # a lower bound can be passed before the file closes
    _file_check(b, direction, lambda f: (f.complete or early) and pred(f.size))


def _hash_list(b: RuleBuilder, name: str, what: str, hexlen: int) -> frozenset[str]:
    """The hashes of list file `name`: next to the rule file, under default-rule-path, as given."""
    candidates = []
    rule_file = b.env.state.get("rule_file") if b.env is not None else None
    if rule_file:
        candidates.append(os.path.join(os.path.dirname(rule_file), name))
    rule_path = getattr(b.env, "default_rule_path", None) if b.env is not None else None
    if rule_path:
        candidates.append(os.path.join(rule_path, name))
    candidates.append(name)
    for path in candidates:
        if os.path.isfile(path):
            break
    else:
        raise RuleError(f"{what}: hash list '{name}' not found (looked in {', '.join(candidates)})")
    hashes = set()
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            word = line.strip().split(None, 1)[0] if line.strip() else ""
            if not word or word.startswith("#"):
                continue
            word = word.lower()
            if len(word) != hexlen or any(c not in "0123456789abcdef" for c in word):
                raise RuleError(f"{what}: {path}:{lineno}: not a {hexlen}-digit hex hash: '{word[:80]}'")
            hashes.add(word)
    return HashList(hashes)


class HashList(frozenset):
    """A hash list of a rule. Made (at parse time, or from the rule cache) it turns on the
    hashing of files past their inspection limit (files.STREAM_HASH)."""

    def __new__(cls, items: Any = ()) -> HashList:
        files_mod.STREAM_HASH = True
        return super().__new__(cls, items)

    def __reduce__(self) -> Any:
        return (HashList, (frozenset(self),))


def _hash_keyword(what: str, algo: str, hexlen: int) -> Any:
    def setup(b: RuleBuilder, arg: str | None) -> None:
        neg, name = _negated(arg, what)
        hashes = _hash_list(b, name, what, hexlen)

        def match(f: Any) -> bool:
            h = f.digest(algo)
            return h is not None and (h in hashes) != neg
        _file_check(b, BOTH, match)
    return setup


_STORE_DIRS = frozenset({"request", "response", "both", "to_server", "to_client"})
_STORE_SCOPES = frozenset({"file", "tx", "ssn", "flow"})


@keyword("filestore", value="optional", help="filestore[:direction[,scope]]; a file (storing it is not done)")
def filestore(b: RuleBuilder, arg: str | None) -> None:
    words = [w.strip().lower() for w in (arg or "").split(",")] if (arg or "").strip() else []
    if len(words) > 2 or (words and words[0] not in _STORE_DIRS) or (len(words) > 1 and words[1] not in _STORE_SCOPES):
        raise RuleError(f"filestore: bad argument '{arg}' (direction[,scope])")
    _file_check(b, BOTH, lambda f: True)


keyword("filemd5", help="filemd5:[!]LIST; the file's md5 is in the list file")(_hash_keyword("filemd5", "md5", 32))
keyword("filesha1", help="filesha1:[!]LIST; the file's sha1 is in the list file")(_hash_keyword("filesha1", "sha1", 40))
keyword("filesha256", help="filesha256:[!]LIST; the file's sha256 is in the list file")(
    _hash_keyword("filesha256", "sha256", 64))
