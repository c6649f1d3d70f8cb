"""IKE (ISAKMP, IKEv1 and IKEv2) over UDP port 500, as Suricata's ike parser
(rust/src/ike/): one transaction per message, the `ike.*` keywords' values, the EVE `ike`
record and events.

- Detection by port only (Protocol.ports_only): an ISAKMP header; IKEv2 must be version 2.0
  with an exchange type of 34 to 37 and a length equal to the datagram's.
- IKEv1 payloads read: SA (its proposals' transforms and their attributes: `alg_enc`,
  `alg_hash`, `alg_auth`, `alg_dh`, `sa_life_type`, `sa_life_duration`, `alg_prf`,
  `sa_key_length`...), key exchange, nonce, vendor ids (hex). An encrypted message is
  not read past its header.
- IKEv2 payloads read: SA proposals' transforms (encryption, PRF, integrity, DH),
  key exchange (DH group), nonce, vendor ids; weak or missing algorithms raise
  Suricata's events (weak_crypto_enc, weak_crypto_prf, weak_crypto_auth, weak_crypto_dh,
  weak_crypto_nodh, invalid_proposal, unknown_proposal, no_encryption).
- Events (`app-layer-event:ike.NAME`, also `ikev2.NAME`): the above, malformed_data,
  payload_extra_data, multiple_server_proposal.
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer.registry import ALIASES, BOTH, TO_CLIENT, TO_SERVER, ParserError, Protocol, register_buffer, \
    register_protocol
from netsentry.applayer.tx import Tx

EVENTS: dict[str, int | None] = {n: BOTH for n in (
    "malformed_data", "no_encryption", "weak_crypto_enc", "weak_crypto_prf", "weak_crypto_dh", "weak_crypto_auth",
    "weak_crypto_nodh", "weak_crypto_noauth", "invalid_proposal", "unknown_proposal", "payload_extra_data",
    "multiple_server_proposal")}
ATTRIBUTES = {1: "alg_enc", 2: "alg_hash", 3: "alg_auth", 4: "alg_dh", 5: "sa_group_type", 6: "sa_group_prime",
              7: "sa_group_generator_one", 8: "sa_group_generator_two", 9: "sa_group_curve_a",
              10: "sa_group_curve_b", 11: "sa_life_type", 12: "sa_life_duration", 13: "alg_prf",
              14: "sa_key_length", 15: "sa_field_size", 16: "sa_group_order"}
ATTRIBUTE_CODES = {v: k for k, v in ATTRIBUTES.items()}
_LOGGED = frozenset({1, 2, 3, 4, 11, 12, 14})        # the proposal attributes EVE names
# IKEv2 transform types -> the attribute they answer for ike.chosen_sa_attribute
V2_TRANSFORMS = {1: 1, 2: 13, 3: 3, 4: 4}
WEAK_ENC = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 11})
WEAK_PRF = frozenset({1, 2})
WEAK_AUTH = frozenset({1, 2, 3, 4, 5, 6, 7})
WEAK_DH = frozenset({1, 2, 5, 22})


class _Bad(Exception):
    pass


def _header(b: bytes) -> dict[str, Any] | None:
    if len(b) < 28:
        return None
    return {"init_spi": b[0:8], "resp_spi": b[8:16], "next": b[16], "maj": b[17] >> 4, "min": b[17] & 0x0F,
            "exch": b[18], "flags": b[19], "msg_id": int.from_bytes(b[20:24], "big"),
            "length": int.from_bytes(b[24:28], "big")}


def _payloads(b: bytes, first: int, off: int, end: int) -> list[tuple[int, bytes]]:
    out = []
    kind = first
    while kind and off < end:
        if end - off < 4:
            raise _Bad()
        nxt = b[off]
        ln = int.from_bytes(b[off + 2:off + 4], "big")
        if ln < 4 or off + ln > end:
            raise _Bad()
        out.append((kind, b[off + 4:off + ln]))
        off += ln
        kind = nxt
    return out


def _v1_attributes(b: bytes) -> list[tuple[int, int | None, bytes | None]]:
    out = []
    p = 0
    while p + 4 <= len(b):
        t = int.from_bytes(b[p:p + 2], "big")
        v = int.from_bytes(b[p + 2:p + 4], "big")
        p += 4
        if t & 0x8000:
            out.append((t & 0x7FFF, v, None))
        else:
            data = b[p:p + v]
            if len(data) < v:
                raise _Bad()
            p += v
            out.append((t, int.from_bytes(data, "big") if 0 < v <= 4 else None, data))
    return out


def _v1_sa(body: bytes) -> list[list[tuple[int, int | None, bytes | None]]]:
    """The transforms (attribute lists) of an IKEv1 SA payload's proposals."""
    if len(body) < 8:
        raise _Bad()
    transforms = []
    for kind, prop in _payloads(body, 2, 8, len(body)):
        if kind != 2 or len(prop) < 4:
            continue
        spi_size, count = prop[2], prop[3]
        off = 4 + spi_size
        for k, tr in _payloads(prop, 3 if count else 0, off, len(prop)):
            if k == 3 and len(tr) >= 4:
                transforms.append(_v1_attributes(tr[4:]))
    return transforms


def _v2_sa(body: bytes) -> list[tuple[int, list[tuple[int, int]]]]:
    """(protocol id, [(transform type, id)]) of an IKEv2 SA payload's proposals."""
    out = []
    for kind, prop in _payloads(body, 2, 0, len(body)):
        if len(prop) < 4:
            raise _Bad()
        proto, spi_size, count = prop[1], prop[2], prop[3]
        transforms = []
        for k, tr in _payloads(prop, 3 if count else 0, 4 + spi_size, len(prop)):
            if len(tr) < 4:
                raise _Bad()
            transforms.append((tr[0], int.from_bytes(tr[2:4], "big")))
        out.append((proto, transforms))
    return out


class IkeTx(Tx):
    __slots__ = ("to_server", "hdr", "ke", "nonce", "vendors", "transforms", "v2_transforms", "payload_types",
                 "dh_group", "encrypted")
    proto = "ike"

    def __init__(self, tx_id: int, to_server: bool, hdr: dict[str, Any]) -> None:
        super().__init__(tx_id)
        self.to_server = to_server
        self.hdr = hdr
        self.ke = b""
        self.nonce = b""
        self.vendors: list[bytes] = []
        self.transforms: list[list[tuple[int, int | None, bytes | None]]] = []
        self.v2_transforms: list[tuple[int, int]] = []
        self.payload_types: list[int] = []
        self.dh_group: int | None = None
        self.encrypted = False
        self.done = [True, True]

    def one_way(self) -> bool | None:
        return self.to_server

    def eve(self) -> dict[str, Any]:
        h = self.hdr
        out: dict[str, Any] = {"version_major": h["maj"], "version_minor": h["min"],
                               "init_spi": h["init_spi"].hex(), "resp_spi": h["resp_spi"].hex(),
                               "message_id": h["msg_id"], "exchange_type": h["exch"]}
        if self.payload_types:
            out["payload"] = [str(t) for t in self.payload_types]
        if h["maj"] == 1:
            # this message's side (Suricata logs its per-flow client/server summary here)
            side: dict[str, Any] = {}
            if self.ke:
                side["key_exchange_payload"] = self.ke.hex()
                side["key_exchange_payload_length"] = len(self.ke)
            if self.nonce:
                side["nonce_payload"] = self.nonce.hex()
                side["nonce_payload_length"] = len(self.nonce)
            if self.to_server and self.transforms:
                props = [{"key": ATTRIBUTES[t], "raw": v if v is not None else (d or b"").hex(),
                          "value": str(v if v is not None else (d or b"").hex())}
                         for tr in self.transforms for t, v, d in tr if t in _LOGGED]
                if props:
                    side["proposals"] = props
            v1: dict[str, Any] = {"encrypted_payloads": self.encrypted}
            if side:
                v1["client" if self.to_server else "server"] = side
            if self.vendors:
                v1["vendor_ids"] = [v.hex() for v in self.vendors]
            out["ikev1"] = v1
        else:
            out["ikev2"] = {"errors": 0}
        return out


class IkeParser:
    def __init__(self, settings: Any = None) -> None:
        self.txs: list[IkeTx] = []
        self.server_transforms = 0

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        hdr = _header(data)
        if hdr is None:
            raise ParserError("ike: datagram shorter than an ISAKMP header")
        tx = IkeTx(len(self.txs), to_server, hdr)
        self.txs.append(tx)
        tx.touch(to_server)
        end = min(len(data), hdr["length"]) if hdr["length"] >= 28 else len(data)
        try:
            if hdr["maj"] == 1:
                if hdr["flags"] & 1:
                    tx.encrypted = True
                    return
                self._v1(tx, _payloads(data, hdr["next"], 28, end), to_server)
            elif hdr["maj"] == 2:
                self._v2(tx, _payloads(data, hdr["next"], 28, end))
        except (_Bad, IndexError):
            tx.add_event("malformed_data")
            raise ParserError("ike: malformed payloads") from None

    def _v1(self, tx: IkeTx, payloads: list[tuple[int, bytes]], to_server: bool) -> None:
        for kind, body in payloads:
            tx.payload_types.append(kind)
            if kind == 1:
                tx.transforms.extend(_v1_sa(body))
            elif kind == 4:
                tx.ke = body
            elif kind == 10:
                tx.nonce = body
            elif kind == 13:
                tx.vendors.append(body)
        if not to_server:
            if self.server_transforms <= 1 < self.server_transforms + len(tx.transforms):
                tx.add_event("multiple_server_proposal")
            if 1 in tx.payload_types:
                self.server_transforms = 0
            self.server_transforms += len(tx.transforms)

    def _v2(self, tx: IkeTx, payloads: list[tuple[int, bytes]]) -> None:
        for kind, body in payloads:
            tx.payload_types.append(kind)
            if kind == 33:
                for proto, transforms in _v2_sa(body):
                    tx.v2_transforms.extend(transforms)
                    for t, i in transforms:
                        if t == 1 and i in WEAK_ENC:
                            tx.add_event("weak_crypto_enc")
                        elif t == 2:
                            if i == 0:
                                tx.add_event("invalid_proposal")
                            elif i in WEAK_PRF:
                                tx.add_event("weak_crypto_prf")
                        elif t == 3 and i in WEAK_AUTH:
                            tx.add_event("weak_crypto_auth")
                        elif t == 4:
                            if i == 0:
                                tx.add_event("invalid_proposal")
                            elif i in WEAK_DH:
                                tx.add_event("weak_crypto_dh")
                        elif t not in (1, 2, 3, 4, 5):
                            tx.add_event("unknown_proposal")
                    if not any(t == 4 for t, _ in transforms):
                        tx.add_event("weak_crypto_nodh")
                    if proto == 2:                          # AH
                        tx.add_event("no_encryption")
            elif kind == 34 and len(body) >= 4:
                tx.dh_group = int.from_bytes(body[0:2], "big")
                tx.ke = body[4:]
            elif kind == 40:
                tx.nonce = body
            elif kind == 43:
                tx.vendors.append(body)


def probe(data: bytes, to_server: bool) -> bool | None:
    hdr = _header(data)
    if hdr is None:
        return False
    if hdr["maj"] == 1:
        return True
    if hdr["maj"] == 2:
        return hdr["min"] == 0 and 34 <= hdr["exch"] <= 37 and hdr["length"] == len(data)
    return False


def _v1_only(attr: str):
    def get(tx: IkeTx, to_server: bool) -> bytes | None:
        if tx.hdr["maj"] != 1:
            return None
        v = getattr(tx, attr)
        return v or None
    return get


# the sides Suricata registers each buffer for: the initiator's SPI and the vendor ids to the
# server, the responder's SPI (and the chosen SA) to the client
register_buffer("ike.init_spi", "ike", TO_SERVER, lambda tx, ts: tx.hdr["init_spi"].hex().encode())
register_buffer("ike.resp_spi", "ike", TO_CLIENT, lambda tx, ts: tx.hdr["resp_spi"].hex().encode())
register_buffer("ike.nonce_payload", "ike", BOTH, _v1_only("nonce"))
register_buffer("ike.key_exchange_payload", "ike", BOTH, _v1_only("ke"))
register_buffer("ike.vendor", "ike", TO_SERVER,
                lambda tx, ts: [v.hex().encode() for v in tx.vendors] if tx.hdr["maj"] == 1 else None, multi=True)
register_protocol(Protocol("ike", (17,), probe, IkeParser, (500,), port_decides=(), ports_only=True))
ALIASES.setdefault("ikev2", "ike")
