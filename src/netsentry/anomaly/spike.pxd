# Compiled build: the per-flow `FlowState` (anomaly/flowstate.pxd) fields are
# struct members where a local is typed with it.
from netsentry.anomaly.flowstate cimport FlowState
# `advance_row` (anomaly/baseline.pxd): the bucket close folds a host's row in as a C call
from netsentry.anomaly.baseline cimport advance_row
