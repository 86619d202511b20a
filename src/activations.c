/* Whole-array activations, for Dense/Activation outputs and for the row-wise activations that a
 * recurrent cell applies over one gate's units. */
#include <stdlib.h>
#include <string.h>

#include "activations.h"
#include "kernels.h"

static int fl_compare_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

static void fl_softmax_row(float *x, ptrdiff_t n, int log_output) {
    /* tf.nn.softmax / tf.nn.log_softmax: shift by the row maximum first. */
    float mx = x[0];
    for (ptrdiff_t i = 1; i < n; i++) mx = fmaxf(mx, x[i]);
    double sum = 0.0;
    for (ptrdiff_t i = 0; i < n; i++) sum += expf(x[i] - mx);
    if (log_output) {
        float lse = (float)log(sum);
        for (ptrdiff_t i = 0; i < n; i++) x[i] = x[i] - mx - lse;
    } else {
        float inv = (float)(1.0 / sum);
        for (ptrdiff_t i = 0; i < n; i++) x[i] = expf(x[i] - mx) * inv;
    }
}

static void fl_sparsemax_row(float *x, ptrdiff_t n, float *sorted /* (n) */) {
    /* Keras's sparsemax (keras/src/backend/{tensorflow,jax,numpy}/nn.py, identical in every backend): with z sorted
     * descending and cumsum_k its running sums, support_k = z_k - (cumsum_k - 1)/k > 0 and
     * tau = (sum of cumsum_k over the support - 1) / |support|. Note that Keras sums the running
     * sums rather than taking the last one; fastlstm reproduces Keras, not the paper. */
    memcpy(sorted, x, (size_t)n * sizeof(float));
    qsort(sorted, (size_t)n, sizeof(float), fl_compare_desc);
    float cumsum = 0.0f, support_sum = 0.0f, k = 0.0f;
    for (ptrdiff_t i = 0; i < n; i++) {
        cumsum += sorted[i];
        if (sorted[i] - (cumsum - 1.0f) / (float)(i + 1) > 0.0f) {
            support_sum += cumsum;
            k += 1.0f;
        }
    }
    float tau = (support_sum - 1.0f) / k;
    for (ptrdiff_t i = 0; i < n; i++) x[i] = fmaxf(x[i] - tau, 0.0f);
}

int fl_activation_apply(const fl_activation_spec *activation, float *x, ptrdiff_t n_rows,
                        ptrdiff_t n_cols, float *scratch) {
    if (!fl_activation_is_valid(activation) || n_rows < 0 || n_cols < 0) return FL_ERR_ARGUMENT;
    if (n_rows == 0 || n_cols == 0 || activation->id == FL_ACT_LINEAR) return FL_OK;
    if (activation->id == FL_ACT_SPARSEMAX && scratch == NULL) return FL_ERR_ARGUMENT;
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        float *row = x + r * n_cols;
        switch (activation->id) {
        case FL_ACT_SOFTMAX: fl_softmax_row(row, n_cols, 0); break;
        case FL_ACT_LOG_SOFTMAX: fl_softmax_row(row, n_cols, 1); break;
        case FL_ACT_SPARSEMAX: fl_sparsemax_row(row, n_cols, scratch); break;
        default:
            fl_kernels()->activation_row(activation, row, n_cols);
        }
    }
    return FL_OK;
}
