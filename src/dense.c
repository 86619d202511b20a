/* Dense layer for the compiled stacks: small products (a head of a few units after an LSTM)
 * whose cost is dominated by call overhead when they go through NumPy. */
#include "activations.h"
#include "kernels.h"

size_t fl_dense_scratch_floats(ptrdiff_t n_out) { return n_out > 0 ? (size_t)n_out : 1; }

int fl_dense_forward(const float *x, ptrdiff_t n_rows, ptrdiff_t n_in, const float *kernel,
                     const float *bias, ptrdiff_t n_out, const fl_activation_spec *activation,
                     float *y, float *scratch) {
    if (x == NULL || kernel == NULL || y == NULL || scratch == NULL || n_rows < 0 || n_in < 1
        || n_out < 1 || !fl_activation_is_valid(activation)) {
        return FL_ERR_ARGUMENT;
    }
    fl_kernels()->dense_rows(x, n_rows, n_in, kernel, bias, n_out, y);
    return fl_activation_apply(activation, y, n_rows, n_out, scratch);
}
