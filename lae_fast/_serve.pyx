# cython: language_level=3
"""Scoring, masking and top-N selection for ONE user, without the GIL.

For serving: callers' threads give the concurrency, so each call runs on the
thread that made it and owns all its scratch (allocated per call, freed before
returning); nothing is shared or written except the caller's output arrays. The
one exception: a heavy history of a sparse B may split its columns over a few
OpenMP threads of its own (``_one_sparse``), each with its own scratch.
The dense path sums the history rows of B with the ranking kernel's
accumulator (``score.h``: same rows, same order, same arithmetic, so scores are
bit-identical to :func:`lae_fast.topk`); the compressed path sums float16 or
int8 rows decoded in registers (``dequant.h``), each times its row's scale, and
adds the diagonal kept apart in float32; the sparse path scatters the rows of a
pruned CSR B. Selection is the bounded heap of ``topk.h``, offered only the
scores that can make the top k (see ``_select``): the result is the same as
offering every score, with a few hundred heap operations instead of n.

Status codes returned by the kernels: 0 ok, 1 out of memory, 2 an item index
outside [0, n).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport malloc, calloc, free, qsort
from libc.math cimport INFINITY, fabs, fabsf
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint16_t, uint64_t

import numpy as np

from lae_fast._csrc cimport (lae_accumulate_d, lae_accumulate_f, lae_dequant_f16, lae_dequant_force,
                             lae_dequant_i8, lae_dequant_init, lae_dequant_level, lae_heap_finish,
                             lae_heap_push, lae_heap_push_d, lae_prefetch, lae_scatter_rest,
                             lae_scatter_row)

# Maximum of every run of LAE_CHUNK (32) scores, as float, NaN counted as -inf.
# Written as a fixed tree of compare-and-select over 8 lanes, which compilers turn
# into vector compare + blend (a running "m = v > m ? v : m" is not vectorised,
# because of NaN); the same instruction-set clones as score.h.
cdef extern from *:
    """
    #include <math.h>
    #define LAE_CHUNK 32
    #define LAE_CLEAN(x) ((x) == (x) ? (x) : -INFINITY)
    #define LAE_MAX(a, b) ((a) > (b) ? (a) : (b))
    #define LAE_DEFINE_CHUNK_MAX(NAME, T)                                                   \
    LAE_CLONES static void NAME(const T *restrict a, int64_t n, float *restrict out) {       \
        int64_t c, j, n_full = n / LAE_CHUNK;                                                \
        int l;                                                                               \
        for (c = 0; c < n_full; ++c) {                                                       \
            const T *p = a + c * LAE_CHUNK;                                                  \
            float m[8], b0, b1, b2, b3;                                                      \
            for (l = 0; l < 8; ++l) {                                                        \
                float x0 = (float)p[l], x1 = (float)p[8 + l];                                \
                float x2 = (float)p[16 + l], x3 = (float)p[24 + l];                          \
                x0 = LAE_CLEAN(x0); x1 = LAE_CLEAN(x1); x2 = LAE_CLEAN(x2); x3 = LAE_CLEAN(x3); \
                m[l] = LAE_MAX(LAE_MAX(x0, x1), LAE_MAX(x2, x3));                            \
            }                                                                                \
            b0 = LAE_MAX(m[0], m[4]); b1 = LAE_MAX(m[1], m[5]);                              \
            b2 = LAE_MAX(m[2], m[6]); b3 = LAE_MAX(m[3], m[7]);                              \
            out[c] = LAE_MAX(LAE_MAX(b0, b2), LAE_MAX(b1, b3));                              \
        }                                                                                    \
        if (n_full * LAE_CHUNK < n) {                                                        \
            float best = -INFINITY;                                                          \
            for (j = n_full * LAE_CHUNK; j < n; ++j) {                                       \
                float v = (float)a[j];                                                       \
                best = LAE_MAX(LAE_CLEAN(v), best);                                          \
            }                                                                                \
            out[n_full] = best;                                                              \
        }                                                                                    \
    }
    LAE_DEFINE_CHUNK_MAX(lae_chunk_max_f, float)
    LAE_DEFINE_CHUNK_MAX(lae_chunk_max_d, double)
    """
    int64_t LAE_CHUNK
    void lae_chunk_max_f(const float *a, int64_t n, float *out) nogil
    void lae_chunk_max_d(const double *a, int64_t n, float *out) nogil

cdef enum:
    ST_OK = 0
    ST_MEMORY = 1
    ST_INDEX = 2

# the status codes, for the Python side
OK = ST_OK
ERR_MEMORY = ST_MEMORY
ERR_INDEX = ST_INDEX


cdef int _cmp_int64(const void *a, const void *b) noexcept nogil:
    cdef int64_t x = (<const int64_t *>a)[0]
    cdef int64_t y = (<const int64_t *>b)[0]
    return (x > y) - (x < y)


cdef int64_t _canonical(const int64_t *src, int64_t L, int64_t n, int64_t *dst) noexcept nogil:
    """Copy the history into ``dst`` sorted and without duplicates (the CSR row
    ``check_interactions`` would make); its new length, or -1 for an index outside [0, n)."""
    cdef int64_t p, m = 0
    cdef bint ascending = True
    for p in range(L):
        if src[p] < 0 or src[p] >= n:
            return -1
        dst[p] = src[p]
        if p > 0 and src[p] <= src[p - 1]:
            ascending = False
    if ascending:
        return L
    qsort(dst, <size_t>L, sizeof(int64_t), _cmp_int64)
    for p in range(L):
        if m == 0 or dst[p] != dst[m - 1]:
            dst[m] = dst[p]
            m += 1
    return m


cdef int _select(floating *acc, int64_t n, const uint8_t *allowed, int32_t k,
                 float *s, int32_t *ids) noexcept nogil:
    """Best-k of acc[0:n] into (s, ids), best first, padded with (-inf, -1); a status.

    The heap ends holding the best k (score, then lower index) of the items
    ``_rank._score_block`` would offer (allowed, score not -inf). Offering only
    a superset of those best k gives the same heap, so a first pass takes the
    maximum of every run of ``LAE_CHUNK`` scores; the k-th largest of these maxima,
    T, is a lower bound of the k-th best score (k runs each hold a score >= T),
    and only scores >= T, from runs whose maximum reaches T, are offered.
    """
    cdef int64_t n_chunks = (n + LAE_CHUNK - 1) // LAE_CHUNK
    cdef int64_t j, c, c1
    cdef int32_t size = 0, msize = 0
    cdef float T = -INFINITY
    cdef float *cmax
    cdef float *ms
    cdef int32_t *mi
    if allowed != NULL:
        for j in range(n):
            if not allowed[j]:
                acc[j] = -INFINITY
    if n_chunks <= k:  # small catalogue or long list: offer everything
        for j in range(n):
            if acc[j] != -INFINITY:
                lae_heap_push(s, ids, &size, k, <float>acc[j], <int32_t>j)
        lae_heap_finish(s, ids, size, k, -INFINITY)
        return ST_OK
    cmax = <float *>malloc(n_chunks * sizeof(float))
    ms = <float *>malloc(k * sizeof(float))
    mi = <int32_t *>malloc(k * sizeof(int32_t))
    if cmax == NULL or ms == NULL or mi == NULL:
        free(cmax)
        free(ms)
        free(mi)
        return ST_MEMORY
    if floating is float:
        lae_chunk_max_f(acc, n, cmax)
    else:
        lae_chunk_max_d(acc, n, cmax)
    for c in range(n_chunks):
        if cmax[c] != -INFINITY:
            lae_heap_push(ms, mi, &msize, k, cmax[c], <int32_t>c)
    if msize == k:
        T = ms[0]
    for c in range(n_chunks):
        if cmax[c] >= T:
            c1 = (c + 1) * LAE_CHUNK
            if c1 > n:
                c1 = n
            for j in range(c * LAE_CHUNK, c1):
                if acc[j] != -INFINITY and <float>acc[j] >= T:
                    lae_heap_push(s, ids, &size, k, <float>acc[j], <int32_t>j)
    lae_heap_finish(s, ids, size, k, -INFINITY)
    free(cmax)
    free(ms)
    free(mi)
    return ST_OK


cdef enum:
    SPARSE_BLOCK = 16384  # accumulator columns per pass of the sparse path: 64 KiB of float, kept in L1/L2
    ROWS_AHEAD = 4  # history rows between a row's prefetch and its read
    SPARSE_ONE_PASS = 65536  # up to this many items one pass: the 256 KiB accumulator stays in L2
    SPLIT_WORK = 32768  # weights summed below which one thread beats waking others (~30 us of work)
    SPLIT_COLUMNS = 8192  # fewest columns a thread's share of a split history spans
    FEW_RATIO = 64  # a history summing at most n / FEW_RATIO weights sums only the columns it touches


# when a history is split over threads, for the Python side (tests)
SPLIT_MIN_WEIGHTS = SPLIT_WORK
SPLIT_MIN_COLUMNS = SPLIT_COLUMNS
# a history summing at most n_items // FEW_WEIGHTS_DIVISOR weights takes the light path, for the Python side (tests)
FEW_WEIGHTS_DIVISOR = FEW_RATIO


cdef int64_t _lower_bound(const int32_t *indices, int64_t q, int64_t q1, int64_t c) noexcept nogil:
    """First position in the sorted indices[q:q1] holding a column >= c (q1 if none)."""
    cdef int64_t mid
    while q < q1:
        mid = q + (q1 - q) // 2
        if indices[mid] < c:
            q = mid + 1
        else:
            q1 = mid
    return q


cdef inline int _release3(void *a, void *b, void *c, int status) noexcept nogil:
    """Free a kernel's three scratch buffers (any may be NULL); returns ``status``."""
    free(a)
    free(b)
    free(c)
    return status


cdef int _sparse_part(const int64_t *indptr, const int32_t *indices, const float *data, int64_t n,
                      const int64_t *rows, int64_t L, int64_t lo, int64_t hi, const uint8_t *allowed,
                      bint mask_history, int32_t k, float *s, int32_t *ids, int32_t *size) noexcept nogil:
    """Offer the scores of columns [lo, hi) to the heap (s, ids, size); a status.

    Up to SPARSE_ONE_PASS columns are one block; beyond, blocks of SPARSE_BLOCK, through which
    every history row advances its own cursor (its indices are sorted), so the accumulator of one
    block stays in cache instead of scattering over n floats, and the block's scores go straight to
    the heap (only runs of LAE_CHUNK whose maximum can still enter it are offered). Per score the adds
    come in the same order as one pass over whole rows: the same float sums.
    """
    cdef int64_t p, c0, w, j, c, e, n_chunks
    cdef float v
    cdef int32_t sz = size[0]  # a local: stores through ids could alias *size
    cdef int64_t block = hi - lo if hi - lo <= SPARSE_ONE_PASS else SPARSE_BLOCK
    cdef int64_t *cursor = <int64_t *>malloc((L + 1) * sizeof(int64_t))
    cdef float *acc = <float *>malloc((block + 1) * sizeof(float))
    cdef float *cmax = <float *>malloc((block // LAE_CHUNK + 1) * sizeof(float))
    if cursor == NULL or acc == NULL or cmax == NULL:
        return _release3(cursor, acc, cmax, ST_MEMORY)
    for p in range(L):
        cursor[p] = indptr[rows[p]] if lo == 0 else _lower_bound(indices, indptr[rows[p]], indptr[rows[p] + 1], lo)
    c0 = lo
    while c0 < hi:
        w = hi - c0 if hi - c0 < block else block
        for j in range(w):
            acc[j] = 0
        for p in range(L):
            if p + ROWS_AHEAD < L:  # a row's next entries are a cache miss away: ask for them early
                lae_prefetch(&indices[cursor[p + ROWS_AHEAD]])
                lae_prefetch(&data[cursor[p + ROWS_AHEAD]])
            if c0 + w == n:  # the last block takes the rest of every row: no bound to test
                lae_scatter_rest(acc, c0, indices, data, cursor[p], indptr[rows[p] + 1])
            else:
                cursor[p] = lae_scatter_row(acc, c0, indices, data, cursor[p], indptr[rows[p] + 1], c0 + w)
        if mask_history:
            for p in range(L):
                if rows[p] >= c0 and rows[p] < c0 + w:
                    acc[rows[p] - c0] = -INFINITY
        if allowed != NULL:
            for j in range(w):
                if not allowed[c0 + j]:
                    acc[j] = -INFINITY
        lae_chunk_max_f(acc, w, cmax)
        n_chunks = (w + LAE_CHUNK - 1) // LAE_CHUNK
        for c in range(n_chunks):
            # Items are offered by ascending index, so once the heap is full a score that only
            # ties its root (the worst kept) loses the tie: a run must beat the root to enter.
            # (Most scores of a short history are exactly 0: runs of them are skipped whole.)
            if cmax[c] == -INFINITY or (sz == k and not cmax[c] > s[0]):
                continue
            e = (c + 1) * LAE_CHUNK
            if e > w:
                e = w
            for j in range(c * LAE_CHUNK, e):
                v = acc[j]
                if v > -INFINITY and (sz < k or v > s[0]):  # NaN never offered, as in the chunk maxima
                    lae_heap_push(s, ids, &sz, k, v, <int32_t>(c0 + j))
        c0 = c0 + w
    size[0] = sz
    return _release3(cursor, acc, cmax, ST_OK)


cdef int _sparse_few(const int64_t *indptr, const int32_t *indices, const float *data, int64_t n,
                     const int64_t *rows, int64_t L, int64_t work, const uint8_t *allowed, bint mask_history,
                     int32_t k, float *s, int32_t *ids, int32_t *size) noexcept nogil:
    """Offer the scores of a light history (few weights against n) to the heap (s, ids, size); a status.

    Only the columns the history's rows touch are summed (a bitmap tells the first touch) and offered,
    so a call costs its weights, not n. A first touch adds to +0.0 and later ones add row by row, as
    in the full pass: the same float sums. Every other column scores exactly 0, and among equal scores
    the lower index wins, so of those only the k lowest allowed indices can make the list.
    """
    cdef float *acc = <float *>malloc(n * sizeof(float))
    cdef uint64_t *seen = <uint64_t *>calloc(n // 64 + 1, sizeof(uint64_t))
    cdef int32_t *touched = <int32_t *>malloc((work + 1) * sizeof(int32_t))
    cdef int64_t p, q, j, t, n_touched = 0
    cdef int32_t sz = size[0], zeros = 0
    cdef uint64_t bit
    cdef float v
    if acc == NULL or seen == NULL or touched == NULL:
        return _release3(acc, seen, touched, ST_MEMORY)
    for p in range(L):
        if p + ROWS_AHEAD < L:
            lae_prefetch(&indices[indptr[rows[p + ROWS_AHEAD]]])
            lae_prefetch(&data[indptr[rows[p + ROWS_AHEAD]]])
        for q in range(indptr[rows[p]], indptr[rows[p] + 1]):
            j = indices[q]
            bit = (<uint64_t>1) << (j & 63)
            if seen[j >> 6] & bit:
                acc[j] += data[q]
            else:
                seen[j >> 6] |= bit
                acc[j] = <float>0 + data[q]  # not data[q]: -0.0 becomes +0.0, as when added to a zeroed score
                touched[n_touched] = <int32_t>j
                n_touched += 1
    if mask_history:
        for p in range(L):  # out of both the touched scores and the zeros
            acc[rows[p]] = -INFINITY
            seen[rows[p] >> 6] |= (<uint64_t>1) << (rows[p] & 63)
    for t in range(n_touched):
        j = touched[t]
        v = acc[j]
        if v > -INFINITY and (allowed == NULL or allowed[j]):  # offered in any order: the heap breaks ties
            lae_heap_push(s, ids, &sz, k, v, <int32_t>j)
    j = 0
    while zeros < k and j < n and (sz < k or not s[0] > 0):
        if not (seen[j >> 6] >> (j & 63)) & 1 and (allowed == NULL or allowed[j]):
            lae_heap_push(s, ids, &sz, k, 0, <int32_t>j)
            zeros += 1
        j += 1
    size[0] = sz
    return _release3(acc, seen, touched, ST_OK)


cdef int _one_sparse(const int64_t *indptr, const int32_t *indices, const float *data, int64_t n,
                     const int64_t *hist, int64_t L, const uint8_t *allowed, bint mask_history,
                     int32_t k, float *s, int32_t *ids, int num_threads) noexcept nogil:
    """Top-k of the sum of the history's rows of a CSR B, for one user.

    A history that sums at most n / FEW_RATIO weights sums only the columns it touches (``_sparse_few``;
    side experiments against the full pass, alternated call by call: on the amazon-book shape, 91,599
    items, 3x faster for one history item and 1.4x for six; on 1,000,000 items of 256 weights a row,
    10x for two items and 1.5x for forty; the two broke even between n / 60 and n / 30 weights from
    run to run, so the light path stops short of both).
    A history that sums at least SPLIT_WORK weights is split by columns over up to ``num_threads``
    threads, each offering its contiguous share of the columns to its own heap; the heaps are then
    merged. Short rows repay it too (each thread reads only its share of every row; measured by
    bench/bench_serving_sparse.py on uniform histories). Every score is still summed by one thread in
    the same order, and the heap orders by (score, lower index) whoever offers first: the answer is
    the same bit for bit on any number of threads.
    """
    cdef int64_t p, work = 0, enough
    cdef int32_t size = 0, t, e
    cdef int T = 1
    cdef int64_t *rows = <int64_t *>malloc((L + 1) * sizeof(int64_t))
    cdef float *part_s = NULL
    cdef int32_t *part_ids = NULL
    cdef int32_t *part_size = NULL
    cdef int *part_status = NULL
    cdef int status = ST_OK
    if rows == NULL:
        return ST_MEMORY
    L = _canonical(hist, L, n, rows)
    if L < 0:
        free(rows)
        return ST_INDEX
    enough = n // FEW_RATIO + 1  # work known to be past both thresholds: stop counting (each row a cache miss)
    if num_threads > 1 and enough < SPLIT_WORK:
        enough = SPLIT_WORK
    for p in range(L):
        work += indptr[rows[p] + 1] - indptr[rows[p]]
        if work >= enough:
            break
    if num_threads > 1 and work >= SPLIT_WORK:
        T = num_threads if num_threads < n // SPLIT_COLUMNS else <int>(n // SPLIT_COLUMNS)
    if work * FEW_RATIO <= n:
        status = _sparse_few(indptr, indices, data, n, rows, L, work, allowed, mask_history, k, s, ids, &size)
    elif T <= 1:
        status = _sparse_part(indptr, indices, data, n, rows, L, 0, n, allowed, mask_history, k, s, ids, &size)
    else:
        part_s = <float *>malloc(T * k * sizeof(float))
        part_ids = <int32_t *>malloc(T * k * sizeof(int32_t))
        part_size = <int32_t *>calloc(T, sizeof(int32_t))
        part_status = <int *>calloc(T, sizeof(int))
        if part_s == NULL or part_ids == NULL or part_size == NULL or part_status == NULL:
            status = ST_MEMORY
        else:
            for t in prange(T, num_threads=T, schedule="static", chunksize=1):
                part_status[t] = _sparse_part(indptr, indices, data, n, rows, L, n * t // T, n * (t + 1) // T,
                                              allowed, mask_history, k, part_s + t * k, part_ids + t * k,
                                              part_size + t)
            for t in range(T):
                if part_status[t] != ST_OK:
                    status = part_status[t]
                for e in range(part_size[t]):
                    lae_heap_push(s, ids, &size, k, part_s[t * k + e], part_ids[t * k + e])
        free(part_s)
        free(part_ids)
        free(part_size)
        free(part_status)
    if status == ST_OK:
        lae_heap_finish(s, ids, size, k, -INFINITY)
    free(rows)
    return status


ctypedef fused row_t:  # what a row of a dense B holds
    float
    double
    int8_t    # int8 codes (compressed)
    uint16_t  # float16 codes, as their bit patterns (compressed)


cdef int _one_dense(const row_t *B, const float *row_scale, const float *diag, int64_t n,
                    const int64_t *hist, int64_t L, const uint8_t *allowed, bint mask_history,
                    int64_t block, int32_t k, float *s, int32_t *ids) noexcept nogil:
    """Top-k of the sum of the history's rows of B, for one user.

    float / double rows are summed as stored, with the ranking kernel's accumulator (double
    for double). Compressed rows (int8 / float16 codes) are decoded times ``row_scale`` of
    their row, and ``diag``, the diagonal stored apart, is added back (serving.compress).
    """
    cdef int64_t p, c0, w
    cdef int64_t *rows = <int64_t *>malloc((L + 1) * sizeof(int64_t))
    cdef double *acc_d = NULL  # a float64 B only
    cdef double *wts_d = NULL
    cdef float *acc_f = NULL
    cdef float *wts_f = NULL
    cdef int status = ST_OK
    if row_t is double:
        acc_d = <double *>malloc((n + 1) * sizeof(double))
        wts_d = <double *>malloc((L + 1) * sizeof(double))
    else:
        acc_f = <float *>malloc((n + 1) * sizeof(float))
        wts_f = <float *>malloc((L + 1) * sizeof(float))
    if rows == NULL or (acc_d == NULL and acc_f == NULL) or (wts_d == NULL and wts_f == NULL):
        status = ST_MEMORY
    else:
        L = _canonical(hist, L, n, rows)
        if L < 0:
            status = ST_INDEX
    if status == ST_OK:
        for p in range(L):
            if row_t is double:
                wts_d[p] = 1
            elif row_t is float:
                wts_f[p] = 1
            else:
                wts_f[p] = row_scale[rows[p]]
        c0 = 0
        while c0 < n:
            w = block
            if c0 + w > n:
                w = n - c0
            if row_t is double:
                lae_accumulate_d(acc_d + c0, w, B, n, c0, rows, wts_d, L)
            elif row_t is float:
                lae_accumulate_f(acc_f + c0, w, B, n, c0, rows, wts_f, L)
            elif row_t is int8_t:
                lae_dequant_i8(acc_f + c0, w, B, n, c0, rows, wts_f, L)
            else:
                lae_dequant_f16(acc_f + c0, w, B, n, c0, rows, wts_f, L)
            c0 += w
        if row_t is double:
            status = _finish(acc_d, n, rows, L, allowed, mask_history, k, s, ids)
        else:
            if row_t is int8_t or row_t is uint16_t:
                for p in range(L):
                    acc_f[rows[p]] += diag[rows[p]]
            status = _finish(acc_f, n, rows, L, allowed, mask_history, k, s, ids)
    free(rows)
    free(acc_d)
    free(wts_d)
    free(acc_f)
    free(wts_f)
    return status


cdef int _finish(floating *acc, int64_t n, const int64_t *rows, int64_t L, const uint8_t *allowed,
                 bint mask_history, int32_t k, float *s, int32_t *ids) noexcept nogil:
    """Mask the history (if asked) and select the best k."""
    cdef int64_t p
    if mask_history:
        for p in range(L):
            acc[rows[p]] = -INFINITY
    return _select(acc, n, allowed, k, s, ids)


cdef inline const uint8_t *_mask_ptr(const uint8_t[::1] allowed):
    return &allowed[0] if allowed is not None and allowed.shape[0] > 0 else NULL


cdef inline const int64_t *_hist_ptr(const int64_t[::1] hist):
    return &hist[0] if hist.shape[0] > 0 else NULL


def one_dense(const row_t[:, ::1] B, const float[::1] row_scale, const float[::1] diag,
              const int64_t[::1] hist, const uint8_t[::1] allowed, bint mask_history, int32_t[::1] out_ids,
              float[::1] out_scores, int64_t block):
    """Top-k (k = len(out_ids) >= 1) of ``sum_{i in hist} B[i]`` for one user; returns a status.

    B holds float32/float64 weights (``row_scale``, ``diag`` None) or int8 / float16 codes
    (float16 viewed as uint16) with one scale per row and the diagonal apart. ``allowed``
    (uint8, n) or None: items with 0 are never returned. Runs on the calling thread with
    the GIL released.
    """
    cdef int64_t n = B.shape[1]
    cdef int32_t k = <int32_t>out_ids.shape[0]
    cdef const uint8_t *mask = _mask_ptr(allowed)
    cdef const int64_t *h = _hist_ptr(hist)
    cdef int64_t L = hist.shape[0]
    cdef const float *scale = &row_scale[0] if row_scale is not None else NULL
    cdef const float *dg = &diag[0] if diag is not None else NULL
    cdef int status
    if block < 1 or block > n:
        block = n
    with nogil:
        status = _one_dense(&B[0, 0], scale, dg, n, h, L, mask, mask_history, block, k, &out_scores[0],
                            &out_ids[0])
    return status


def one_sparse(const int64_t[::1] indptr, const int32_t[::1] indices, const float[::1] data,
               const int64_t[::1] hist, const uint8_t[::1] allowed, bint mask_history,
               int32_t[::1] out_ids, float[::1] out_scores, int num_threads=1):
    """As :func:`one_dense` for a CSR B (rows = history items), a heavy history split by
    columns over up to ``num_threads`` threads (the same answer); returns a status."""
    cdef int64_t n = indptr.shape[0] - 1
    cdef int32_t k = <int32_t>out_ids.shape[0]
    cdef const uint8_t *mask = _mask_ptr(allowed)
    cdef const int64_t *h = _hist_ptr(hist)
    cdef int64_t L = hist.shape[0]
    cdef const int32_t *ind = &indices[0] if indices.shape[0] > 0 else NULL
    cdef const float *dat = &data[0] if data.shape[0] > 0 else NULL
    cdef int status
    with nogil:
        status = _one_sparse(&indptr[0], ind, dat, n, h, L, mask, mask_history, k,
                             &out_scores[0], &out_ids[0], num_threads)
    return status


def batch_dense(const row_t[:, ::1] Q, const float[::1] row_scale, const float[::1] diag,
                const int64_t[::1] hist_ptr, const int64_t[::1] hist_idx, const uint8_t[::1] allowed,
                bint mask_history, int32_t[:, ::1] out_ids, float[:, ::1] out_scores,
                int8_t[::1] status, int64_t block, int num_threads):
    """:func:`one_dense` for every user of a CSR history, users shared out dynamically between
    ``num_threads`` threads; per-user status codes. (A float B is ranked in batches by
    lae_fast.topk instead, which reads each row block once for many users.)"""
    cdef int64_t n = Q.shape[1]
    cdef int64_t n_users = hist_ptr.shape[0] - 1
    cdef int32_t k = <int32_t>out_ids.shape[1]
    cdef const uint8_t *mask = _mask_ptr(allowed)
    cdef const int64_t *h = _hist_ptr(hist_idx)
    cdef const float *scale = &row_scale[0] if row_scale is not None else NULL
    cdef const float *dg = &diag[0] if diag is not None else NULL
    cdef int64_t u
    if n_users <= 0 or k <= 0:
        return
    if block < 1 or block > n:
        block = n
    if num_threads > n_users:
        num_threads = <int>n_users
    if num_threads < 1:
        num_threads = 1
    for u in prange(n_users, nogil=True, schedule="dynamic", chunksize=4, num_threads=num_threads):
        status[u] = <int8_t>_one_dense(&Q[0, 0], scale, dg, n,
                                       h + hist_ptr[u] if h != NULL else NULL,
                                       hist_ptr[u + 1] - hist_ptr[u], mask, mask_history, block, k,
                                       &out_scores[u, 0], &out_ids[u, 0])


# -- SIMD level of the compressed kernels (dequant.h) ---------------------------------------------
SIMD_LEVELS = ("portable", "avx2+f16c", "avx512f")
lae_dequant_init()


def simd_level():
    """Name of the decode loops in use (the widest the CPU runs, chosen when this module loaded)."""
    return SIMD_LEVELS[lae_dequant_level()]


def force_simd_level(level):
    """Tests only: use ``level`` (index into SIMD_LEVELS, -1 for the best); returns the level used,
    which is lower when the CPU lacks it. Never call it while another thread serves."""
    return SIMD_LEVELS[lae_dequant_force(<int>level)]


def batch_sparse(const int64_t[::1] indptr, const int32_t[::1] indices, const float[::1] data,
                 const int64_t[::1] hist_ptr, const int64_t[::1] hist_idx, const uint8_t[::1] allowed,
                 bint mask_history, int32_t[:, ::1] out_ids, float[:, ::1] out_scores,
                 int8_t[::1] status, int num_threads):
    """:func:`one_sparse` for every user of a CSR history (hist_ptr, hist_idx), users
    shared out dynamically between ``num_threads`` threads; per-user status codes."""
    cdef int64_t n = indptr.shape[0] - 1
    cdef int64_t n_users = hist_ptr.shape[0] - 1
    cdef int32_t k = <int32_t>out_ids.shape[1]
    cdef const uint8_t *mask = _mask_ptr(allowed)
    cdef const int64_t *h = _hist_ptr(hist_idx)
    cdef const int32_t *ind = &indices[0] if indices.shape[0] > 0 else NULL
    cdef const float *dat = &data[0] if data.shape[0] > 0 else NULL
    cdef int64_t u
    if n_users <= 0 or k <= 0:
        return
    if num_threads > n_users:
        num_threads = <int>n_users
    if num_threads < 1:
        num_threads = 1
    for u in prange(n_users, nogil=True, schedule="dynamic", chunksize=8, num_threads=num_threads):
        status[u] = <int8_t>_one_sparse(&indptr[0], ind, dat, n, h + hist_ptr[u] if h != NULL else NULL,
                                        hist_ptr[u + 1] - hist_ptr[u], mask, mask_history, k,
                                        &out_scores[u, 0], &out_ids[u, 0], 1)


# -- pruning: the m largest keys of every column of B ---------------------------------------------
# Column j keeps the m best (key, row) pairs, key = |B[i, j]| or B[i, j], a larger key
# first and on equal keys the lower row. Pass 1 streams the rows of B (each thread
# owns a block of columns) through one bounded min-heap per column whose root is
# the worst kept pair; rows arrive in ascending order, so a new pair enters only
# with a strictly larger key than the root. Pass 2 writes the CSR rows: (i, j) is
# kept iff it ranks at or above column j's root.

cdef enum:
    ST_NONFINITE = 3
    PRUNE_COLUMNS = 256

NONFINITE = ST_NONFINITE


cdef inline floating _key(floating v, bint by_abs) noexcept nogil:
    # fabs, not a sign test: signs are random, a branch on them mispredicts half the time
    if not by_abs:
        return v
    if floating is float:
        return fabsf(v)
    else:
        return fabs(v)


cdef inline void _heap_push(floating *key, int32_t *row, int32_t size, int64_t m, floating v,
                            int32_t i) noexcept nogil:
    """Offer (v, i) to a column's heap of ``size`` entries (at most m), through topk.h."""
    if floating is float:
        lae_heap_push(key, row, &size, <int32_t>m, v, i)
    else:
        lae_heap_push_d(key, row, &size, <int32_t>m, v, i)


cdef int _prune_block(const floating *B, int64_t n_rows, int64_t n_cols, int64_t m, bint by_abs,
                      int64_t c0, int64_t c1, floating *keys, int32_t *rows, floating *root_key,
                      int32_t *root_row) noexcept nogil:
    cdef int64_t i, j, fill = m if m < n_rows else n_rows
    cdef const floating *r
    cdef floating v
    cdef int bad = 0
    for i in range(fill):
        r = B + i * n_cols
        for j in range(c0, c1):
            v = _key(r[j], by_abs)
            bad |= not (v - v == 0)  # NaN or inf
            _heap_push(keys + j * m, rows + j * m, <int32_t>i, m, v, <int32_t>i)
    for j in range(c0, c1):
        root_key[j] = keys[j * m]
    for i in range(fill, n_rows):
        r = B + i * n_cols
        for j in range(c0, c1):
            v = _key(r[j], by_abs)
            bad |= not (v - v == 0)
            if v > root_key[j]:  # rows come in ascending order: an equal key never ranks better
                _heap_push(keys + j * m, rows + j * m, <int32_t>m, m, v, <int32_t>i)
                root_key[j] = keys[j * m]
    for j in range(c0, c1):
        root_row[j] = rows[j * m]
    return ST_NONFINITE if bad else ST_OK


def prune_columns(const floating[:, ::1] B, int64_t m, bint by_abs, floating[::1] out_data,
                  int32_t[::1] out_indices, int64_t[::1] out_indptr, int num_threads):
    """Write B pruned to its m best entries per column (1 <= m <= n_rows) as CSR; a status.

    ``out_data`` / ``out_indices`` hold exactly ``m * n_cols`` entries, ``out_indptr``
    ``n_rows + 1``; 3 means B holds NaN or inf (nothing useful was written).
    """
    cdef int64_t n_rows = B.shape[0], n_cols = B.shape[1]
    cdef int64_t n_blocks = (n_cols + PRUNE_COLUMNS - 1) // PRUNE_COLUMNS
    cdef int64_t b, c0, c1, i, j, pos
    cdef floating v, k
    cdef const floating *r
    cdef floating *keys = <floating *>malloc(n_cols * m * sizeof(floating) + 1)
    cdef int32_t *rows = <int32_t *>malloc(n_cols * m * sizeof(int32_t) + 1)
    cdef floating *root_key = <floating *>malloc(n_cols * sizeof(floating) + 1)
    cdef int32_t *root_row = <int32_t *>malloc(n_cols * sizeof(int32_t) + 1)
    cdef int64_t *counts = <int64_t *>malloc((n_rows + 1) * sizeof(int64_t))
    cdef int status = ST_OK
    cdef int8_t[::1] block_status
    if keys == NULL or rows == NULL or root_key == NULL or root_row == NULL or counts == NULL:
        status = ST_MEMORY
    if status == ST_OK and n_rows > 0 and n_cols > 0 and m > 0:
        block_status = np.zeros(n_blocks, dtype=np.int8)
        if num_threads > n_blocks:
            num_threads = <int>n_blocks
        if num_threads < 1:
            num_threads = 1
        with nogil:
            for b in prange(n_blocks, schedule="dynamic", chunksize=1, num_threads=num_threads):
                c0 = b * PRUNE_COLUMNS
                c1 = c0 + PRUNE_COLUMNS
                if c1 > n_cols:
                    c1 = n_cols
                block_status[b] = <int8_t>_prune_block(&B[0, 0], n_rows, n_cols, m, by_abs, c0, c1, keys,
                                                       rows, root_key, root_row)
            for b in range(n_blocks):
                if block_status[b] != ST_OK:
                    status = block_status[b]
            if status == ST_OK:
                # kept iff (key, row) ranks at or above the column's worst kept pair
                for i in prange(n_rows, schedule="static", num_threads=num_threads):
                    r = &B[i, 0]
                    counts[i] = 0
                    for j in range(n_cols):
                        v = _key(r[j], by_abs)
                        k = root_key[j]
                        if v > k or (v == k and i <= root_row[j]):
                            counts[i] += 1
                pos = 0
                for i in range(n_rows):
                    out_indptr[i] = pos
                    pos = pos + counts[i]
                out_indptr[n_rows] = pos
                if pos != out_indices.shape[0]:
                    status = ST_INDEX  # cannot happen with finite keys
                else:
                    for i in prange(n_rows, schedule="static", num_threads=num_threads):
                        r = &B[i, 0]
                        pos = out_indptr[i]
                        for j in range(n_cols):
                            v = _key(r[j], by_abs)
                            k = root_key[j]
                            if v > k or (v == k and i <= root_row[j]):
                                out_indices[pos] = <int32_t>j
                                out_data[pos] = r[j]
                                pos = pos + 1
    free(keys)
    free(rows)
    free(root_key)
    free(root_row)
    free(counts)
    return status


# -- capping the rows of a sparse B: the r best entries of every row --------------------------------
# Row i of B is what item i adds to a history's scores, so a cap on the rows bounds the work a
# history item costs. A row longer than r keeps its r best (key, column) pairs, key as in pruning
# (a larger key first, on equal keys the lower column): pass 1 finds the row's worst kept pair with
# a bounded heap, pass 2 copies the pairs at or above it, so the row stays sorted by column.

def prune_rows_csr(const int64_t[::1] indptr, const int32_t[::1] indices, const float[::1] data, int64_t r,
                   bint by_abs, const int64_t[::1] out_indptr, int32_t[::1] out_indices, float[::1] out_data,
                   int num_threads):
    """Write the r best entries of every row of a CSR B (sorted indices, finite values; r >= 1)
    into the CSR ``out_*`` (``out_indptr`` already holds the prefix sums of min(row length, r));
    a status (1: no memory for a heap)."""
    cdef int64_t n = indptr.shape[0] - 1
    cdef int64_t i, q, o
    cdef int32_t size, root_col
    cdef float v, root_key
    cdef float *keys
    cdef int32_t *cols
    cdef int status = ST_OK
    cdef int8_t[::1] row_status = np.zeros(max(n, 1), dtype=np.int8)
    if n == 0:
        return ST_OK
    with nogil:
        for i in prange(n, schedule="dynamic", chunksize=256, num_threads=num_threads):
            o = out_indptr[i]
            if indptr[i + 1] - indptr[i] <= r:
                for q in range(indptr[i], indptr[i + 1]):
                    out_indices[o] = indices[q]
                    out_data[o] = data[q]
                    o = o + 1
                continue
            keys = <float *>malloc(r * sizeof(float))
            cols = <int32_t *>malloc(r * sizeof(int32_t))
            if keys == NULL or cols == NULL:
                row_status[i] = ST_MEMORY
            else:
                size = 0
                for q in range(indptr[i], indptr[i + 1]):
                    lae_heap_push(keys, cols, &size, <int32_t>r, _key(data[q], by_abs), indices[q])
                root_key = keys[0]
                root_col = cols[0]
                for q in range(indptr[i], indptr[i + 1]):
                    v = _key(data[q], by_abs)
                    if v > root_key or (v == root_key and indices[q] <= root_col):
                        out_indices[o] = indices[q]
                        out_data[o] = data[q]
                        o = o + 1
            free(keys)
            free(cols)
    for i in range(n):
        if row_status[i] != ST_OK:
            status = row_status[i]
    return status
