# Compiled build: the per-flow `FlowState` (anomaly/flowstate.pxd) fields are
# struct members where a local is typed with it.
from netsentry.anomaly.flowstate cimport FlowState
