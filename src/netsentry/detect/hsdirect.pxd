# Compiled build of detect/hsdirect.py: the part of libhs (Hyperscan, hs/hs.h) the
# prefilter calls, and the layout of the database record. Built only where the
# header is found (setup.py LIBRARY_MODULES); see hsdirect.py for why.

cdef extern from "hs/hs.h" nogil:
    ctypedef int hs_error_t
    ctypedef struct hs_database_t:
        pass
    ctypedef struct hs_scratch_t:
        pass
    ctypedef struct hs_platform_info_t:
        pass
    ctypedef struct hs_compile_error_t:
        char *message
        int expression
    ctypedef int (*match_event_handler)(unsigned int id, unsigned long long frm, unsigned long long to,
                                        unsigned int flags, void *context) noexcept nogil

    int HS_SUCCESS
    int HS_MODE_BLOCK
    unsigned int HS_FLAG_CASELESS
    unsigned int HS_FLAG_SINGLEMATCH

    const char *hs_version()
    hs_error_t hs_compile_lit_multi(const char * const *expressions, const unsigned int *flags,
                                    const unsigned int *ids, const size_t *lens, unsigned int elements,
                                    unsigned int mode, const hs_platform_info_t *platform,
                                    hs_database_t **db, hs_compile_error_t **error)
    hs_error_t hs_free_compile_error(hs_compile_error_t *error)
    hs_error_t hs_free_database(hs_database_t *db)
    hs_error_t hs_serialize_database(const hs_database_t *db, char **bytes, size_t *length)
    hs_error_t hs_deserialize_database(const char *bytes, size_t length, hs_database_t **db)
    hs_error_t hs_serialized_database_info(const char *bytes, size_t length, char **info)
    hs_error_t hs_alloc_scratch(const hs_database_t *db, hs_scratch_t **scratch)
    hs_error_t hs_scan(const hs_database_t *db, const char *data, unsigned int length, unsigned int flags,
                       hs_scratch_t *scratch, match_event_handler onEvent, void *context)


# what one scan fills: the ids reported, in a buffer of one slot per pattern
# (HS_FLAG_SINGLEMATCH: each pattern is reported at most once per scan)
cdef struct Hits:
    unsigned int *ids
    unsigned int n
    unsigned int cap


cdef hs_scratch_t *_scratch

cdef int _grow_scratch(hs_database_t *db) except -1

cdef int _on_match(unsigned int pid, unsigned long long frm, unsigned long long to, unsigned int flags,
                   void *ctx) noexcept nogil


cdef class HyperscanPrefilter:
    cdef hs_database_t *_db
    cdef unsigned int *_ids
    cdef readonly Py_ssize_t size

    cdef int _adopt(self, hs_database_t *db, unsigned int *ids, Py_ssize_t n) except -1
