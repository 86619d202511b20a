/* Dense layer for the compiled stacks: small products (a head of a few units after an LSTM)
 * whose cost is dominated by call overhead when they go through NumPy. */
#include "activations.h"

size_t fl_dense_scratch_floats(ptrdiff_t n_out) { return n_out > 0 ? (size_t)n_out : 1; }

int fl_dense_forward(const float *x, ptrdiff_t n_rows, ptrdiff_t n_in, const float *kernel,
                     const float *bias, ptrdiff_t n_out, int activation, float *y,
                     float *scratch) {
    if (x == NULL || kernel == NULL || y == NULL || scratch == NULL || n_rows < 0 || n_in < 1
        || n_out < 1 || !fl_activation_is_valid(activation)) {
        return FL_ERR_ARGUMENT;
    }
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
