/* Dense layer for the compiled stacks: small products (a head of a few units after an LSTM)
 * whose cost is dominated by call overhead when they go through NumPy. */
#include <string.h>

#include "activations.h"

size_t fl_dense_scratch_floats(ptrdiff_t n_out) { return n_out > 0 ? (size_t)n_out : 1; }

int fl_dense_forward(const float *x, ptrdiff_t n_rows, ptrdiff_t n_in, const float *kernel,
                     const float *bias, ptrdiff_t n_out, int activation, float *y,
                     float *scratch) {
    if (x == NULL || kernel == NULL || y == NULL || scratch == NULL || n_rows < 0 || n_in < 1
        || n_out < 1 || !fl_activation_is_valid(activation)) {
        return FL_ERR_ARGUMENT;
    }
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        const float *xr = x + r * n_in;
        float *yr = y + r * n_out;
        if (bias != NULL) {
            memcpy(yr, bias, (size_t)n_out * sizeof(float));
        } else {
            memset(yr, 0, (size_t)n_out * sizeof(float));
        }
        for (ptrdiff_t k = 0; k < n_in; k++) {
            const float v = xr[k];
            const float *w = kernel + k * n_out;
            for (ptrdiff_t j = 0; j < n_out; j++) yr[j] += v * w[j];
        }
    }
    return fl_activation_apply(activation, y, n_rows, n_out, scratch);
}
