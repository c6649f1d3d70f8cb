# Compiled build of detect/alertqueue.py: `AlertSink` reads `Event` as a typed record.
from netsentry.event cimport Event


cdef class AlertSink:
    cdef public object sensor, queue
