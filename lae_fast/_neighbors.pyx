# cython: language_level=3
"""Kernels of the neighbourhood (sparse-support) linear autoencoders, without n×n memory.

* ``cooc_topk``: every item's exact co-occurrence row, built from X in a per-thread
  dense accumulator with a touched list, reduced to its top-k items by cosine
  G_ij / sqrt(G_ii G_jj); ``gram_topk`` is the same rule on the rows of a dense G;
  ``rows_topk`` keeps the k largest entries of each row of a dense block.
* ``solve_block``: one small SPD solve per column j on its support S_j: G_SS is
  gathered from a dense G or looked up in the candidate lists, factored with
  ?potrf and solved with ?potrs (EASE family: RHS e_j; L3AE: RHS e_j and the
  text column s restricted to S_j). To refine, the first system is only ranked
  (|b_ij| from a few Jacobi-PCG steps with ?symv, or exactly) and a second, exact
  solve on the m largest |b_ij| √G_ii reuses a principal submatrix of it.
* ``rank_sparse``: batch top-N of x_u·B for a CSR B, with the zero scores of the
  items a history does not reach competing exactly as in the dense ranking.

Each kernel releases the GIL, shares items / columns / users out dynamically,
allocates its per-thread scratch inside the parallel block and reports failure
through status codes (``ERR_*`` below) that ``lae_fast.neighbors`` raises.
Buffers are C-ordered; LAPACK reads them column-major, i.e. transposed, so
LAPACK's *lower* triangle ('L') is our row-major *upper* triangle (b >= a).
"""
from cython cimport floating
from cython.parallel cimport prange, parallel
from libc.stdlib cimport malloc, calloc, free, qsort
from libc.string cimport memcpy, memset
from libc.math cimport INFINITY, pow, sqrt
from libc.float cimport DBL_EPSILON, FLT_EPSILON

cdef extern from "<float.h>":
    const float FLT_TRUE_MIN  # C11: the least positive (subnormal) float
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint64_t
from scipy.linalg.cython_blas cimport ssymv, dsymv
from scipy.linalg.cython_lapack cimport spotrf, spotrs, dpotrf, dpotrs

from lae_fast._csrc cimport lae_better, lae_heap_finish, lae_heap_push, lae_prefetch, lae_sort_best

cdef enum:
    ST_OK = 0
    ST_MEMORY = 1
    ST_NOT_PD = 2
    # A failed Cholesky is retried with the ridge raised by
    # delta_t = 10**(t - 1 - RETRY_FIRST_EXP) * max(1, max_a A_aa), t = 1, 2, ..., MAX_RETRIES.
    # Co-occurrence counts have |G_ab| <= min(G_aa, G_bb), so once delta_t >= |S|·max A_aa the
    # matrix is strictly diagonally dominant and cannot fail in exact arithmetic.
    RETRY_FIRST_EXP = 4
    MAX_RETRIES = 16
    # solve_block modes
    M_EASE = 0
    M_L3AE = 1

# status codes and the retry rule, for the Python side
OK = ST_OK
ERR_MEMORY = ST_MEMORY
ERR_NOT_PD = ST_NOT_PD
RETRY_FIRST_EXPONENT = RETRY_FIRST_EXP
RETRY_LIMIT = MAX_RETRIES

MODE_EASE = M_EASE
MODE_L3AE = M_L3AE


# -- candidate selection ---------------------------------------------------------------------------

cdef inline bint _better_at(const float *s, const int32_t *ids, int64_t a, int64_t b) noexcept nogil:
    return lae_better(s[a], ids[a], s[b], ids[b])


cdef inline void _swap(float *s, int32_t *ids, int64_t a, int64_t b) noexcept nogil:
    cdef float ts = s[a]
    cdef int32_t ti = ids[a]
    s[a] = s[b]
    ids[a] = ids[b]
    s[b] = ts
    ids[b] = ti


cdef void _partial_select(float *s, int32_t *ids, int64_t n, int64_t k) noexcept nogil:
    """Reorder (s, ids)[0:n] so that its k best pairs (topk.h order) come first, in any order.

    Quickselect (median-of-three pivot, branch-free Lomuto partition: the swap is
    unconditional, so no branch mispredicts on random keys), O(n) expected; ids are
    distinct, so the order is total and ties in score cannot stall it.
    """
    cdef int64_t lo = 0, hi = n - 1, mid, i, store
    cdef bint better
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if _better_at(s, ids, mid, lo):
            _swap(s, ids, mid, lo)
        if _better_at(s, ids, hi, lo):
            _swap(s, ids, hi, lo)
        if _better_at(s, ids, hi, mid):
            _swap(s, ids, hi, mid)
        _swap(s, ids, mid, hi)  # the median of the three is the pivot, kept at hi
        store = lo
        for i in range(lo, hi):  # branch-free Lomuto: swap always, advance when i beat the pivot
            better = _better_at(s, ids, i, hi)
            _swap(s, ids, i, store)
            store += better
        _swap(s, ids, store, hi)  # [lo, store) beat the pivot, now at store; (store, hi] do not
        if store == k or store == k - 1:
            return
        if store < k:
            lo = store + 1
        else:
            hi = store - 1


cdef float _kth_largest(float *a, int64_t n, int64_t q) noexcept nogil:
    """The q-th largest (1-based) of a[0:n] (reordered): quickselect on the values alone."""
    cdef int64_t lo = 0, hi = n - 1, i, store, target = q - 1
    cdef float pivot, t
    while lo < hi:
        i = lo + (hi - lo) // 2
        pivot = a[i]
        a[i] = a[hi]
        a[hi] = pivot
        store = lo
        for i in range(lo, hi):  # branch-free Lomuto, as in _partial_select
            t = a[i]
            a[i] = a[store]
            a[store] = t
            store += t > pivot
        a[hi] = a[store]
        a[store] = pivot
        if store == target:
            break
        if store < target:
            lo = store + 1
        else:
            hi = store - 1
    return a[target]


cdef float _sample_threshold(const float *s, int64_t n, int32_t k) noexcept nogil:
    """A key that about 1.5k of s[0:n] should reach, read off every 8th entry, or -inf where
    the row is too short for a sample to pay off (or the sample cannot be allocated)."""
    cdef int64_t stride = 8, m = n // stride, q = (3 * <int64_t>k) // 16 + 1, t
    cdef float thr
    cdef float *sample
    if n < 8 * <int64_t>k or m < 64:
        return -INFINITY
    sample = <float *>malloc(m * sizeof(float))
    if sample == NULL:
        return -INFINITY
    for t in range(m):
        sample[t] = s[t * stride]
    thr = _kth_largest(sample, m, q)
    free(sample)
    return thr


cdef int64_t _prefilter(float *s, int32_t *ids, int64_t n, int32_t k) noexcept nogil:
    """Drop, in place, pairs that cannot be among the k best of (s, ids)[0:n]; the pairs left.

    With t from :func:`_sample_threshold`, the pairs with s >= t are moved to the
    front. If at least k are, every pair of the k best is among them (one left behind
    has s < t <= the k-th best), so the selection that follows is exact; if fewer,
    nothing is dropped. Two scans are far cheaper than a quickselect over all n
    (branchy swaps of score-id pairs).
    """
    cdef int64_t c = 0, t
    cdef float thr = _sample_threshold(s, n, k)
    if thr == -INFINITY:
        return n
    for t in range(n):
        c += s[t] >= thr
    if c < k:
        return n  # an unlucky sample: keep every pair
    c = 0
    for t in range(n):  # branch-free compaction: writes never overtake reads
        s[c] = s[t]
        ids[c] = ids[t]
        c += s[t] >= thr
    return c


cdef void _best_k(float *s, int32_t *ids, int64_t n, int32_t k, float *hs, int32_t *out) noexcept nogil:
    """The k best of (s, ids)[0:n] (scratch, reordered) into (hs, out), best first, padded
    with (-inf, -1): prefilter, select the k best, then sort them (topk.h order)."""
    cdef int32_t size = 0
    cdef int64_t t
    cdef uint64_t *key
    if n > k:
        n = _prefilter(s, ids, n, k)
    if n > k:
        _partial_select(s, ids, n, k)
        n = k
    key = <uint64_t *>malloc(n * sizeof(uint64_t) + 1)
    if key != NULL:
        lae_sort_best(s, ids, n, key)
        free(key)
        memcpy(hs, s, n * sizeof(float))
        memcpy(out, ids, n * sizeof(int32_t))
        for t in range(n, k):
            hs[t] = -INFINITY
            out[t] = -1
        return
    for t in range(n):  # no memory for the keys: the bounded heap gives the same order
        lae_heap_push(hs, out, &size, k, s[t], ids[t])
    lae_heap_finish(hs, out, size, k, -INFINITY)


cdef inline float _cosine(double g, double ci, double cj) noexcept nogil:
    """G_ij / sqrt(G_ii G_jj), rounded once to float (the selection key)."""
    return <float>(g / sqrt(ci * cj))


cdef void _cooc_row(int64_t i, const int64_t *indptr, const int32_t *indices, const int64_t *item_ptr,
                    const int32_t *item_user, int32_t k, int32_t *ids, float *cnt,
                    int32_t *acc, int32_t *touched, float *sc, int32_t *sid, float *hs) noexcept nogil:
    cdef int64_t e, q, t, j, nt = 0, c = 0
    cdef double ci = <double>(item_ptr[i + 1] - item_ptr[i])
    for e in range(item_ptr[i], item_ptr[i + 1]):
        for q in range(indptr[item_user[e]], indptr[item_user[e] + 1]):
            j = indices[q]
            touched[nt] = <int32_t>j  # kept only on the first visit: no branch to mispredict
            nt += acc[j] == 0
            acc[j] += 1
    for t in range(nt):
        j = touched[t]
        if j != i:
            sc[c] = _cosine(acc[j], ci, <double>(item_ptr[j + 1] - item_ptr[j]))
            sid[c] = <int32_t>j
            c += 1
    _best_k(sc, sid, c, k, hs, ids)
    for t in range(k):
        if ids[t] >= 0:
            cnt[t] = <float>acc[ids[t]]
    for t in range(nt):  # reset only what this row touched
        acc[touched[t]] = 0


def cooc_topk(const int64_t[::1] indptr, const int32_t[::1] indices, const int64_t[::1] item_ptr,
              const int32_t[::1] item_user, const int64_t[::1] order,
              int32_t[:, ::1] out_idx, float[:, ::1] out_cnt, int num_threads):
    """Top-k co-occurring items by cosine for the items in ``order``; returns a status.

    X is the binary CSR (indptr, indices); (item_ptr, item_user) its item-major view
    (the users of each item). Row i of the outputs gets item i's best k items j != i
    with G_ij > 0, best first (cosine, then lower index), and their counts G_ij; rows
    of items not in ``order`` and the tail of short rows are left untouched (the
    caller pre-fills -1 / 0). Work sum_u |x_u|^2, scratch 4n + k words a thread.
    """
    cdef int64_t n = out_idx.shape[0]
    cdef int32_t k = <int32_t>out_idx.shape[1]
    cdef int64_t n_rows = order.shape[0]
    cdef int64_t t
    cdef int32_t *acc
    cdef int32_t *touched
    cdef int32_t *sid
    cdef float *sc
    cdef float *hs
    cdef int failed[1]  # one-element array: shared inside the parallel block
    failed[0] = 0
    if n_rows == 0 or k == 0:
        return ST_OK
    if num_threads > n_rows:
        num_threads = <int>n_rows
    with nogil, parallel(num_threads=num_threads):
        acc = <int32_t *>calloc(n, sizeof(int32_t))
        touched = <int32_t *>malloc((n + 1) * sizeof(int32_t))  # +1: the branchless append
        sc = <float *>malloc(n * sizeof(float))
        sid = <int32_t *>malloc(n * sizeof(int32_t))
        hs = <float *>malloc(k * sizeof(float))
        if acc == NULL or touched == NULL or sc == NULL or sid == NULL or hs == NULL:
            failed[0] = 1
        for t in prange(n_rows, schedule="dynamic", chunksize=1):
            if not failed[0]:
                _cooc_row(order[t], &indptr[0], &indices[0], &item_ptr[0], &item_user[0], k,
                          &out_idx[order[t], 0], &out_cnt[order[t], 0], acc, touched, sc, sid, hs)
        free(acc)
        free(touched)
        free(sc)
        free(sid)
        free(hs)
    return ST_MEMORY if failed[0] else ST_OK


cdef struct RowScratch:
    # per-thread scratch of a candidate selection over rows of G: scores, ids, heap, positions
    float *sc       # n
    int32_t *sid    # n
    float *hs       # k
    int64_t *pos    # n, or NULL when not asked for


cdef RowScratch _row_scratch_new(int64_t n, int32_t k, bint with_pos) noexcept nogil:
    cdef RowScratch w
    w.sc = <float *>malloc(n * sizeof(float))
    w.sid = <int32_t *>malloc(n * sizeof(int32_t))
    w.hs = <float *>malloc(k * sizeof(float))
    w.pos = <int64_t *>malloc(n * sizeof(int64_t)) if with_pos else NULL
    return w


cdef inline bint _row_scratch_ok(const RowScratch *w, bint with_pos) noexcept nogil:
    return w.sc != NULL and w.sid != NULL and w.hs != NULL and (w.pos != NULL or not with_pos)


cdef void _row_scratch_free(RowScratch *w) noexcept nogil:
    free(w.sc)
    free(w.sid)
    free(w.hs)
    free(w.pos)


def gram_topk(const floating[:, ::1] G, const int32_t[::1] order, const double[::1] counts,
              int32_t[:, ::1] out_idx, float[:, ::1] out_cnt, int num_threads):
    """``cooc_topk``'s rule on the rows of a dense G whose row and column r are item ``order[r]``
    (counts = diag G in item order; out_idx / out_cnt in item order); returns a status.

    The lists depend only on the keys and the item ids (ties to the lower id), never on the
    order of the scan, so a relabelled G gives the lists of the plain one.

    The exact key needs a sqrt and a division per entry; instead a cheap one,
    a_j = G_ij / sqrt(G_jj) in float (the cosine times sqrt(G_ii), to a relative 2e-7),
    is computed for the whole row, a threshold read off a sample of it
    (:func:`_sample_threshold`), and the exact key only for the entries that may reach
    the k best: a margin of 1e-5 around the threshold is far wider than the error
    of a_j and than the rounding of the exact key, so the selection stays exact.
    """
    cdef int64_t n = G.shape[0]
    cdef int32_t k = <int32_t>out_idx.shape[1]
    cdef int64_t i, j, r, t, c, strong
    cdef float a, thr, cut
    cdef float *isq
    cdef RowScratch w
    cdef int failed[1]
    failed[0] = 0
    if n == 0 or k == 0:
        return ST_OK
    isq = <float *>malloc(n * sizeof(float))
    if isq == NULL:
        return ST_MEMORY
    for j in range(n):
        isq[j] = <float>(1.0 / sqrt(counts[order[j]]))  # by position in G
    with nogil, parallel(num_threads=num_threads):
        w = _row_scratch_new(n, k, True)
        if not _row_scratch_ok(&w, True):
            failed[0] = 1
        for r in prange(n, schedule="dynamic", chunksize=16):
            if not failed[0]:
                i = order[r]
                for j in range(n):
                    a = <float>G[r, j] * isq[j]
                    w.sc[j] = a if a > 0 else -1  # NaN (G_jj = 0) and G_ij <= 0 are never candidates
                w.sc[r] = -1
                cut = FLT_TRUE_MIN  # the least positive float: s >= cut is s > 0, one test
                thr = _sample_threshold(w.sc, n, k)
                if thr > 0:
                    strong = 0
                    for j in range(n):
                        strong = strong + (w.sc[j] >= thr * <float>(1 + 1e-6))
                    if strong >= k and thr * <float>(1 - 1e-5) > cut:
                        cut = thr * <float>(1 - 1e-5)
                c = 0
                for j in range(n):  # one well-predicted branch: most entries fall below the cut
                    if w.sc[j] >= cut:
                        w.sc[c] = _cosine(G[r, j], counts[i], counts[order[j]])
                        w.sid[c] = order[j]
                        w.pos[order[j]] = j
                        c = c + 1
                _best_k(w.sc, w.sid, c, k, w.hs, &out_idx[i, 0])
                for t in range(k):
                    out_cnt[i, t] = <float>G[r, w.pos[out_idx[i, t]]] if out_idx[i, t] >= 0 else 0
        _row_scratch_free(&w)
    free(isq)
    return ST_MEMORY if failed[0] else ST_OK


def csr_topk(const int64_t[::1] indptr, const int32_t[::1] indices, const double[::1] values, int64_t first,
             const double[::1] counts, int32_t[:, ::1] out_idx, float[:, ::1] out_cnt, int num_threads):
    """``cooc_topk``'s rule on co-occurrence rows given as CSR: row r is item first + r, its
    stored (j, G_ij) pairs in any order, each j once (counts = diag G of every item); returns a status."""
    cdef int64_t rows = out_idx.shape[0], n = counts.shape[0]
    cdef int32_t k = <int32_t>out_idx.shape[1]
    cdef int64_t r, i, j, e, t, c
    cdef RowScratch w
    cdef int failed[1]
    failed[0] = 0
    if rows == 0 or k == 0:
        return ST_OK
    with nogil, parallel(num_threads=num_threads):
        w = _row_scratch_new(n, k, True)
        if not _row_scratch_ok(&w, True):
            failed[0] = 1
        for r in prange(rows, schedule="dynamic", chunksize=16):
            if not failed[0]:
                i = first + r
                c = 0
                for e in range(indptr[r], indptr[r + 1]):
                    j = indices[e]
                    if j != i and values[e] > 0:
                        w.sc[c] = _cosine(values[e], counts[i], counts[j])
                        w.sid[c] = <int32_t>j
                        w.pos[j] = e
                        c = c + 1
                _best_k(w.sc, w.sid, c, k, w.hs, &out_idx[r, 0])
                for t in range(k):
                    out_cnt[r, t] = <float>values[w.pos[out_idx[r, t]]] if out_idx[r, t] >= 0 else 0
        _row_scratch_free(&w)
    return ST_MEMORY if failed[0] else ST_OK


def rows_topk(const floating[:, ::1] S, const int64_t[::1] skip, int32_t[:, ::1] out_idx,
              float[:, ::1] out_val, int num_threads):
    """Row r: its k largest entries (as float; ties to the lower column), column skip[r] left out;
    a status. NaN entries are never selected; short rows are padded with -1 / -inf."""
    cdef int64_t rows = S.shape[0], n = S.shape[1]
    cdef int32_t k = <int32_t>out_idx.shape[1]
    cdef int64_t r, j, c
    cdef float v
    cdef float *sc
    cdef int32_t *sid
    cdef int failed[1]
    failed[0] = 0
    if rows == 0 or k == 0:
        return ST_OK
    with nogil, parallel(num_threads=num_threads):
        sc = <float *>malloc(n * sizeof(float))
        sid = <int32_t *>malloc(n * sizeof(int32_t))
        if sc == NULL or sid == NULL:
            failed[0] = 1
        for r in prange(rows, schedule="static"):
            if not failed[0]:
                c = 0
                for j in range(n):
                    v = <float>S[r, j]
                    if j != skip[r] and v == v:
                        sc[c] = v
                        sid[c] = <int32_t>j
                        c = c + 1
                _best_k(sc, sid, c, k, &out_val[r, 0], &out_idx[r, 0])
        free(sc)
        free(sid)
    return ST_MEMORY if failed[0] else ST_OK


# -- oriented lists: each known pair once, in the list of its less popular item ---------------------

cdef void _orient_rows(const int32_t[:, ::1] cand, const float[:, ::1] cnt, const int64_t *cand_len,
                       const int64_t *rank, int64_t r0, int64_t r1, int64_t *up, int64_t *down,
                       const int64_t *start, int32_t *out_idx, float *out_cnt) noexcept nogil:
    """Lists r0 .. r1 - 1, one pass of ``orient_counts`` (out_idx NULL: count a's up entries into
    up[a] and the down entries to b into down[b]) or of ``orient_fill`` (write a's up entries from
    start[a], and each down entry to b at down[b], the next free slot, moved on)."""
    cdef int64_t a, t, w, e
    cdef int32_t b
    for a in range(r0, r1):
        w = 0
        for t in range(cand_len[a]):
            b = cand[a, t]
            if rank[b] > rank[a]:
                if out_idx != NULL:
                    out_idx[start[a] + w] = b
                    out_cnt[start[a] + w] = cnt[a, t]
                w = w + 1
            else:
                e = down[b]
                if out_idx != NULL:
                    out_idx[e] = <int32_t>a
                    out_cnt[e] = cnt[a, t]
                down[b] = e + 1
        if out_idx == NULL:
            up[a] = w


def orient_counts(const int32_t[:, ::1] cand, const float[:, ::1] cnt, const int64_t[::1] cand_len,
                  const int64_t[::1] rank, int64_t[::1] up, int64_t[:, ::1] down, int num_threads):
    """Count the entries of the oriented lists. Entry b of list a points *up* when
    rank[b] > rank[a] (it stays in a's oriented list) and *down* otherwise (it moves to b's).
    up[a]: a's up entries; down[c, o]: the down entries to o in the lists of chunk c
    (rows c·n/C .. (c+1)·n/C - 1 of C = down.shape[0] chunks). ``down`` is zero on entry."""
    cdef int64_t n = cand.shape[0], chunks = down.shape[0], c
    with nogil:
        for c in prange(chunks, schedule="static", chunksize=1, num_threads=num_threads):
            _orient_rows(cand, cnt, &cand_len[0], &rank[0], c * n // chunks, (c + 1) * n // chunks, &up[0],
                         &down[c, 0], NULL, NULL, NULL)


def orient_fill(const int32_t[:, ::1] cand, const float[:, ::1] cnt, const int64_t[::1] cand_len,
                const int64_t[::1] rank, const int64_t[::1] start, int64_t[:, ::1] cursor,
                const int64_t[::1] up, int32_t[::1] out_idx, float[::1] out_cnt, int64_t[::1] out_len,
                int num_threads):
    """Fill the oriented lists counted by ``orient_counts``, then drop their duplicates; a status.

    Oriented list o starts at start[o]: its up entries (in list order), then the down entries of
    chunk 0, 1, ... (``cursor[c, o]`` is where chunk c writes next). A pair in both a's and b's
    list arrives twice (up in one, down in the other) and is kept once; out_len[o] is the
    number kept. Every pair known to either list is in exactly one oriented list, with its count.
    """
    cdef int64_t n = cand.shape[0], chunks = cursor.shape[0]
    cdef int64_t c, o, w, e, stop
    cdef uint64_t *bits
    cdef int failed[1]
    failed[0] = 0
    with nogil:
        for c in prange(chunks, schedule="static", chunksize=1, num_threads=num_threads):
            _orient_rows(cand, cnt, &cand_len[0], &rank[0], c * n // chunks, (c + 1) * n // chunks, NULL,
                         &cursor[c, 0], &start[0], &out_idx[0], &out_cnt[0])
    with nogil, parallel(num_threads=num_threads):
        bits = <uint64_t *>calloc(n // 64 + 1, sizeof(uint64_t))
        if bits == NULL:
            failed[0] = 1
        for o in prange(n, schedule="dynamic", chunksize=256):
            if bits != NULL:
                stop = start[o] + up[o]
                for e in range(start[o], stop):
                    bits[out_idx[e] >> 6] |= (<uint64_t>1) << (out_idx[e] & 63)
                w = stop
                for e in range(stop, cursor[chunks - 1, o]):
                    if not _marked(bits, out_idx[e]):
                        out_idx[w] = out_idx[e]
                        out_cnt[w] = out_cnt[e]
                        w = w + 1
                out_len[o] = w - start[o]
                for e in range(start[o], stop):
                    bits[out_idx[e] >> 6] = 0
        free(bits)
    return ST_MEMORY if failed[0] else ST_OK


# -- per-column solves -----------------------------------------------------------------------------

cdef struct Source:
    # dense G (n×n, C order, full; item a is its row and column row_of[a]) or NULL; else the
    # lists and diag G: item a's list is cand[start[a] : start[a] + len[a]] with the counts
    # cnt[...] (candidate lists, or the oriented lists of ``orient_fill``, where each known
    # pair sits in one list only)
    const void *G
    const int32_t *row_of
    const int32_t *cand
    const float *cnt
    const int64_t *start
    const int64_t *len
    const double *diag
    int64_t n


cdef struct Text:
    # L3AE: text column s_ij = (E[i]·H[j]) · inv[j] (i != j), s_jj = 0
    const double *E
    const double *H
    const double *inv
    int64_t d
    double l2_e


cdef uint64_t LOW32 = 0xffffffff


cdef int _cmp_int32(const void *a, const void *b) noexcept nogil:
    cdef int32_t x = (<const int32_t *>a)[0]
    cdef int32_t y = (<const int32_t *>b)[0]
    return (x > y) - (x < y)


cdef int _cmp_uint64(const void *a, const void *b) noexcept nogil:
    cdef uint64_t x = (<const uint64_t *>a)[0]
    cdef uint64_t y = (<const uint64_t *>b)[0]
    return (x > y) - (x < y)


cdef struct Marks:
    # per-thread scratch of the candidate-list lookup
    int32_t *pos    # n: where each item of S sits (read only where its bit is set)
    uint64_t *bits  # n bits: S as a bitset, all clear between columns
    int32_t *hits   # the longest list: offsets of the hits within one list


cdef Marks _marks_new(int64_t n, int64_t longest) noexcept nogil:
    cdef Marks w
    w.pos = <int32_t *>malloc(n * sizeof(int32_t))
    w.bits = <uint64_t *>calloc(n // 64 + 1, sizeof(uint64_t))
    w.hits = <int32_t *>malloc((longest + 1) * sizeof(int32_t))  # +1: the branch-free append
    return w


cdef inline bint _marks_ok(const Marks *w) noexcept nogil:
    return w.pos != NULL and w.bits != NULL and w.hits != NULL


cdef void _marks_free(Marks *w) noexcept nogil:
    free(w.pos)
    free(w.bits)
    free(w.hits)


cdef inline bint _marked(const uint64_t *bits, int64_t b) noexcept nogil:
    return (bits[b >> 6] >> (b & 63)) & 1


cdef void _build(floating *A, const int32_t *S, int64_t s, const Source *src, const double *ridge,
                 double delta, Marks *w) noexcept nogil:
    """Row-major upper triangle of A = Ĝ_SS + diag(ridge_S + delta).

    From a dense G the entries are exact. From the candidate lists, G_ab is known
    when b is in a's list or a in b's (both give the same count); every other
    off-diagonal entry is taken as 0. Oriented lists hold each such pair once (in the
    list of the less popular item), so the same A costs about half the scan. The scan
    of every list of S (Σ len entries, the hot loop) tests each entry against a bitset
    of S (n bits, L1/L2-resident), with the next list and its counts already requested
    from memory (the lists are far larger than the caches), and reads ``w.pos`` only on
    a hit; the bits are clear on entry and on return.
    """
    cdef int64_t pa, pb, t, h, nh
    cdef const floating *G = <const floating *>src.G
    cdef const floating *row
    cdef const int32_t *cand
    cdef const float *cnt
    cdef const floating *ahead
    cdef int64_t nxt
    if G != NULL:
        # each entry is a cache miss of its own (G is far larger than the caches): the next
        # row's entries are requested while this row is copied, so twice as many are in flight.
        # In the route's G (items by popularity, as S is) the supports, mostly popular items,
        # sit in one corner and every row is read in ascending order: fewer lines, more cached.
        for pa in range(s):
            row = G + <int64_t>src.row_of[S[pa]] * src.n
            if pa + 1 < s:
                ahead = G + <int64_t>src.row_of[S[pa + 1]] * src.n
                for pb in range(pa + 1, s):
                    lae_prefetch(ahead + src.row_of[S[pb]])
            for pb in range(pa, s):
                A[pa * s + pb] = row[src.row_of[S[pb]]]
            A[pa * s + pa] = <floating>(<double>row[src.row_of[S[pa]]] + ridge[S[pa]] + delta)
        return
    for pa in range(s):
        memset(A + pa * s + pa, 0, (s - pa) * sizeof(floating))
        w.pos[S[pa]] = <int32_t>pa
        w.bits[S[pa] >> 6] |= (<uint64_t>1) << (S[pa] & 63)
    for pa in range(s):
        cand = src.cand + src.start[S[pa]]
        cnt = src.cnt + src.start[S[pa]]
        if pa + 1 < s:
            # and its counts: each hit reads one at a random offset, a cache miss unless requested
            # (8% fewer solve seconds on the amazon-book shape, alternated run by run)
            nxt = src.start[S[pa + 1]]
            for t in range(0, src.len[S[pa + 1]], 16):
                lae_prefetch(src.cand + nxt + t)
                lae_prefetch(src.cnt + nxt + t)
        # branch-free scan (hits are rare and random): note every hit's offset, then use them
        nh = 0
        for t in range(src.len[S[pa]]):
            w.hits[nh] = <int32_t>t
            nh += _marked(w.bits, cand[t])
        for h in range(nh):
            t = w.hits[h]
            pb = w.pos[cand[t]]
            if pb > pa:
                A[pa * s + pb] = cnt[t]
            elif pb < pa:
                A[pb * s + pa] = cnt[t]
        A[pa * s + pa] = <floating>(src.diag[S[pa]] + ridge[S[pa]] + delta)
    for pa in range(s):
        w.bits[S[pa] >> 6] = 0


cdef int _factor_solve(floating *A, floating *rhs, int s, int nrhs) noexcept nogil:
    """Cholesky of A (row-major upper = LAPACK lower) and rhs <- A⁻¹ rhs; LAPACK's info."""
    cdef char uplo = b'L'
    cdef int info = 0
    if floating is float:
        spotrf(&uplo, &s, A, &s, &info)
        if info == 0:
            spotrs(&uplo, &s, &nrhs, A, &s, rhs, &s, &info)
    else:
        dpotrf(&uplo, &s, A, &s, &info)
        if info == 0:
            dpotrs(&uplo, &s, &nrhs, A, &s, rhs, &s, &info)
    return info


cdef void _gather(floating *A, const floating *saved, int64_t ld, const int32_t *sel, int64_t s,
                  double delta) noexcept nogil:
    """Row-major upper triangle of A = saved[sel, sel] + delta I (``sel`` ascending, so it stays
    in the upper triangle of ``saved``, an ld×ld matrix built by ``_build``)."""
    cdef int64_t p, q
    cdef const floating *row
    for p in range(s):
        row = saved + <int64_t>sel[p] * ld
        for q in range(p, s):
            A[p * s + q] = row[sel[q]]
        A[p * s + p] += <floating>delta


cdef void _text_column(int64_t j, const int32_t *S, int64_t s, int64_t jp, const Text *txt,
                       floating *y) noexcept nogil:
    """y[p] = s_{S[p], j}: L3AE's text column j on S (Woodbury, O(d) an entry; 0 at j itself)."""
    cdef int64_t p, c
    cdef double dot
    cdef const double *hj = txt.H + j * txt.d
    for p in range(s):
        dot = 0
        if p != jp:
            for c in range(txt.d):
                dot = dot + txt.E[<int64_t>S[p] * txt.d + c] * hj[c]
        y[p] = <floating>(dot * txt.inv[j])


cdef int _column(int64_t j, const int32_t *S, int64_t s, int64_t jp, const Source *src,
                 const double *ridge, int mode, double xi, const Text *txt,
                 const floating *saved, int64_t ld, const int32_t *sel, floating *save,
                 floating *A, floating *rhs, Marks *w, floating *out, int *tries) noexcept nogil:
    """Column j of B on its support S (j = S[jp]) into out[0:s]; a status.

    G_SS + diag(ridge) comes from ``src``, or, when ``saved`` is given, from its rows
    and columns ``sel``. With ``save``, the A first built from ``src`` is copied there.
    """
    cdef int64_t p
    cdef int t = 0, nrhs = 2 if mode == M_L3AE else 1
    cdef double delta = 0, scale, bound, gamma, pjj, base = 1, eps
    cdef floating *x = rhs
    cdef floating *y = rhs + s
    while True:
        if saved != NULL:
            _gather(A, saved, ld, sel, s, delta)
        else:
            _build(A, S, s, src, ridge, delta, w)
            if t == 0 and save != NULL:
                memcpy(save, A, s * s * sizeof(floating))
        if t == 0:
            for p in range(s):
                if A[p * s + p] > base:
                    base = A[p * s + p]
        memset(rhs, 0, nrhs * s * sizeof(floating))
        x[jp] = 1
        if mode == M_L3AE:
            _text_column(j, S, s, jp, txt, y)
        if _factor_solve(A, rhs, <int>s, nrhs) == 0:
            break
        if t == MAX_RETRIES:
            tries[0] += t
            return ST_NOT_PD
        t += 1
        delta = base * pow(10.0, t - 1 - RETRY_FIRST_EXP)
    tries[0] += t
    pjj = x[jp]
    if mode == M_L3AE:
        # b = λ_E P s − P e_j (1 + λ_E (P s)_j) / P_jj, then b_j = 0
        scale = (1.0 + txt.l2_e * y[jp]) / pjj
        for p in range(s):
            out[p] = <floating>(txt.l2_e * y[p] - scale * x[p])
        out[jp] = 0
        return ST_OK
    # b = e_j − P e_j · max(γ_j, (1 − ξ)/P_jj); a retry's δ counts as part of the ridge γ
    gamma = ridge[j] + delta
    bound = (1.0 - xi) / pjj
    scale = gamma if gamma > bound else bound
    for p in range(s):
        out[p] = <floating>(-scale * x[p])
    out[jp] += 1
    # where the bound is active b_jj = ξ by construction: store it exactly, as the dense fit does
    if floating is float:
        eps = FLT_EPSILON
    else:
        eps = DBL_EPSILON
    if bound >= gamma * (1.0 - 4 * eps):
        out[jp] = <floating>xi
    return ST_OK


cdef bint _pcg(const floating *A, int s, int64_t jp, const floating *rhs, floating *x, floating *cg,
               int iters) noexcept nogil:
    """x ~ A⁻¹ rhs (rhs = e_jp if NULL) by ``iters`` steps of Jacobi-preconditioned conjugate
    gradients, A the row-major upper triangle of an s×s SPD matrix; False where a step meets
    p·Ap <= 0 (A is not positive definite: the caller factors it instead). cg: 4 s scratch.

    Only the ranking of |b| on the first support needs this: on MovieLens-1M ten steps
    already choose the same supports as the exact solve (bench/neighbors_accuracy.py).
    """
    cdef char uplo = b'L'  # our row-major upper triangle
    cdef int one = 1
    cdef floating alpha = 1, beta = 0
    cdef floating *r = cg
    cdef floating *z = cg + s
    cdef floating *p = cg + 2 * s
    cdef floating *q = cg + 3 * s
    cdef double rz, rz_next, pq, step, first
    cdef int it, a
    for a in range(s):
        x[a] = 0
        r[a] = rhs[a] if rhs != NULL else 0
    if rhs == NULL:
        r[jp] = 1
    rz = 0
    for a in range(s):
        z[a] = <floating>(r[a] / A[a * s + a])
        p[a] = z[a]
        rz += r[a] * z[a]
    first = rz
    for it in range(iters):
        if rz <= 1e-12 * first:  # converged (or rhs = 0): further steps change nothing
            break
        if floating is float:
            ssymv(&uplo, &s, &alpha, <float *>A, &s, p, &one, &beta, q, &one)
        else:
            dsymv(&uplo, &s, &alpha, <double *>A, &s, p, &one, &beta, q, &one)
        pq = 0
        for a in range(s):
            pq += p[a] * q[a]
        if not pq > 0:
            return False
        step = rz / pq
        rz_next = 0
        for a in range(s):
            x[a] += <floating>(step * p[a])
            r[a] -= <floating>(step * q[a])
            z[a] = <floating>(r[a] / A[a * s + a])
            rz_next += r[a] * z[a]
        for a in range(s):
            p[a] = <floating>(z[a] + (rz_next / rz) * p[a])
        rz = rz_next
    return True


cdef struct Pick:
    # per-thread scratch of the refinement: the `keep` largest |b| √G_ii of a first solve
    float *key     # smax
    int32_t *at    # smax
    float *hs      # keep
    int32_t *sel   # keep + 1: kept positions in the first support, ascending (S2 keeps S's order)
    int32_t *S2    # keep + 1: the kept items


cdef Pick _pick_new(int64_t smax, int64_t keep) noexcept nogil:
    cdef Pick k
    k.key = <float *>malloc(smax * sizeof(float))
    k.at = <int32_t *>malloc(smax * sizeof(int32_t))
    k.hs = <float *>malloc((keep + 1) * sizeof(float))
    k.sel = <int32_t *>malloc((keep + 1) * sizeof(int32_t))
    k.S2 = <int32_t *>malloc((keep + 1) * sizeof(int32_t))
    return k


cdef inline bint _pick_ok(const Pick *k) noexcept nogil:
    return k.key != NULL and k.at != NULL and k.hs != NULL and k.sel != NULL and k.S2 != NULL


cdef void _pick_free(Pick *k) noexcept nogil:
    free(k.key)
    free(k.at)
    free(k.hs)
    free(k.sel)
    free(k.S2)


cdef int _first_pass_pcg(int64_t j, const int32_t *S, int64_t s, int64_t jp, const Source *src,
                         const double *ridge, int mode, const Text *txt, floating *saved, floating *b1,
                         floating *cg, Marks *w, int iters) noexcept nogil:
    """The refinement's first pass by PCG: A = Ĝ_SS + diag(ridge) built into ``saved`` and b1 = b
    times a positive factor (EASE family: −P e_j; L3AE: λ_E P s − P e_j (1 + λ_E (P s)_j) / P_jj),
    enough to rank |b|; False where PCG meets a non-positive curvature."""
    cdef int64_t p
    cdef double scale
    cdef floating *x = cg + 4 * s
    cdef floating *y = cg + 5 * s
    _build(saved, S, s, src, ridge, 0, w)
    if not _pcg(saved, <int>s, jp, <floating *>NULL, x, cg, iters):
        return False
    if mode != M_L3AE:
        memcpy(b1, x, s * sizeof(floating))
        return True
    _text_column(j, S, s, jp, txt, b1)
    if not _pcg(saved, <int>s, jp, b1, y, cg, iters) or not x[jp] > 0:
        return False
    scale = (1.0 + txt.l2_e * y[jp]) / x[jp]
    for p in range(s):
        b1[p] = <floating>(txt.l2_e * y[p] - scale * x[p])
    return True


cdef void _by_item(int32_t *idx, floating *val, int64_t s, uint64_t *key, floating *tmp) noexcept nogil:
    """Sort the pairs (idx, val)[0:s] by item (the supports come in popularity order)."""
    cdef int64_t p
    for p in range(s):
        key[p] = ((<uint64_t>idx[p]) << 32) | <uint64_t>p
    qsort(key, s, sizeof(uint64_t), _cmp_uint64)
    for p in range(s):
        tmp[p] = val[key[p] & LOW32]
        idx[p] = <int32_t>(key[p] >> 32)
    memcpy(val, tmp, s * sizeof(floating))


cdef int _solve_column(int64_t j, const int32_t *S, int64_t s, int64_t jp, int64_t keep, int iters,
                       const Source *src, const double *ridge, int mode, double xi, const Text *txt,
                       floating *A, floating *rhs, floating *saved, floating *b1, floating *cg, Marks *w,
                       Pick *pk, uint64_t *key, int32_t *out_idx, floating *out, int *tries) noexcept nogil:
    """:func:`_solve_in_support_order`, its items then sorted (with their values) by index."""
    cdef int status = _solve_in_support_order(j, S, s, jp, keep, iters, src, ridge, mode, xi, txt, A, rhs, saved,
                                              b1, cg, w, pk, out_idx, out, tries)
    if status == ST_OK:
        _by_item(out_idx, out, s if keep == 0 or s - 1 <= keep else keep + 1, key, rhs)
    return status


cdef int _solve_in_support_order(int64_t j, const int32_t *S, int64_t s, int64_t jp, int64_t keep, int iters,
                                 const Source *src, const double *ridge, int mode, double xi, const Text *txt,
                                 floating *A, floating *rhs, floating *saved, floating *b1, floating *cg,
                                 Marks *w, Pick *pk, int32_t *out_idx, floating *out, int *tries) noexcept nogil:
    """Column j on S, or with ``keep`` refined: a first pass on S (``iters`` PCG steps, or the
    exact solve if 0 or where PCG breaks down), keep the ``keep`` largest |b_i| √G_ii (i != j; as
    float, ties to the less popular item: the earlier in S) and j, solve again on those, exactly.
    |b_i| √G_ii is the norm of b_i x_i, what item i adds to the reconstruction of column j. The
    result's items go to out_idx (in S's order) and its values to out (min(s, keep + 1) of each);
    a status."""
    cdef int64_t p, c = 0, jp2 = 0
    cdef int status
    cdef double norm
    if keep == 0 or s - 1 <= keep:
        memcpy(out_idx, S, s * sizeof(int32_t))
        return _column(j, S, s, jp, src, ridge, mode, xi, txt, NULL, 0, NULL, NULL, A, rhs, w, out, tries)
    if iters == 0 or not _first_pass_pcg(j, S, s, jp, src, ridge, mode, txt, saved, b1, cg, w, iters):
        status = _column(j, S, s, jp, src, ridge, mode, xi, txt, NULL, 0, NULL, saved, A, rhs, w, b1, tries)
        if status != ST_OK:
            return status
    for p in range(s):
        if p != jp:
            norm = src.diag[S[p]]
            pk.key[c] = <float>((b1[p] if b1[p] >= 0 else -b1[p]) * (sqrt(norm) if norm > 0 else 0))
            pk.at[c] = <int32_t>p  # S is in popularity order: the lower position, the less popular item
            c += 1
    _best_k(pk.key, pk.at, c, <int32_t>keep, pk.hs, pk.sel)
    pk.sel[keep] = <int32_t>jp
    qsort(pk.sel, keep + 1, sizeof(int32_t), _cmp_int32)
    for p in range(keep + 1):
        pk.S2[p] = S[pk.sel[p]]
        if pk.sel[p] == jp:
            jp2 = p
    memcpy(out_idx, pk.S2, (keep + 1) * sizeof(int32_t))
    # the second system is a principal submatrix of the first: gathered, not looked up again
    return _column(j, pk.S2, keep + 1, jp2, src, ridge, mode, xi, txt, saved, s, pk.sel, NULL, A, rhs, w,
                   out, tries)


def solve_block(const int64_t[::1] cols, const int64_t[::1] sup_ptr, const int32_t[::1] sup_idx,
                const int64_t[::1] jpos, int64_t keep, int refine_iters, bint dense, const floating[:, ::1] G,
                const int32_t[::1] row_of, int64_t longest, const int32_t[::1] cand, const float[::1] cnt,
                const int64_t[::1] cand_start,
                const int64_t[::1] cand_len, const double[::1] diag, const double[::1] ridge, int mode, double xi,
                const double[:, ::1] E, const double[:, ::1] H, const double[::1] inv, double l2_e,
                const int64_t[::1] out_ptr, int32_t[::1] out_idx, floating[::1] out,
                int8_t[::1] retries, int8_t[::1] status, int num_threads):
    """Solve the columns ``cols`` of B on their supports (refined to ``keep`` + 1 items if keep > 0,
    ranking the first pass by ``refine_iters`` PCG steps, or exactly if 0).

    Column c: support ``sup_idx[sup_ptr[c]:sup_ptr[c+1]]`` (in the order A is built in: by
    popularity, least first, see ``neighbors._rows_to_supports``; column cols[c] at offset
    jpos[c]); its final support, ascending, and its values go to ``out_idx`` / ``out`` from
    ``out_ptr[c]`` (min(|S|, keep + 1) entries, or |S| without refinement). Source of G_SS:
    the dense ``G`` (n×n, full; item a at its row and column ``row_of[a]``) if ``dense``, else
    the lists (item a's: ``cand`` / ``cnt`` from ``cand_start[a]``, ``cand_len[a]`` entries:
    the candidate lists flattened, or their oriented form; ``longest`` = max cand_len, the size
    of the look-up's hit buffer) with ``diag`` = G_aa. ``ridge`` is γ per item. ``mode``
    MODE_EASE uses ``xi``; MODE_L3AE uses E, H (n×d, float64), inv = 1/(1 − q) and ``l2_e``.
    Per column: ``retries`` (raised-ridge attempts, both solves; see RETRY_FIRST_EXPONENT) and
    ``status``.
    """
    cdef int64_t nb = cols.shape[0]
    cdef int64_t n = ridge.shape[0]
    cdef int64_t c, smax = 1, s
    cdef Source src
    cdef Text txt
    cdef floating *buf
    cdef uint64_t *key
    cdef Marks w
    cdef Pick pk
    cdef bint ok
    cdef bint use_lists = not dense
    cdef bint refine
    cdef int tries
    if nb == 0:
        return
    for c in range(nb):
        s = sup_ptr[c + 1] - sup_ptr[c]
        if s > smax:
            smax = s
    refine = keep > 0 and smax - 1 > keep
    src.G = NULL
    src.cand = &cand[0]
    src.cnt = &cnt[0]
    src.row_of = &row_of[0]
    if not use_lists:
        src.G = &G[0, 0]
    src.start = &cand_start[0]
    src.len = &cand_len[0]
    src.diag = &diag[0]
    src.n = n
    txt.E = &E[0, 0]
    txt.H = &H[0, 0]
    txt.inv = &inv[0]
    txt.d = E.shape[1]
    txt.l2_e = l2_e
    if num_threads > nb:
        num_threads = <int>nb
    with nogil, parallel(num_threads=num_threads):
        # A (smax²) and the right-hand sides (2 smax); to refine, the first A, b and the PCG
        # scratch (6 smax) as well.
        # Scratch structs are assigned whole, so that every thread gets its own copy
        # (assigning their fields alone would leave them shared).
        buf = <floating *>malloc((smax * smax + 2 * smax + (smax * smax + 7 * smax if refine else 0))
                                 * sizeof(floating))
        w = _marks_new(n if use_lists else 0, longest)
        pk = _pick_new(smax if refine else 0, keep if refine else 0)
        key = <uint64_t *>malloc(smax * sizeof(uint64_t))  # the final sort by item
        ok = buf != NULL and key != NULL and (_marks_ok(&w) or not use_lists) and (_pick_ok(&pk) or not refine)
        for c in prange(nb, schedule="dynamic", chunksize=1):
            if not ok:
                status[c] = ST_MEMORY
            else:
                tries = 0
                status[c] = <int8_t>_solve_column(
                    cols[c], &sup_idx[sup_ptr[c]], sup_ptr[c + 1] - sup_ptr[c], jpos[c], keep, refine_iters,
                    &src, &ridge[0], mode, xi, &txt, buf, buf + smax * smax, buf + smax * smax + 2 * smax,
                    buf + 2 * smax * smax + 2 * smax, buf + 2 * smax * smax + 3 * smax, &w, &pk, key,
                    &out_idx[out_ptr[c]], &out[out_ptr[c]], &tries)
                retries[c] = <int8_t>tries
        free(buf)
        free(key)
        _marks_free(&w)
        _pick_free(&pk)


# -- batch ranking against a sparse B --------------------------------------------------------------

cdef void _rank_user(int64_t u, const int64_t *hptr, const int32_t *hidx, const int64_t *bptr,
                     const int32_t *bidx, const floating *bval, int64_t n, const uint8_t *allowed,
                     bint mask_history, int32_t k, float *s, int32_t *ids, floating *acc,
                     uint8_t *mark, int32_t *touched) noexcept nogil:
    # mark: 0 untouched (score exactly 0), 1 reached by the history, 2 masked
    cdef int64_t p, q, i, j, nt = 0
    cdef int32_t size = 0
    for p in range(hptr[u], hptr[u + 1]):
        i = hidx[p]
        for q in range(bptr[i], bptr[i + 1]):
            j = bidx[q]
            if mark[j] == 0:
                mark[j] = 1
                touched[nt] = <int32_t>j
                nt += 1
            acc[j] += bval[q]
    if mask_history:
        for p in range(hptr[u], hptr[u + 1]):
            i = hidx[p]
            if mark[i] == 0:
                touched[nt] = <int32_t>i
                nt += 1
            mark[i] = 2
    for p in range(nt):
        j = touched[p]
        if mark[j] == 1 and allowed[j]:
            lae_heap_push(s, ids, &size, k, <float>acc[j], <int32_t>j)
    # untouched items all score 0: offer them by index until one can no longer enter
    # (every later one then loses the tie against the same heap root)
    for j in range(n):
        if mark[j] == 0 and allowed[j]:
            if size == k and not lae_better(0.0, <int32_t>j, s[0], ids[0]):
                break
            lae_heap_push(s, ids, &size, k, 0.0, <int32_t>j)
    lae_heap_finish(s, ids, size, k, -INFINITY)
    for p in range(nt):
        acc[touched[p]] = 0
        mark[touched[p]] = 0


def rank_sparse(const int64_t[::1] hptr, const int32_t[::1] hidx, const int64_t[::1] bptr,
                const int32_t[::1] bidx, const floating[::1] bval, const uint8_t[::1] allowed,
                bint mask_history, int32_t[:, ::1] out_ids, float[:, ::1] out_scores, int num_threads):
    """Top-k (k = out_ids.shape[1]) of x_u·B for every user row of the binary CSR history
    (hptr, hidx), B a canonical CSR (bptr, bidx, bval) whose rows are history items; a status.

    Same contract as ``_rank.rank_topk``: score desc, ties to the lower index,
    ``allowed[j] == 0`` never returned, own items masked with ``mask_history``,
    padding -1 / -inf. Scratch per thread: n scores, n marks, n int32.
    """
    cdef int64_t n_users = hptr.shape[0] - 1
    cdef int64_t n = allowed.shape[0]
    cdef int32_t k = <int32_t>out_ids.shape[1]
    cdef int64_t u
    cdef floating *acc
    cdef uint8_t *mark
    cdef int32_t *touched
    cdef int failed[1]
    failed[0] = 0
    if n_users <= 0 or k == 0 or n == 0:
        return ST_OK
    if num_threads > n_users:
        num_threads = <int>n_users
    with nogil, parallel(num_threads=num_threads):
        acc = <floating *>calloc(n, sizeof(floating))
        mark = <uint8_t *>calloc(n, sizeof(uint8_t))
        touched = <int32_t *>malloc(n * sizeof(int32_t))
        if acc == NULL or mark == NULL or touched == NULL:
            failed[0] = 1
        for u in prange(n_users, schedule="dynamic", chunksize=16):
            if acc != NULL and mark != NULL and touched != NULL:
                _rank_user(u, &hptr[0], &hidx[0], &bptr[0], &bidx[0], &bval[0], n, &allowed[0],
                           mask_history, k, &out_scores[u, 0], &out_ids[u, 0], acc, mark, touched)
        free(acc)
        free(mark)
        free(touched)
    return ST_MEMORY if failed[0] else ST_OK
