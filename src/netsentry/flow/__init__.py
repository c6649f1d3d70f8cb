"""Flow tracking: the flow table, TCP session state, (later) reassembly."""

from netsentry.flow.flow import Flow
from netsentry.flow.table import FlowConfigError, FlowTable

__all__ = ["Flow", "FlowConfigError", "FlowTable"]
