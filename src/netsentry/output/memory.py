"""An output that keeps its events in a list.

For embedding netsentry as a library (a notebook, another program's tests)
and for our own tests, which look at the events a real `Sensor` produced
instead of at a mock. It is not an ``outputs:`` kind of the configuration:
a caller builds it and hands it to the sensor (``Sensor(config, [out])``).
"""

from __future__ import annotations

from netsentry.event import Event
from netsentry.output import Output


class MemoryOutput(Output):
    """Every event it is given, in order; `of` picks one event type."""

    name = "memory"

    def __init__(self, types: frozenset[str] | None = None) -> None:
        self.event_types = types        # None: every event type
        self.events: list[Event] = []
        self.closed = False

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        self.closed = True

    def of(self, event_type: str) -> list[Event]:
        return [e for e in self.events if e.event_type == event_type]
