/* acc[0:w] = sum_p wts[p] * decode(Q[rows[p], c0:c0+w])  for a compressed B (Q row-major, leading
 * dimension ldq) whose entries are float16 bit patterns or int8 codes; wts[p] carries row p's scale.
 *
 * The serving kernel for a compressed dense B: bound by memory bandwidth, so the point is to read
 * 2 (float16) or 1 (int8) byte per weight instead of 4 and to decode in registers. Three versions
 * of each loop: AVX-512F (16 lanes), AVX2 + F16C + FMA (8 lanes) and portable C; lae_dequant_init()
 * picks the widest the CPU runs, once, when the module is loaded (as the target_clones of score.h
 * do), and lae_dequant_force() lets the tests run every version the CPU has.
 *
 * Within a version the summation order is fixed (rows in groups of eight, or four in portable C,
 * left to right), so a call is deterministic; versions may differ in the last bits of a score
 * (grouping, FMA), never in the decoded weights.
 */
#ifndef LAE_FAST_DEQUANT_H
#define LAE_FAST_DEQUANT_H

#include <stdint.h>
#include <string.h>

#include "score.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LAE_DEQUANT_X86 1
#include <immintrin.h>
#else
#define LAE_DEQUANT_X86 0
#endif

/* IEEE binary16 -> binary32, exact (every half is a float), without branches so that the portable
 * loops vectorise: the 15 bits below the sign, moved to a float's exponent and mantissa, times
 * 2^112 (the exponent bias difference) give every finite half, subnormals included; exponent 31
 * (inf, NaN) is then patched in. */
static inline float lae_half_to_float(uint16_t h) {
    uint32_t em = h & 0x7fffu, bits = em << 13, big = 0x7f800000u | bits;
    float f;
    memcpy(&f, &bits, sizeof f);
    f *= 5.192296858534828e33f;  /* 2^112 */
    memcpy(&bits, &f, sizeof f);
    bits = em >= 0x7c00u ? big : bits;
    bits |= (uint32_t)(h & 0x8000u) << 16;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* The portable versions: score.h's loop (four rows per pass), decoding each code. */
#define LAE_DECODE_I8(x) ((float)(x))
LAE_DEFINE_ACCUMULATE_DECODED(lae_dequant_f16_portable, float, uint16_t, lae_half_to_float)
LAE_DEFINE_ACCUMULATE_DECODED(lae_dequant_i8_portable, float, int8_t, LAE_DECODE_I8)

#if LAE_DEQUANT_X86
/* The SIMD versions: VEC lanes per step, LOAD(ptr) decodes VEC codes into a float vector; eight
 * rows per pass (measured: 10-20% faster than four, as eight streams keep more loads in flight;
 * sixteen gained nothing), the columns past the last full vector through the portable decode. */
#define LAE_DEQUANT_SIMD(NAME, TARGET, Q_T, VEC, VT, ZERO, LOADF, STOREF, SET1, FMA, LOAD, DECODE)  \
__attribute__((target(TARGET)))                                                                    \
static void NAME(float *restrict acc, int64_t w, const Q_T *restrict Q, int64_t ldq, int64_t c0,   \
                 const int64_t *restrict rows, const float *restrict wts, int64_t L) {             \
    int64_t j, p = 0, wv = w / VEC * VEC;                                                           \
    int q;                                                                                         \
    for (j = 0; j < wv; j += VEC) STOREF(acc + j, ZERO());                                          \
    for (j = wv; j < w; ++j) acc[j] = 0;                                                           \
    for (; p + 8 <= L; p += 8) {                                                                   \
        const Q_T *r[8];                                                                           \
        VT a[8];                                                                                   \
        for (q = 0; q < 8; ++q) { r[q] = Q + rows[p + q] * ldq + c0; a[q] = SET1(wts[p + q]); }    \
        for (j = 0; j < wv; j += VEC) {                                                            \
            VT s = LOADF(acc + j);                                                                 \
            for (q = 0; q < 8; ++q) s = FMA(a[q], LOAD(r[q] + j), s);                              \
            STOREF(acc + j, s);                                                                    \
        }                                                                                          \
        for (j = wv; j < w; ++j)                                                                   \
            for (q = 0; q < 8; ++q) acc[j] += wts[p + q] * DECODE(r[q][j]);                        \
    }                                                                                              \
    for (; p < L; ++p) {                                                                           \
        const Q_T *r0 = Q + rows[p] * ldq + c0;                                                    \
        VT a0 = SET1(wts[p]);                                                                      \
        for (j = 0; j < wv; j += VEC) STOREF(acc + j, FMA(a0, LOAD(r0 + j), LOADF(acc + j)));       \
        for (j = wv; j < w; ++j) acc[j] += wts[p] * DECODE(r0[j]);                                 \
    }                                                                                              \
}

#define LAE_LD_F16_256(ptr) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(ptr)))
#define LAE_LD_I8_256(ptr) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(ptr))))
#define LAE_LD_F16_512(ptr) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(ptr)))
#define LAE_LD_I8_512(ptr) _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(ptr))))

LAE_DEQUANT_SIMD(lae_dequant_f16_avx2, "avx2,fma,f16c", uint16_t, 8, __m256, _mm256_setzero_ps, _mm256_loadu_ps,
                 _mm256_storeu_ps, _mm256_set1_ps, _mm256_fmadd_ps, LAE_LD_F16_256, lae_half_to_float)
LAE_DEQUANT_SIMD(lae_dequant_i8_avx2, "avx2,fma", int8_t, 8, __m256, _mm256_setzero_ps, _mm256_loadu_ps,
                 _mm256_storeu_ps, _mm256_set1_ps, _mm256_fmadd_ps, LAE_LD_I8_256, LAE_DECODE_I8)
LAE_DEQUANT_SIMD(lae_dequant_f16_avx512, "avx512f", uint16_t, 16, __m512, _mm512_setzero_ps, _mm512_loadu_ps,
                 _mm512_storeu_ps, _mm512_set1_ps, _mm512_fmadd_ps, LAE_LD_F16_512, lae_half_to_float)
LAE_DEQUANT_SIMD(lae_dequant_i8_avx512, "avx512f", int8_t, 16, __m512, _mm512_setzero_ps, _mm512_loadu_ps,
                 _mm512_storeu_ps, _mm512_set1_ps, _mm512_fmadd_ps, LAE_LD_I8_512, LAE_DECODE_I8)
#endif

typedef void (*lae_dequant_f16_fn)(float *, int64_t, const uint16_t *, int64_t, int64_t, const int64_t *,
                                   const float *, int64_t);
typedef void (*lae_dequant_i8_fn)(float *, int64_t, const int8_t *, int64_t, int64_t, const int64_t *,
                                  const float *, int64_t);

/* Levels: 0 portable, 1 AVX2 + F16C + FMA, 2 AVX-512F. */
static lae_dequant_f16_fn lae_dequant_f16 = lae_dequant_f16_portable;
static lae_dequant_i8_fn lae_dequant_i8 = lae_dequant_i8_portable;
static int lae_dequant_level_now = 0;

/* The widest level this CPU (and OS) runs. */
static int lae_dequant_cpu_level(void) {
#if LAE_DEQUANT_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return 1;
#endif
    return 0;
}

/* Use `level` (clamped to what the CPU runs); returns the level in use. Not for use while another
 * thread is inside a kernel: called once at load time, and by the tests. */
static int lae_dequant_force(int level) {
    int best = lae_dequant_cpu_level();
    if (level < 0 || level > best) level = best;
    lae_dequant_f16 = lae_dequant_f16_portable;
    lae_dequant_i8 = lae_dequant_i8_portable;
#if LAE_DEQUANT_X86
    if (level == 1) { lae_dequant_f16 = lae_dequant_f16_avx2; lae_dequant_i8 = lae_dequant_i8_avx2; }
    if (level == 2) { lae_dequant_f16 = lae_dequant_f16_avx512; lae_dequant_i8 = lae_dequant_i8_avx512; }
#endif
    lae_dequant_level_now = level;
    return level;
}

static int lae_dequant_init(void) { return lae_dequant_force(-1); }
static int lae_dequant_level(void) { return lae_dequant_level_now; }

#endif
