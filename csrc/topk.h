/* Bounded top-k selection: a min-heap of k (score, id) pairs per query row.
 *
 * Order: a higher score ranks first; on equal scores the lower id ranks first.
 * The heap root is therefore the *worst* kept entry: lowest score, and among
 * equal scores the highest id.  Plain C, no Python objects, usable without the GIL.
 */
#ifndef LAE_FAST_TOPK_H
#define LAE_FAST_TOPK_H

#include <stdint.h>

/* a ranks strictly better than b */
static inline int lae_better(float sa, int32_t ia, float sb, int32_t ib) {
    return sa > sb || (sa == sb && ia < ib);
}

static inline void lae_sift_down(float *s, int32_t *id, int32_t size, int32_t pos) {
    for (;;) {
        int32_t left = 2 * pos + 1, worst = pos;
        if (left < size && lae_better(s[worst], id[worst], s[left], id[left])) worst = left;
        if (left + 1 < size && lae_better(s[worst], id[worst], s[left + 1], id[left + 1])) worst = left + 1;
        if (worst == pos) return;
        float ts = s[pos]; s[pos] = s[worst]; s[worst] = ts;
        int32_t ti = id[pos]; id[pos] = id[worst]; id[worst] = ti;
        pos = worst;
    }
}

static inline void lae_sift_up(float *s, int32_t *id, int32_t pos) {
    while (pos > 0) {
        int32_t parent = (pos - 1) / 2;
        if (!lae_better(s[parent], id[parent], s[pos], id[pos])) return;
        float ts = s[pos]; s[pos] = s[parent]; s[parent] = ts;
        int32_t ti = id[pos]; id[pos] = id[parent]; id[parent] = ti;
        pos = parent;
    }
}

/* Offer (score, item) to a heap holding *size of at most k entries. */
static inline void lae_heap_push(float *s, int32_t *id, int32_t *size, int32_t k, float score, int32_t item) {
    if (*size < k) {
        s[*size] = score; id[*size] = item;
        lae_sift_up(s, id, *size);
        *size += 1;
    } else if (k > 0 && lae_better(score, item, s[0], id[0])) {
        s[0] = score; id[0] = item;
        lae_sift_down(s, id, k, 0);
    }
}

/* Sort the heap in place into best-first order; pad the tail up to k with (-inf, -1). */
static inline void lae_heap_finish(float *s, int32_t *id, int32_t size, int32_t k, float neg_inf) {
    /* heapsort: repeatedly move the worst entry to the end */
    for (int32_t end = size - 1; end > 0; --end) {
        float ts = s[0]; s[0] = s[end]; s[end] = ts;
        int32_t ti = id[0]; id[0] = id[end]; id[end] = ti;
        lae_sift_down(s, id, end, 0);
    }
    for (int32_t j = size; j < k; ++j) { s[j] = neg_inf; id[j] = -1; }
}

#endif
