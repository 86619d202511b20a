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

static inline float fl_activation_scalar(int act, float x) {
    switch (act) {
    case FL_ACT_LINEAR: return x;
    case FL_ACT_SIGMOID: return fl_sigmoid(x);
    case FL_ACT_TANH: return tanhf(x);
    case FL_ACT_HARD_SIGMOID_K2: return fl_clampf(0.2f * x + 0.5f, 0.0f, 1.0f);
    case FL_ACT_HARD_SIGMOID_K3: return fl_clampf(x + 3.0f, 0.0f, 6.0f) / 6.0f;
    case FL_ACT_RELU: return x < 0.0f ? 0.0f : x;  /* NaN stays NaN, as in tf.nn.relu */
    case FL_ACT_RELU6: return fl_clampf(x, 0.0f, 6.0f);
    case FL_ACT_LEAKY_RELU: return x >= 0.0f ? x : 0.2f * x;
    case FL_ACT_ELU: return x > 0.0f ? x : expm1f(x);
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
    default: return x;
    }
}

static inline int fl_activation_is_rowwise(int act) {
    return act >= FL_ACT_FIRST_ROWWISE && act < FL_ACT_COUNT;
}

static inline int fl_activation_is_valid(int act) {
    return act >= 0 && act < FL_ACT_COUNT;
}

#endif
