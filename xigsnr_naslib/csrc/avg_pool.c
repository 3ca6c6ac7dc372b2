/*
 * Average pooling over contiguous NCHW planes (count_include_pad=False divisors), forward and
 * backward, adding in exactly the order of PyTorch's CPU kernel, so that the results are the
 * same bit for bit (xigsnr_naslib/pooling.py checks this at first use, and the tests check it
 * for every kernel size, padding and stride they name).
 *
 * PyTorch's kernel, per plane:
 *   forward   out[i][j] = (0 + x[..] + x[..] + ...) / divisor[i][j], the window's in-image
 *             elements added in row-major order;
 *   backward  grad_in = 0; for every output (i, j) in row-major order, add
 *             grad_out[i][j] / divisor[i][j] to each in-image element of its window.
 * Floating-point addition is not associative: only the order makes the results equal.
 *
 * Two kernels compute that:
 *   stride 1  (xs_avg_pool_s1_*)  each plane is copied into a zero-padded buffer and flattened;
 *             the window at offset (a, b) is then the contiguous run starting at a*wp + b, so
 *             the k*k additions run over long contiguous rows (junk columns are dropped).
 *             Adding the padding's zeros changes no sum (0 + v == v, and a sum of zeros is +0
 *             as in the kernel, which starts from +0).
 *   any stride (xs_avg_pool_*)    one output row at a time, the in-image columns of each
 *             window offset added into a row of accumulators.
 * No multiplications, so no fused multiply-add can change a rounding; build with
 * -ffp-contract=off and without -ffast-math all the same.
 */
#include <stdint.h>
#include <string.h>

#if defined(XIGSNR_CLONES) && defined(__x86_64__)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

/* first and one-past-last output column whose window offset b falls inside [0, w) */
static inline void xs_columns(int64_t w, int64_t ow, int64_t s, int64_t p, int64_t b,
                              int64_t *lo, int64_t *hi) {
    *lo = p - b > 0 ? (p - b + s - 1) / s : 0;
    *hi = (w - 1 + p - b) >= 0 ? (w - 1 + p - b) / s + 1 : 0;
    if (*hi > ow) *hi = ow;
}

#define DEFINE_KERNELS(T, SUFFIX)                                                              \
/* acc[f] = sum over (a, b) in row-major order of buf[a*wp + b + f], from zero */             \
static inline void xs_window_sums_##SUFFIX(const T *buf, T *acc, int64_t wp, int64_t length,  \
                                           int64_t k) {                                        \
    if (k == 3) { /* the common case, with the nine additions in registers */                  \
        const T *r0 = buf, *r1 = buf + wp, *r2 = buf + 2 * wp;                                 \
        for (int64_t f = 0; f < length; ++f) {                                                 \
            T sum = (T)0;                                                                      \
            sum += r0[f]; sum += r0[f + 1]; sum += r0[f + 2];                                  \
            sum += r1[f]; sum += r1[f + 1]; sum += r1[f + 2];                                  \
            sum += r2[f]; sum += r2[f + 1]; sum += r2[f + 2];                                  \
            acc[f] = sum;                                                                      \
        }                                                                                      \
        return;                                                                                \
    }                                                                                          \
    for (int64_t f = 0; f < length; ++f) acc[f] = (T)0;                                        \
    for (int64_t a = 0; a < k; ++a)                                                            \
        for (int64_t b = 0; b < k; ++b) {                                                      \
            const T *src = buf + a * wp + b;                                                   \
            for (int64_t f = 0; f < length; ++f) acc[f] += src[f];                             \
        }                                                                                      \
}                                                                                              \
                                                                                               \
/* stride 1. buf: (h+2p)*(w+2p) elements, acc: oh*(w+2p) elements */                           \
CLONES void xs_avg_pool_s1_forward_##SUFFIX(const T *x, T *out, const T *divisor,             \
        int64_t planes, int64_t h, int64_t w, int64_t k, int64_t p, T *buf, T *acc) {          \
    int64_t hp = h + 2 * p, wp = w + 2 * p, oh = hp - k + 1, ow = wp - k + 1;                  \
    int64_t length = (oh - 1) * wp + ow;                                                       \
    memset(buf, 0, sizeof(T) * hp * wp);                                                       \
    for (int64_t plane = 0; plane < planes; ++plane) {                                         \
        const T *src = x + plane * h * w;                                                      \
        T *dst = out + plane * oh * ow;                                                        \
        for (int64_t r = 0; r < h; ++r) memcpy(buf + (r + p) * wp + p, src + r * w, sizeof(T) * w); \
        xs_window_sums_##SUFFIX(buf, acc, wp, length, k);                                      \
        for (int64_t i = 0; i < oh; ++i)                                                       \
            for (int64_t j = 0; j < ow; ++j) dst[i * ow + j] = acc[i * wp + j] / divisor[i * ow + j]; \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* stride 1. An input element lies under outputs i-e .. i-e+k-1 (e = k-1-p): the window sums  \
   of the shares padded by e visit them in ascending, row-major order.                         \
   buf: (oh+2e)*(ow+2e) elements, acc: h*(ow+2e) elements */                                   \
CLONES void xs_avg_pool_s1_backward_##SUFFIX(const T *grad_out, T *grad_in, const T *divisor,  \
        int64_t planes, int64_t h, int64_t w, int64_t k, int64_t p, T *buf, T *acc) {          \
    int64_t oh = h + 2 * p - k + 1, ow = w + 2 * p - k + 1, e = k - 1 - p;                     \
    int64_t hp = oh + 2 * e, wp = ow + 2 * e, length = (h - 1) * wp + w;                       \
    memset(buf, 0, sizeof(T) * hp * wp);                                                       \
    for (int64_t plane = 0; plane < planes; ++plane) {                                         \
        const T *g = grad_out + plane * oh * ow;                                               \
        T *dst = grad_in + plane * h * w;                                                      \
        for (int64_t i = 0; i < oh; ++i)                                                       \
            for (int64_t j = 0; j < ow; ++j)                                                   \
                buf[(i + e) * wp + e + j] = g[i * ow + j] / divisor[i * ow + j];               \
        xs_window_sums_##SUFFIX(buf, acc, wp, length, k);                                      \
        for (int64_t r = 0; r < h; ++r) memcpy(dst + r * w, acc + r * wp, sizeof(T) * w);      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* any stride. acc: ow elements */                                                             \
CLONES void xs_avg_pool_forward_##SUFFIX(const T *x, T *out, const T *divisor,                \
        int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, int64_t k, int64_t s,    \
        int64_t p, T *acc) {                                                                   \
    for (int64_t plane = 0; plane < planes; ++plane) {                                         \
        const T *src = x + plane * h * w;                                                      \
        T *dst = out + plane * oh * ow;                                                        \
        for (int64_t i = 0; i < oh; ++i) {                                                     \
            for (int64_t j = 0; j < ow; ++j) acc[j] = (T)0;                                    \
            for (int64_t a = 0; a < k; ++a) {                                                  \
                int64_t r = i * s - p + a, lo, hi;                                             \
                if (r < 0 || r >= h) continue;                                                 \
                for (int64_t b = 0; b < k; ++b) {                                              \
                    const T *col = src + r * w + b - p;                                        \
                    xs_columns(w, ow, s, p, b, &lo, &hi);                                      \
                    for (int64_t j = lo; j < hi; ++j) acc[j] += col[j * s];                    \
                }                                                                              \
            }                                                                                  \
            for (int64_t j = 0; j < ow; ++j) dst[i * ow + j] = acc[j] / divisor[i * ow + j];   \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* any stride. For one output row, input column c gets outputs j = (c+p-b)/s: ascending j is  \
   descending b. delta: ow elements */                                                         \
CLONES void xs_avg_pool_backward_##SUFFIX(const T *grad_out, T *grad_in, const T *divisor,     \
        int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, int64_t k, int64_t s,    \
        int64_t p, T *delta) {                                                                 \
    for (int64_t plane = 0; plane < planes; ++plane) {                                         \
        const T *g = grad_out + plane * oh * ow;                                               \
        T *dst = grad_in + plane * h * w;                                                      \
        memset(dst, 0, sizeof(T) * h * w);                                                     \
        for (int64_t i = 0; i < oh; ++i) {                                                     \
            for (int64_t j = 0; j < ow; ++j) delta[j] = g[i * ow + j] / divisor[i * ow + j];   \
            for (int64_t a = 0; a < k; ++a) {                                                  \
                int64_t r = i * s - p + a, lo, hi;                                             \
                if (r < 0 || r >= h) continue;                                                 \
                for (int64_t b = k - 1; b >= 0; --b) {                                         \
                    T *col = dst + r * w + b - p;                                              \
                    xs_columns(w, ow, s, p, b, &lo, &hi);                                      \
                    for (int64_t j = lo; j < hi; ++j) col[j * s] += delta[j];                  \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}

DEFINE_KERNELS(float, f32)
DEFINE_KERNELS(double, f64)
