# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Thin Cython boundary over the C core (src/fastlstm.h).

Every size that C will use is checked here against the arrays that carry it, so C never receives a
pointer with fewer elements than it will touch. The C calls run without the GIL.
"""
import numpy as np

cdef extern from "fastlstm.h" nogil:
    ctypedef struct fl_lstm_params:
        int n_features
        int n_units
        int activation
        int recurrent_activation
        const float *weights
        const float *bias

    int FL_LSTM_BLOCK
    int FL_ACT_COUNT
    int FL_ISA_PORTABLE
    int FL_ISA_AVX2

    int fl_activation_apply(int activation, float *x, Py_ssize_t n_rows, Py_ssize_t n_cols,
                            float *scratch)
    size_t fl_lstm_workspace_floats(const fl_lstm_params *p, Py_ssize_t n_batch,
                                    int n_threads)
    int fl_lstm_forward(const fl_lstm_params *p, Py_ssize_t n_batch, Py_ssize_t n_timesteps,
                        const float *x, float *h, float *c, float *out, int return_sequences,
                        int go_backwards, float *workspace, int n_threads)
    int fl_has_openmp()
    int fl_default_num_threads()
    int fl_cpu_has_avx2_fma()
    int fl_avx2_compiled()
    int fl_get_isa()
    int fl_set_isa(int isa)

LSTM_BLOCK = FL_LSTM_BLOCK
ACTIVATION_COUNT = FL_ACT_COUNT
ISA_NAMES = {FL_ISA_PORTABLE: "portable", FL_ISA_AVX2: "avx2+fma"}


def has_openmp():
    return bool(fl_has_openmp())


def default_num_threads():
    return fl_default_num_threads()


def cpu_has_avx2_fma():
    return bool(fl_cpu_has_avx2_fma())


def avx2_compiled():
    return bool(fl_avx2_compiled())


def get_isa():
    return ISA_NAMES[fl_get_isa()]


def set_isa(str name):
    cdef int isa
    if name == "portable":
        isa = FL_ISA_PORTABLE
    elif name == "avx2+fma":
        isa = FL_ISA_AVX2
    else:
        raise ValueError(f"unknown kernel path {name!r}; expected 'portable' or 'avx2+fma'")
    if fl_set_isa(isa) != 0:
        raise ValueError(f"kernel path {name!r} is not available on this CPU or in this build")


def activation_apply(int activation, float[:, ::1] x):  # x: IN/OUT (n_rows, n_cols)
    """Apply an activation in place over rows (row-wise ones act along the last axis)."""
    if activation < 0 or activation >= FL_ACT_COUNT:
        raise ValueError(f"unknown activation id {activation}")
    cdef float[::1] scratch = np.empty(max(x.shape[1], 1), dtype=np.float32)
    cdef int rc
    with nogil:
        rc = fl_activation_apply(activation, &x[0, 0] if x.shape[0] * x.shape[1] > 0 else NULL,
                                 x.shape[0], x.shape[1], &scratch[0])
    if rc != 0:
        raise ValueError("activation_apply: invalid arguments")


cdef class LSTMKernel:
    """Packed weights of one LSTM layer and its cached workspace."""
    cdef fl_lstm_params params
    cdef object _weights, _bias
    # Workspaces are taken from and returned to this pool (list.pop/append are atomic under the
    # GIL), so concurrent calls from several threads never share one and steady-state calls
    # allocate nothing.
    cdef list _pool
    cdef readonly int n_features, n_units

    def __cinit__(self, weights, bias, int n_features, int n_units, int activation,
                  int recurrent_activation):
        # weights: IN (n_blocks, n_features + n_units, 4, B); bias: IN (n_blocks, 4, B) -- the
        # packed layout of src/fastlstm.h.
        cdef Py_ssize_t n_blocks = (n_units + FL_LSTM_BLOCK - 1) // FL_LSTM_BLOCK
        cdef const float[:, :, :, ::1] weights_v
        cdef const float[:, :, ::1] bias_v
        if n_units < 1 or n_features < 1:
            raise ValueError(f"LSTM needs units >= 1 and features >= 1, got {n_units}, "
                             f"{n_features}")
        expected = (n_blocks, n_features + n_units, 4, FL_LSTM_BLOCK)
        if np.shape(weights) != expected:
            raise ValueError(f"packed weights have shape {np.shape(weights)}, expected {expected}")
        if np.shape(bias) != (n_blocks, 4, FL_LSTM_BLOCK):
            raise ValueError(f"packed bias has shape {np.shape(bias)}, expected "
                             f"{(n_blocks, 4, FL_LSTM_BLOCK)}")
        for act in (activation, recurrent_activation):
            if act < 0 or act >= FL_ACT_COUNT:
                raise ValueError(f"unknown activation id {act}")
        weights_v = weights
        bias_v = bias
        # The memoryviews keep the packed arrays alive for the raw pointers below.
        self._weights = weights_v
        self._bias = bias_v
        self.n_features = n_features
        self.n_units = n_units
        self.params.n_features = self.n_features
        self.params.n_units = n_units
        self.params.activation = activation
        self.params.recurrent_activation = recurrent_activation
        self.params.weights = &weights_v[0, 0, 0, 0]
        self.params.bias = &bias_v[0, 0, 0]
        self._pool = []

    cdef object _take_workspace(self, Py_ssize_t n_batch, int n_threads):
        cdef size_t need = fl_lstm_workspace_floats(&self.params, n_batch, n_threads)
        try:
            ws = self._pool.pop()
        except IndexError:
            ws = None
        if ws is None or ws.shape[0] < need:
            ws = np.empty(need, dtype=np.float32)
        return ws

    def forward(self,
                const float[:, :, ::1] x,   # IN (n_batch, n_timesteps, n_features)
                float[:, ::1] h,            # IN/OUT (n_batch, n_units)
                float[:, ::1] c,            # IN/OUT (n_batch, n_units)
                out,                        # OUT (n_batch, n_timesteps, n_units) or (n_batch, n_units)
                bint return_sequences, bint go_backwards, int n_threads):
        cdef Py_ssize_t n_batch = x.shape[0], n_timesteps = x.shape[1]
        cdef float[:, :, ::1] out3
        cdef float[:, ::1] out2
        cdef float *out_ptr
        cdef float[::1] ws
        cdef int rc
        if x.shape[2] != self.n_features:
            raise ValueError(f"LSTM expects {self.n_features} features per timestep, "
                             f"got {x.shape[2]}")
        if n_timesteps < 1:
            raise ValueError("LSTM needs at least one timestep, got 0")
        if h.shape[0] != n_batch or h.shape[1] != self.n_units:
            raise ValueError(f"state h has shape {(h.shape[0], h.shape[1])}, "
                             f"expected {(n_batch, self.n_units)}")
        if c.shape[0] != n_batch or c.shape[1] != self.n_units:
            raise ValueError(f"state c has shape {(c.shape[0], c.shape[1])}, "
                             f"expected {(n_batch, self.n_units)}")
        if n_threads < 1:
            raise ValueError(f"n_threads must be >= 1, got {n_threads}")
        if return_sequences:
            out3 = out
            if (out3.shape[0], out3.shape[1], out3.shape[2]) != (n_batch, n_timesteps, self.n_units):
                raise ValueError("output buffer has the wrong shape")
        else:
            out2 = out
            if (out2.shape[0], out2.shape[1]) != (n_batch, self.n_units):
                raise ValueError("output buffer has the wrong shape")
        if n_batch == 0:
            return
        out_ptr = &out3[0, 0, 0] if return_sequences else &out2[0, 0]
        ws_obj = self._take_workspace(n_batch, n_threads)
        ws = ws_obj
        with nogil:
            rc = fl_lstm_forward(&self.params, n_batch, n_timesteps, &x[0, 0, 0], &h[0, 0],
                                 &c[0, 0], out_ptr, return_sequences, go_backwards, &ws[0],
                                 n_threads)
        self._pool.append(ws_obj)
        if rc != 0:
            raise ValueError("fl_lstm_forward rejected its arguments")
