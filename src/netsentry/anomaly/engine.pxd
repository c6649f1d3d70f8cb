# Compiled build: the engine reads `Packet` (decode/packet.pxd), `Flow`
# (flow/flow.pxd) and its own per-flow `FlowState` (anomaly/flowstate.pxd) fields
# as struct members where they are typed.
from netsentry.decode.packet cimport Packet
from netsentry.flow.flow cimport Flow
from netsentry.anomaly.flowstate cimport FlowState
