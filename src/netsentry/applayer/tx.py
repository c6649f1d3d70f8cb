"""The transaction: the unit app-layer rules inspect and EVE logs (one request and its response,
one DNS query and its answer, one TLS handshake).

Protocol modules subclass `Tx` with their fields. What every transaction shares:
its id within the flow (EVE `tx_id`), how far each direction got, which directions
changed since detection last looked (so a transaction is inspected when it
progresses, not on every packet), the buffers already computed (each buffer is
built once per transaction and direction, lazily, on the first rule asking), and
which rules are finished with it (one alert per rule and transaction, as Suricata's
per-transaction detect state).
"""

from __future__ import annotations

from typing import Any

# tx.cache keys of transaction detection's kept candidate lists, one per direction
# (detect/txdetect.py TxDetect._candidates). They are worked out from the buffers' prefilter
# hits and verification results, so any change of a buffer drops them with it.
CANDIDATES_TS = ("\x00candidates", True)
CANDIDATES_TC = ("\x00candidates", False)


class Tx:
    __slots__ = ("tx_id", "done", "updated", "cache", "inspected", "logged", "events", "owner", "bits")

    proto = ""

    def __init__(self, tx_id: int) -> None:
        self.tx_id = tx_id
        self.done = [False, False]         # [to_client side complete, to_server side complete] by to_server index
        self.updated = 0                   # bit 1: to_server side changed, bit 2: to_client side
        self.cache: dict[Any, Any] = {}
        self.inspected: set[int] | None = None   # detect: rules finished with this tx
        self.logged = False
        self.events: set[str] | None = None     # the parser's anomaly events (app-layer-event), made on first use
        # once the tx was released (AppState.release_done): its flow's `AppState.relook` flag,
        # a one-item list (not the AppState: that would make every flow's app state a
        # reference cycle, left to the garbage collector), set by a touch after the release
        self.owner: list[bool] | None = None
        self.bits: set[str] | None = None      # `xbits ... track tx`: the bits set on this tx

    def touch(self, to_server: bool, changed: frozenset[str] | None = None) -> None:
        """Mark a direction as progressed. `changed`: the only buffers whose content moved
        (a body segment changes the body buffers only), else every buffer is rebuilt."""
        self.updated |= 1 if to_server else 2
        owner = self.owner
        if owner is not None:
            owner[0] = True             # a released tx moved (DNS: an event on the newest one)
        cache = self.cache
        if changed is None:
            cache.clear()
        elif cache and changed:
            # (an empty `changed`, as TLS's records after the hellos, keeps every buffer:
            # walking the cache's keys for it was 20 us per record with ET Open)
            for key in [k for k in cache if k[0] in changed]:
                del cache[key]
            cache.pop(CANDIDATES_TS, None)
            cache.pop(CANDIDATES_TC, None)

    def add_event(self, name: str) -> None:
        """Record a parser event ("z_flag_set") on this transaction, for `app-layer-event`."""
        if self.events is None:
            self.events = set()
        self.events.add(name)

    def complete(self) -> bool:
        """Both directions finished: the transaction can be logged."""
        return self.done[0] and self.done[1]

    def release(self) -> None:
        """Drop what detection and logging no longer need (bodies); the ids stay.

        A transaction whose class frees nothing else (no `release` of its own: TLS, the
        message transactions) keeps the same content, so the candidate lists transaction
        detection kept for it (`CANDIDATES_TS`/`_TC`, worked out from that content) stay
        true: a record touching it after the release (TLS records after the handshake)
        reuses them instead of rebuilding every buffer and scanning it again (ndpi-mix, ET
        Open: 785 rebuilds)."""
        cache = self.cache
        if not cache:
            return
        if type(self).release is Tx.release:
            ts = cache.get(CANDIDATES_TS)
            tc = cache.get(CANDIDATES_TC)
            cache.clear()
            if ts is not None:
                cache[CANDIDATES_TS] = ts
            if tc is not None:
                cache[CANDIDATES_TC] = tc
            return
        cache.clear()

    def one_way(self) -> bool | None:
        """The only direction this transaction has (True: to server), or None: both.
        Suricata's unidirectional transactions (a DNS message), which detection in the
        other direction passes over (detect/txdetect.py TxGuess)."""
        return None

    def eve(self) -> dict[str, Any]:      # pragma: no cover - each protocol's own
        raise NotImplementedError


def event_on_newest(txs: list[Any], name: str) -> None:
    """A parser-level event (not of one message) goes on the newest transaction, if any,
    and both its sides are inspected again: Suricata's `set_event` on a protocol state
    (LDAP, NFS)."""
    if txs:
        tx = txs[-1]
        tx.add_event(name)
        tx.touch(True)
        tx.touch(False)


class MessageTx(Tx):
    """A transaction of one message, seen from its sender's side only (Suricata's
    unidirectional transactions of the datagram protocols: NTP, SNMP, krb5, DHCP...):
    complete when made, passed over by detection in the other direction, logged as one
    record per message (`eve`)."""

    __slots__ = ("to_server",)

    def __init__(self, tx_id: int, to_server: bool) -> None:
        super().__init__(tx_id)
        self.to_server = to_server
        self.done = [True, True]

    def one_way(self) -> bool | None:
        return self.to_server

    def message_records(self, final: bool) -> list[dict[str, Any]]:
        self.logged = True
        return [self.eve()]
