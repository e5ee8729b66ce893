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
 *   lae_sort_best(s, id, n, key)                      sort n float pairs best-first (same order)
 */
#ifndef LAE_FAST_TOPK_H
#define LAE_FAST_TOPK_H

#include <stdint.h>
#include <string.h>

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

/* One uint64 per pair whose ascending order is the best-first order above: the score's bits
 * mapped to an unsigned order and inverted (higher score, smaller key), then the id. */
static inline uint64_t lae_best_key(float score, int32_t item) {
    uint32_t u;
    score += 0.0f; /* -0 -> +0: the two compare equal, so they must get one key */
    memcpy(&u, &score, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ((uint64_t)(~u) << 32) | (uint32_t)item;
}

static inline float lae_best_key_score(uint64_t key) {
    uint32_t u = ~(uint32_t)(key >> 32);
    float score;
    u = (u & 0x80000000u) ? (u & 0x7fffffffu) : ~u;
    memcpy(&score, &u, sizeof score);
    return score;
}

/* Quicksort of distinct keys: median of three, a branch-free Lomuto partition (the swap is
 * unconditional, so random keys cost no mispredicted branches), insertion sort below 16;
 * the smaller side recurses, so the depth stays under log2(n). */
static void lae_sort_keys(uint64_t *a, int64_t n) {
    while (n > 16) {
        int64_t mid = n / 2, hi = n - 1, store = 0;
        uint64_t t;
        if (a[mid] < a[0]) { t = a[mid]; a[mid] = a[0]; a[0] = t; }
        if (a[hi] < a[0]) { t = a[hi]; a[hi] = a[0]; a[0] = t; }
        if (a[hi] < a[mid]) { t = a[hi]; a[hi] = a[mid]; a[mid] = t; }
        t = a[mid]; a[mid] = a[hi]; a[hi] = t; /* pivot (the median) at hi */
        uint64_t pivot = a[hi];
        for (int64_t i = 0; i < hi; ++i) {
            uint64_t x = a[i];
            a[i] = a[store];
            a[store] = x;
            store += x < pivot;
        }
        a[hi] = a[store];
        a[store] = pivot;
        if (store < n - 1 - store) {
            lae_sort_keys(a, store);
            a += store + 1;
            n -= store + 1;
        } else {
            lae_sort_keys(a + store + 1, n - store - 1);
            n = store;
        }
    }
    for (int64_t i = 1; i < n; ++i) {
        uint64_t x = a[i];
        int64_t j = i - 1;
        while (j >= 0 && a[j] > x) { a[j + 1] = a[j]; --j; }
        a[j + 1] = x;
    }
}

/* Sort the pairs (s, id)[0:n] best-first in place, in the heap's order; key: scratch of n. */
static inline void lae_sort_best(float *s, int32_t *id, int64_t n, uint64_t *key) {
    for (int64_t t = 0; t < n; ++t) key[t] = lae_best_key(s[t], id[t]);
    lae_sort_keys(key, n);
    for (int64_t t = 0; t < n; ++t) {
        s[t] = lae_best_key_score(key[t]);
        id[t] = (int32_t)(uint32_t)key[t];
    }
}

#endif
