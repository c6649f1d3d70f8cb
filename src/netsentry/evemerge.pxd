# Compiled build of evemerge.py: the C string functions its merge loop uses.
from libc.string cimport memchr, memcmp, memcpy
from cpython.mem cimport PyMem_Malloc, PyMem_Free

# One part of the merge: its mapped bytes, the line in hand [pos, eol) and the end
# of its last whole line.
cdef struct Part:
    const unsigned char* p
    Py_ssize_t pos
    Py_ssize_t eol
    Py_ssize_t end
