/* Lets the kernels ask about OpenMP even when the build had to go without it. */
#ifndef LAE_FAST_OPENMP_COMPAT_H
#define LAE_FAST_OPENMP_COMPAT_H
#if defined(_OPENMP)
#include <omp.h>
static inline int lae_openmp_enabled(void) { return 1; }
static inline int lae_thread_id(void) { return omp_get_thread_num(); }
#else
static inline int lae_openmp_enabled(void) { return 0; }
static inline int lae_thread_id(void) { return 0; }
#endif
#endif
