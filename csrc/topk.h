/* Bounded top-k selection: a min-heap of k (score, id) pairs, for float and double scores.
 *
 * Order: a higher score ranks first; on equal scores the lower id ranks first.
 * The heap root is therefore the *worst* kept entry: lowest score, and among
 * equal scores the highest id.  One implementation serves ranking (_rank.pyx),
 * single-user serving and pruning (_serve.pyx).  Plain C, no Python objects,
 * usable without the GIL.
 *
 *   lae_heap_push[_d](s, id, &size, k, score, item)  offer one pair
 *   lae_heap_finish[_d](s, id, size, k, neg_inf)     sort best-first, pad with (-inf, -1)
 */
#ifndef LAE_FAST_TOPK_H
#define LAE_FAST_TOPK_H

#include <stdint.h>

#define LAE_DEFINE_HEAP(SUFFIX, T)                                                                 \
/* a ranks strictly better than b */                                                               \
static inline int lae_better##SUFFIX(T sa, int32_t ia, T sb, int32_t ib) {                          \
    return sa > sb || (sa == sb && ia < ib);                                                       \
}                                                                                                  \
                                                                                                   \
static inline void lae_sift_down##SUFFIX(T *s, int32_t *id, int32_t size, int32_t pos) {            \
    for (;;) {                                                                                     \
        int32_t left = 2 * pos + 1, worst = pos;                                                   \
        if (left < size && lae_better##SUFFIX(s[worst], id[worst], s[left], id[left])) worst = left; \
        if (left + 1 < size && lae_better##SUFFIX(s[worst], id[worst], s[left + 1], id[left + 1]))  \
            worst = left + 1;                                                                      \
        if (worst == pos) return;                                                                  \
        T ts = s[pos]; s[pos] = s[worst]; s[worst] = ts;                                           \
        int32_t ti = id[pos]; id[pos] = id[worst]; id[worst] = ti;                                 \
        pos = worst;                                                                               \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
static inline void lae_sift_up##SUFFIX(T *s, int32_t *id, int32_t pos) {                            \
    while (pos > 0) {                                                                              \
        int32_t parent = (pos - 1) / 2;                                                            \
        if (!lae_better##SUFFIX(s[parent], id[parent], s[pos], id[pos])) return;                   \
        T ts = s[pos]; s[pos] = s[parent]; s[parent] = ts;                                         \
        int32_t ti = id[pos]; id[pos] = id[parent]; id[parent] = ti;                               \
        pos = parent;                                                                              \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
/* Offer (score, item) to a heap holding *size of at most k entries. */                           \
static inline void lae_heap_push##SUFFIX(T *s, int32_t *id, int32_t *size, int32_t k, T score,      \
                                         int32_t item) {                                           \
    if (*size < k) {                                                                               \
        s[*size] = score; id[*size] = item;                                                        \
        lae_sift_up##SUFFIX(s, id, *size);                                                         \
        *size += 1;                                                                                \
    } else if (k > 0 && lae_better##SUFFIX(score, item, s[0], id[0])) {                            \
        s[0] = score; id[0] = item;                                                                \
        lae_sift_down##SUFFIX(s, id, k, 0);                                                        \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
/* Sort the heap in place into best-first order; pad the tail up to k with (neg_inf, -1). */       \
static inline void lae_heap_finish##SUFFIX(T *s, int32_t *id, int32_t size, int32_t k, T neg_inf) { \
    for (int32_t end = size - 1; end > 0; --end) { /* heapsort: move the worst entry to the end */  \
        T ts = s[0]; s[0] = s[end]; s[end] = ts;                                                   \
        int32_t ti = id[0]; id[0] = id[end]; id[end] = ti;                                         \
        lae_sift_down##SUFFIX(s, id, end, 0);                                                      \
    }                                                                                              \
    for (int32_t j = size; j < k; ++j) { s[j] = neg_inf; id[j] = -1; }                             \
}

LAE_DEFINE_HEAP(, float)
LAE_DEFINE_HEAP(_d, double)

#endif
