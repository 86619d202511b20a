/* Dense layer for the compiled stacks: small products (a head of a few units after an LSTM)
 * whose cost is dominated by call overhead when they go through NumPy. */
#include "activations.h"
#include "cpu_dispatch.h"

#if FL_BUILD_AVX2
#include "simd_avx2.h"

/* Eight outputs of one row, four partial sums over k in FMA chains; `tail` is a compile-time
 * constant: masked loads and stores for the last n_out % 8 outputs, so no lane reads past a
 * kernel row, plain ones otherwise (a masked store does not forward to the next step's loads of
 * that output on Zen, which cost more than the whole product here). */
FL_AVX2_INLINE void fl_dense_group_avx2(const int tail, const float *xr, ptrdiff_t n_in,
                                        const float *w, ptrdiff_t n_out, __m256i mask, __m256 b,
                                        float *yr) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    ptrdiff_t k = 0;
    for (; k + 4 <= n_in; k += 4)
        for (int q = 0; q < 4; q++) {
            const float *wk = w + (k + q) * n_out;
            const __m256 wv = tail ? _mm256_maskload_ps(wk, mask) : _mm256_loadu_ps(wk);
            acc[q] = _mm256_fmadd_ps(_mm256_broadcast_ss(xr + k + q), wv, acc[q]);
        }
    for (; k < n_in; k++) {
        const __m256 wv = tail ? _mm256_maskload_ps(w + k * n_out, mask)
                               : _mm256_loadu_ps(w + k * n_out);
        acc[0] = _mm256_fmadd_ps(_mm256_broadcast_ss(xr + k), wv, acc[0]);
    }
    const __m256 sum = _mm256_add_ps(b, _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]),
                                                      _mm256_add_ps(acc[2], acc[3])));
    if (tail) _mm256_maskstore_ps(yr, mask, sum);
    else _mm256_storeu_ps(yr, sum);
}

/* For the 64 -> 8 head of a batch-1 generation step: ~0.04 us where the portable loop (SSE, no
 * FMA) takes ~0.15, a tenth of the whole step. */
FL_AVX2_FN static void fl_dense_rows_avx2(const float *x, ptrdiff_t n_rows, ptrdiff_t n_in,
                                          const float *kernel, const float *bias,
                                          ptrdiff_t n_out, float *y) {
    enum { J = 8 };
    for (ptrdiff_t j0 = 0; j0 < n_out; j0 += J) {
        const int nj = n_out - j0 < J ? (int)(n_out - j0) : J;
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(nj),
                                                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        const __m256 b = bias == NULL ? _mm256_setzero_ps()
                         : nj == J    ? _mm256_loadu_ps(bias + j0)
                                      : _mm256_maskload_ps(bias + j0, mask);
        for (ptrdiff_t r = 0; r < n_rows; r++) {
            if (nj == J)
                fl_dense_group_avx2(0, x + r * n_in, n_in, kernel + j0, n_out, mask, b,
                                    y + r * n_out + j0);
            else
                fl_dense_group_avx2(1, x + r * n_in, n_in, kernel + j0, n_out, mask, b,
                                    y + r * n_out + j0);
        }
    }
}
#endif

size_t fl_dense_scratch_floats(ptrdiff_t n_out) { return n_out > 0 ? (size_t)n_out : 1; }

int fl_dense_forward(const float *x, ptrdiff_t n_rows, ptrdiff_t n_in, const float *kernel,
                     const float *bias, ptrdiff_t n_out, int activation, float *y,
                     float *scratch) {
    if (x == NULL || kernel == NULL || y == NULL || scratch == NULL || n_rows < 0 || n_in < 1
        || n_out < 1 || !fl_activation_is_valid(activation)) {
        return FL_ERR_ARGUMENT;
    }
#if FL_BUILD_AVX2
    if (fl_get_isa() >= FL_ISA_AVX2) {  /* AVX-512 falls back to the AVX2 loop */
        fl_dense_rows_avx2(x, n_rows, n_in, kernel, bias, n_out, y);
        return fl_activation_apply(activation, y, n_rows, n_out, scratch);
    }
#endif
    enum { J = 8 };  /* outputs per pass, kept in registers */
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        const float *xr = x + r * n_in;
        for (ptrdiff_t j0 = 0; j0 < n_out; j0 += J) {
            const ptrdiff_t nj = n_out - j0 < J ? n_out - j0 : J;
            /* Four partial sums over k: a single one would be a chain of n_in dependent
             * multiply-adds, which for a small head after a batch-1 step (64 -> 8) costs as
             * much latency as the LSTM step itself. */
            float acc[4][J] = {{0.0f}};
            ptrdiff_t k = 0;
            for (; k + 4 <= n_in; k += 4)
                for (int q = 0; q < 4; q++) {
                    const float v = xr[k + q], *w = kernel + (k + q) * n_out + j0;
                    for (ptrdiff_t j = 0; j < nj; j++) acc[q][j] += v * w[j];
                }
            for (; k < n_in; k++) {
                const float v = xr[k], *w = kernel + k * n_out + j0;
                for (ptrdiff_t j = 0; j < nj; j++) acc[0][j] += v * w[j];
            }
            float *yr = y + r * n_out + j0;
            for (ptrdiff_t j = 0; j < nj; j++)
                yr[j] = (bias != NULL ? bias[j0 + j] : 0.0f)
                        + ((acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j]));
        }
    }
    return fl_activation_apply(activation, y, n_rows, n_out, scratch);
}
