# Compiled build of detect/alertqueue.py: `AlertSink` reads `Event` as a typed record.
from netsentry.event cimport Event


cdef class AlertSink:
    cdef public object sensor, queue
    # take's body: a C call from deliver (the capture loop's on_events), no method lookup
    cdef int _take(self, list events, object engine) except -1
