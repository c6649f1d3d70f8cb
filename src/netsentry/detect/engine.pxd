# Compiled build: `Packet` and `Flow` are the typed records of decode/packet.pxd and
# flow/flow.pxd, so SignatureEngine's hot path reads their fields as struct members
# instead of an attribute lookup per field (bench/README.md, "realfast").
from netsentry.decode.packet cimport Packet
from netsentry.flow.flow cimport Flow
# `Group` a typed record (grouping.pxd): the per-packet reads of a group's facts are
# struct members.
from netsentry.detect.grouping cimport Group
