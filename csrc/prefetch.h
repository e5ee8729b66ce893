/* A read prefetch hint: lets a gather from scattered rows keep more cache misses in flight. */
#ifndef LAE_FAST_PREFETCH_H
#define LAE_FAST_PREFETCH_H
#if defined(__GNUC__) || defined(__clang__)
static inline void lae_prefetch(const void *p) { __builtin_prefetch(p, 0, 0); }
#else
static inline void lae_prefetch(const void *p) { (void)p; }
#endif
#endif
