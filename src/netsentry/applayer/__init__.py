"""Application layer: protocol detection by content, HTTP/DNS/TLS parsers, transactions, buffers.

Entry points (docs/architecture.md, "Stream and application layer"):
`AppLayer(config)`; `feed(flow, to_server, data, pkt)` with new in-order bytes of
one direction (TCP) or one datagram (UDP); `flow.app` then holds the flow's
`AppState` and its transactions for detect/ and the EVE records; `flow_end(flow)`
finishes what the close completes. Buffers are looked up by name in
`registry.BUFFERS`.
"""

from netsentry.applayer.state import AppLayer, AppState

__all__ = ["AppLayer", "AppState"]
