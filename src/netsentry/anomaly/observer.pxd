# Compiled build: the observer reads `Packet` (decode/packet.pxd), `Flow`
# (flow/flow.pxd) and the per-flow `FlowState` (anomaly/flowstate.pxd) fields as
# struct members where a local is typed with them.
from netsentry.decode.packet cimport Packet
from netsentry.flow.flow cimport Flow
from netsentry.anomaly.flowstate cimport FlowState
