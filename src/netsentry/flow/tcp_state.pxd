# Compiled build: `Flow` is the typed record of flow.pxd, so the TCP state step
# reads and writes its fields as C struct members.
from netsentry.flow.flow cimport Flow
