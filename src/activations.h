/* Scalar activation formulas shared by every kernel. Static inline so that each kernel body that
 * includes it (portable and AVX2+FMA builds alike) compiles them with its own target flags. */
#ifndef FASTLSTM_ACTIVATIONS_H
#define FASTLSTM_ACTIVATIONS_H

#include <math.h>
#include "fastlstm.h"

static inline float fl_sigmoid(float x) {
    /* Split by sign so exp never overflows; matches tf.nn.sigmoid to float rounding. */
    if (x >= 0.0f) {
        return 1.0f / (1.0f + expf(-x));
    }
    float e = expf(x);
    return e / (1.0f + e);
}

static inline float fl_softplus(float x) {
    /* log(1 + e^x) without overflow, as tf.math.softplus. */
    return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}

static inline float fl_clampf(float x, float lo, float hi) {
    return x < lo ? lo : (x > hi ? hi : x);
}

/* Keras's ReLU with parameters, as both versions compute it (keras/src/activations/
 * activations.py ReLU.static_call, tf_keras/src/backend.py relu): the part above the threshold
 * (relu when the threshold is 0), clipped to max_value, minus negative_slope times
 * relu(threshold - x). The plain leaky case (no max_value, threshold 0) is the same value. */
static inline float fl_relu_general(const float *param, float x) {
    const float slope = param[0], max_value = param[1], threshold = param[2];
    float pos;
    if (param[3] != 0.0f)          /* x * cast(x > t): NaN and -inf give NaN (x * 0) */
        pos = x > threshold ? x : x * 0.0f;
    else if (threshold != 0.0f)    /* where(x > t, x, 0): NaN gives 0 */
        pos = x > threshold ? x : 0.0f;
    else                           /* relu: NaN stays NaN */
        pos = x < 0.0f ? 0.0f : x;
    pos = pos > max_value ? max_value : pos;   /* clip_by_value keeps NaN */
    if (slope == 0.0f) return pos;
    /* - slope * relu(t - x): relu keeps NaN, so a NaN x is NaN here in both versions. */
    const float t_minus_x = threshold - x;
    return pos - slope * (t_minus_x < 0.0f ? 0.0f : t_minus_x);
}

static inline float fl_activation_scalar(const fl_activation_spec *a, float x) {
    switch (a->id) {
    case FL_ACT_LINEAR: return x;
    case FL_ACT_SIGMOID: return fl_sigmoid(x);
    case FL_ACT_TANH: return tanhf(x);
    case FL_ACT_HARD_SIGMOID_K2: return fl_clampf(0.2f * x + 0.5f, 0.0f, 1.0f);
    case FL_ACT_HARD_SIGMOID_K3: return fl_clampf(x + 3.0f, 0.0f, 6.0f) / 6.0f;
    case FL_ACT_RELU: return x < 0.0f ? 0.0f : x;  /* NaN stays NaN, as in tf.nn.relu */
    case FL_ACT_RELU6: return fl_clampf(x, 0.0f, 6.0f);
    case FL_ACT_LEAKY_RELU: return x > 0.0f ? x : a->param[0] * x;   /* tf.nn.leaky_relu */
    case FL_ACT_ELU: return x > 0.0f ? x : a->param[0] * expm1f(x);
    case FL_ACT_SELU:
        return 1.0507009873554804934193349852946f
               * (x > 0.0f ? x : 1.6732632423543772848170429916717f * expm1f(x));
    case FL_ACT_CELU: return fmaxf(x, 0.0f) + expm1f(fminf(x, 0.0f));
    case FL_ACT_SOFTPLUS: return fl_softplus(x);
    case FL_ACT_SOFTSIGN: return x / (1.0f + fabsf(x));
    case FL_ACT_SILU: return x * fl_sigmoid(x);
    case FL_ACT_HARD_SILU: return x * (fl_clampf(x + 3.0f, 0.0f, 6.0f) / 6.0f);
    case FL_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
    case FL_ACT_GELU_TANH: {
        /* tf.nn.gelu(approximate=True) */
        float inner = 0.7978845608028654f * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.0f + tanhf(inner));
    }
    case FL_ACT_EXPONENTIAL: return expf(x);
    case FL_ACT_MISH: return x * tanhf(fl_softplus(x));
    case FL_ACT_LOG_SIGMOID: return -fl_softplus(-x);
    case FL_ACT_HARD_TANH: return fl_clampf(x, -1.0f, 1.0f);
    case FL_ACT_HARD_SHRINK: return fabsf(x) > 0.5f ? x : 0.0f;
    case FL_ACT_SOFT_SHRINK: return x > 0.5f ? x - 0.5f : (x < -0.5f ? x + 0.5f : 0.0f);
    case FL_ACT_TANH_SHRINK: return x - tanhf(x);
    case FL_ACT_SPARSE_PLUS:
        return x <= -1.0f ? 0.0f : (x < 1.0f ? 0.25f * (x + 1.0f) * (x + 1.0f) : x);
    case FL_ACT_SPARSE_SIGMOID:
        return x <= -1.0f ? 0.0f : (x >= 1.0f ? 1.0f : 0.5f * (x + 1.0f));
    case FL_ACT_SQUAREPLUS: return 0.5f * (x + sqrtf(x * x + 4.0f));
    case FL_ACT_RELU_GENERAL: return fl_relu_general(a->param, x);
    default: return x;
    }
}

static inline int fl_activation_is_rowwise(const fl_activation_spec *a) {
    return a->id >= FL_ACT_FIRST_ROWWISE && a->id < FL_ACT_COUNT;
}

/* A known id with finite parameters (max_value of FL_ACT_RELU_GENERAL may be +inf: none). */
static inline int fl_activation_is_valid(const fl_activation_spec *a) {
    if (a == NULL || a->id < 0 || a->id >= FL_ACT_COUNT) return 0;
    for (int i = 0; i < FL_ACT_PARAMS; i++) {
        const float v = a->param[i];
        const int inf_ok = a->id == FL_ACT_RELU_GENERAL && i == 1 && v > 0.0f;
        if (!isfinite(v) && !(inf_ok && isinf(v))) return 0;
    }
    return 1;
}

#endif
