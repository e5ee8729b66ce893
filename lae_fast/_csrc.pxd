# Declarations of the hand-written C helpers in csrc/, shared by the ranking, serving and pruning kernels.
from libc.stdint cimport int8_t, int32_t, int64_t, uint16_t, uint64_t

cdef extern from "topk.h" nogil:
    void lae_heap_push(float *s, int32_t *id, int32_t *size, int32_t k, float score, int32_t item)
    void lae_heap_finish(float *s, int32_t *id, int32_t size, int32_t k, float neg_inf)
    void lae_heap_push_d(double *s, int32_t *id, int32_t *size, int32_t k, double score, int32_t item)
    void lae_heap_finish_d(double *s, int32_t *id, int32_t size, int32_t k, double neg_inf)

cdef extern from "score.h" nogil:
    void lae_accumulate_f(float *acc, int64_t w, const float *B, int64_t ldb, int64_t c0,
                          const int64_t *rows, const float *wts, int64_t L)
    void lae_accumulate_d(double *acc, int64_t w, const double *B, int64_t ldb, int64_t c0,
                          const int64_t *rows, const double *wts, int64_t L)

cdef extern from "topk.h" nogil:
    int lae_better(float sa, int32_t ia, float sb, int32_t ib)
    void lae_sort_best(float *s, int32_t *id, int64_t n, uint64_t *key)

cdef extern from "dequant.h" nogil:
    # function pointers set by lae_dequant_init(), called like functions
    void lae_dequant_f16(float *acc, int64_t w, const uint16_t *Q, int64_t ldq, int64_t c0,
                         const int64_t *rows, const float *wts, int64_t L)
    void lae_dequant_i8(float *acc, int64_t w, const int8_t *Q, int64_t ldq, int64_t c0,
                        const int64_t *rows, const float *wts, int64_t L)
    int lae_dequant_init()
    int lae_dequant_force(int level)
    int lae_dequant_level()

cdef extern from "prefetch.h" nogil:
    void lae_prefetch(const void *p)

cdef extern from "scatter.h" nogil:
    int64_t lae_scatter_row(float *acc, int64_t c0, const int32_t *indices, const float *data, int64_t q,
                            int64_t q1, int64_t limit)
    void lae_scatter_rest(float *acc, int64_t c0, const int32_t *indices, const float *data, int64_t q, int64_t q1)
