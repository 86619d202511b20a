# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Thin Cython boundary over the C core (src/fastlstm.h).

Every size that C will use is checked here against the arrays that carry it, so C never receives a
pointer with fewer elements than it will touch. The C calls run without the GIL.
"""
import numpy as np
cimport numpy as cnp
from libc.string cimport memset
from libc.limits cimport INT_MAX
from cpython.pyport cimport PY_SSIZE_T_MAX
from cpython.mem cimport PyMem_Malloc, PyMem_Realloc, PyMem_Free

cnp.import_array()

from cpython.pythread cimport (PyThread_type_lock, PyThread_allocate_lock, PyThread_free_lock,
                               PyThread_acquire_lock, PyThread_release_lock, WAIT_LOCK, NOWAIT_LOCK)

cdef extern from "fastlstm.h" nogil:
    int fl_effective_threads(int n_requested)
    int fl_fork_serial()
    void fl_set_late_join_for_tests(Py_ssize_t steps)
    void fl_last_team_for_tests(int *n_team, Py_ssize_t *first_shared_step)
    int FL_ERR_MEMORY

# Threads for the kernels, set by fastlstm.set_num_threads; a C global so that the per-call path
# reads it without a Python lookup. At most the processors when it was set (C clamps again on
# every call, e.g. in a fork child), so that workspaces are sized for the threads that run.
cdef int g_num_threads = 1


def set_threads(n):
    """n: a Python int >= 1 (validated by the caller); stores min(n, usable threads)."""
    global g_num_threads
    g_num_threads = fl_effective_threads(<int>min(n, INT_MAX))


def get_threads():
    return fl_effective_threads(g_num_threads)


def max_threads():
    """The most threads a call can use in this process (1 without OpenMP or in a fork child
    whose OpenMP pool did not survive the fork)."""
    return fl_effective_threads(INT_MAX)


def fork_serial():
    return bool(fl_fork_serial())


def set_late_join_for_tests(Py_ssize_t steps):
    """Tests only: with steps > 0 every worker thread joins late by construction (src/team.h);
    0 turns it off."""
    fl_set_late_join_for_tests(steps)


def last_team_for_tests():
    """Tests only, recorded while set_late_join_for_tests is on: (threads that shared the last
    kernel call, first step they shared in generation split by units, else 0)."""
    cdef int n_team = 0
    cdef Py_ssize_t first = 0
    fl_last_team_for_tests(&n_team, &first)
    return n_team, first


cdef int raise_kernel_error(int rc) except -1:
    """A nonzero return code of the C core as a Python exception."""
    if rc == FL_ERR_MEMORY:
        raise MemoryError("the C core could not allocate its per-call tables")
    raise ValueError("a kernel rejected its arguments")


def as_float32(x):
    """x as what the kernels read: C-contiguous, aligned float32 in this machine's byte order
    (a copy only when x is not that already)."""
    return np.require(x, np.float32, ("C_CONTIGUOUS", "ALIGNED"))


# The kernels' weight buffers start on a cache line (64 bytes, also an AVX-512 vector): a
# 32-byte AVX2 load from a buffer 48 bytes past a line crosses lines on every other load.
WEIGHT_ALIGNMENT = 64


def aligned_copy(a):
    """A C-contiguous float32 copy of a whose first element starts on a WEIGHT_ALIGNMENT-byte
    boundary."""
    a = np.asarray(a)
    cdef Py_ssize_t n = a.size, pad = WEIGHT_ALIGNMENT // 4
    buf = np.empty(n + pad, dtype=np.float32)
    cdef Py_ssize_t offset = ((-<Py_ssize_t>buf.ctypes.data) % WEIGHT_ALIGNMENT) // 4
    out = buf[offset:offset + n].reshape(a.shape)
    np.copyto(out, a, casting="unsafe")
    return out


cdef inline bint is_native_float32(cnp.ndarray a):
    """What the raw-pointer paths assume of an array: float32 in this machine's byte order,
    aligned. A big-endian '>f4' array has the same type number, so the byte order is checked
    too."""
    return (cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32 and cnp.PyArray_ISNOTSWAPPED(a)
            and cnp.PyArray_ISALIGNED(a))


cdef class StateLock:
    """The one lock type: it serialises the calls that advance one StateStore (a stateful
    model's own state, or a handle's), because each call reads the state the previous one
    left. A C-level lock: taking it on the per-call path costs tens of nanoseconds, and a
    waiting thread releases the GIL so the holder can finish."""
    cdef PyThread_type_lock _lock

    def __cinit__(self):
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError("cannot allocate a lock")

    def __dealloc__(self):
        if self._lock != NULL:
            PyThread_free_lock(self._lock)

    cdef inline void acquire(self):
        if not PyThread_acquire_lock(self._lock, NOWAIT_LOCK):
            with nogil:
                PyThread_acquire_lock(self._lock, WAIT_LOCK)

    cdef inline void release(self):
        PyThread_release_lock(self._lock)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
        return False


cdef class StateStore:
    """The recurrent state of one batch of streams: for each slot (a recurrent layer) its h,
    and c for an LSTM, as C-contiguous (batch, units) float32 views of one allocation. The
    model's own state and every handle are one of these; the executor passes their pointers
    to C at each call, so nothing outside holds them."""
    cdef readonly object data        # the one allocation, 1-D float32
    cdef readonly list arrays        # per slot: [h] or [h, c] views of data
    cdef readonly tuple layout       # per slot: (units, number of states)
    cdef readonly Py_ssize_t batch_size
    cdef readonly StateLock lock
    cdef float **parts               # per slot: h, then c or NULL
    cdef Py_ssize_t *units           # per slot
    cdef int n_slots

    def __cinit__(self, Py_ssize_t batch_size, layout, data=None):
        """layout: ((units, n_states), ...) with n_states 1 or 2; data: None (zeros) or a
        1-D array of the size this layout takes, copied."""
        cdef Py_ssize_t n = 0, units, n_states
        self.parts = NULL
        self.units = NULL
        if batch_size < 1:
            raise ValueError(f"a state holds at least one row, got batch_size={batch_size}")
        self.layout = tuple((int(u), int(k)) for u, k in layout)
        for units, n_states in self.layout:
            if units < 1 or n_states not in (1, 2):
                raise ValueError(f"state slot ({units}, {n_states}): expected units >= 1 and "
                                 "1 or 2 states")
            n += batch_size * units * n_states
        self.batch_size = batch_size
        self.data = aligned_copy(np.zeros(n, np.float32)) if data is None else aligned_copy(data)
        if self.data.shape != (n,):
            raise ValueError(f"state data has shape {self.data.shape}, this layout takes ({n},)")
        self.n_slots = len(self.layout)
        self.parts = <float **>PyMem_Malloc((2 * self.n_slots + 1) * sizeof(float *))
        self.units = <Py_ssize_t *>PyMem_Malloc((self.n_slots + 1) * sizeof(Py_ssize_t))
        if self.parts == NULL or self.units == NULL:
            raise MemoryError("cannot allocate the state table")
        self.arrays = []
        cdef Py_ssize_t at = 0, slot = 0
        cdef cnp.ndarray view
        for units, n_states in self.layout:
            self.units[slot] = units
            views = []
            for k in range(2):
                if k < n_states:
                    view = self.data[at:at + batch_size * units].reshape(batch_size, units)
                    self.parts[2 * slot + k] = <float *>cnp.PyArray_DATA(view)
                    views.append(view)
                    at += batch_size * units
                else:
                    self.parts[2 * slot + k] = NULL
            self.arrays.append(views)
            slot += 1
        self.lock = StateLock()

    def __dealloc__(self):
        PyMem_Free(self.parts)
        PyMem_Free(self.units)

    cdef inline float *h(self, int slot):
        return self.parts[2 * slot]

    cdef inline float *c(self, int slot):
        return self.parts[2 * slot + 1]

cdef extern from "fastlstm.h" nogil:
    enum: FL_ACT_PARAMS
    ctypedef struct fl_activation_spec:
        int id
        float param[FL_ACT_PARAMS]
    ctypedef struct fl_rnn_params:
        int cell
        int n_features
        int n_units
        fl_activation_spec activation
        fl_activation_spec recurrent_activation
        const float *weights
        const float *bias

    int FL_RNN_BLOCK
    int FL_CELL_LSTM
    int FL_CELL_GRU
    int FL_CELL_GRU_RESET_BEFORE
    int FL_CELL_SIMPLE
    int FL_CELL_COUNT
    int FL_ACT_COUNT
    int FL_ACT_LEAKY_RELU
    int FL_ACT_ELU
    int FL_ACT_RELU_GENERAL
    int FL_ISA_PORTABLE
    int FL_ISA_AVX2

    int fl_activation_apply(const fl_activation_spec *activation, float *x, Py_ssize_t n_rows,
                            Py_ssize_t n_cols, float *scratch)
    int fl_rnn_block_units(int cell)
    size_t fl_rnn_packed_floats(int cell, Py_ssize_t n_features, Py_ssize_t n_units)
    size_t fl_rnn_workspace_floats(const fl_rnn_params *p, Py_ssize_t n_batch,
                                    int n_threads)
    int fl_rnn_forward(const fl_rnn_params *p, Py_ssize_t n_batch, Py_ssize_t n_timesteps,
                       const float *x, float *h, float *c, float *out, int return_sequences,
                       int go_backwards, float *workspace, int n_threads)
    int fl_rnn_forward_masked(const fl_rnn_params *p, Py_ssize_t n_batch,
                              Py_ssize_t n_timesteps, const float *x, const unsigned char *mask,
                              int zero_output_for_mask, float *h, float *c, float *out,
                              int return_sequences, int go_backwards, float *workspace,
                              int n_threads)
    int fl_has_openmp()
    int fl_default_num_threads()
    int FL_ISA_AVX512
    int FL_ISA_COUNT
    int fl_isa_compiled(int isa)
    int fl_isa_supported(int isa)
    int fl_get_isa()
    int fl_set_isa(int isa)

RNN_BLOCK = FL_RNN_BLOCK
CELLS = {"lstm": FL_CELL_LSTM, "gru": FL_CELL_GRU,
         "gru_reset_before": FL_CELL_GRU_RESET_BEFORE, "simple": FL_CELL_SIMPLE}


def rnn_block_units(int cell):
    """Units per packed block of a cell (src/fastlstm.h)."""
    if cell < 0 or cell >= FL_CELL_COUNT:
        raise ValueError(f"unknown cell id {cell}")
    return fl_rnn_block_units(cell)
ACTIVATION_COUNT = FL_ACT_COUNT
ACTIVATION_PARAMS = FL_ACT_PARAMS
# How many parameters each id takes (src/fastlstm.h enum fl_activation); the others take none.
_ACTIVATION_N_PARAMS = {FL_ACT_LEAKY_RELU: 1, FL_ACT_ELU: 1, FL_ACT_RELU_GENERAL: 4}


cdef extern from "activations.h" nogil:
    int fl_activation_is_valid(const fl_activation_spec *a)


cdef fl_activation_spec activation_spec(object activation) except *:
    """The fl_activation_spec of an (id, params) pair (activations.CActivation): a known id,
    at most FL_ACT_PARAMS finite parameters (a ReLU's max_value may be +inf: none)."""
    cdef fl_activation_spec spec
    cdef int i
    act_id, params = activation
    params = tuple(params)
    if not 0 <= act_id < FL_ACT_COUNT:
        raise ValueError(f"unknown activation id {act_id}")
    n_params = _ACTIVATION_N_PARAMS.get(act_id, 0)
    if len(params) != n_params:
        raise ValueError(f"activation {act_id} takes {n_params} parameters, got {len(params)}")
    spec.id = act_id
    for i in range(FL_ACT_PARAMS):
        spec.param[i] = params[i] if i < len(params) else 0.0
    if not fl_activation_is_valid(&spec):
        raise ValueError(f"activation {act_id}: invalid parameters {params}")
    return spec
# In fallback order (src/fastlstm.h enum fl_isa).
ISA_NAMES = ("portable", "avx2", "avx512")
assert len(ISA_NAMES) == FL_ISA_COUNT, "ISA names out of sync with fastlstm.h"


def has_openmp():
    return bool(fl_has_openmp())


def default_num_threads():
    return fl_default_num_threads()


def compiled_isas():
    """The instruction sets this build has kernels for, in fallback order."""
    return [name for i, name in enumerate(ISA_NAMES) if fl_isa_compiled(i)]


def supported_isas():
    """The compiled ones this CPU and OS run."""
    return [name for i, name in enumerate(ISA_NAMES) if fl_isa_supported(i)]


def get_isa():
    return ISA_NAMES[fl_get_isa()]


def set_isa(str name):
    """name: one of ISA_NAMES (checked by the caller); ValueError when it cannot run here."""
    if fl_set_isa(ISA_NAMES.index(name)) != 0:
        raise ValueError(f"instruction set {name!r} is not available here: this build has "
                         f"{compiled_isas()}, this CPU runs {supported_isas()}")


def activation_apply(activation, float[:, ::1] x):  # x: IN/OUT (n_rows, n_cols)
    """Apply an activation ((id, params), activations.CActivation) in place over rows
    (row-wise ones act along the last axis)."""
    cdef fl_activation_spec spec = activation_spec(activation)
    cdef float[::1] scratch = np.empty(max(x.shape[1], 1), dtype=np.float32)
    cdef int rc
    with nogil:
        rc = fl_activation_apply(&spec, &x[0, 0] if x.shape[0] * x.shape[1] > 0 else NULL,
                                 x.shape[0], x.shape[1], &scratch[0])
    if rc != 0:
        raise ValueError("activation_apply: invalid arguments")


cdef class RecurrentKernel:
    """Packed weights of one recurrent layer (any cell of src/fastlstm.h) and its cached
    workspaces."""
    cdef fl_rnn_params params
    cdef object _weights, _bias
    # Workspaces are taken from and returned to this pool (list.pop/append are atomic under the
    # GIL), so concurrent calls from several threads never share one and steady-state calls
    # allocate nothing.
    cdef list _pool
    cdef readonly int n_features, n_units, cell
    cdef public str name      # the layer's, for messages

    def __cinit__(self, int cell, weights, bias, int n_features, int n_units, activation,
                  recurrent_activation):
        # weights: IN flat, the cell's packed layout; bias: IN flat (n_blocks, 4, RNN_BLOCK).
        cdef const float[::1] weights_v
        cdef const float[::1] bias_v
        if cell < 0 or cell >= FL_CELL_COUNT:
            raise ValueError(f"unknown cell id {cell}")
        if n_units < 1 or n_features < 1:
            raise ValueError(f"a recurrent layer needs units >= 1 and features >= 1, got "
                             f"{n_units}, {n_features}")
        cdef Py_ssize_t block_units = fl_rnn_block_units(cell)
        cdef Py_ssize_t n_blocks = (n_units + block_units - 1) // block_units
        expected = fl_rnn_packed_floats(cell, n_features, n_units)
        if np.ndim(weights) != 1 or np.shape(weights)[0] != expected:
            raise ValueError(f"packed weights have shape {np.shape(weights)}, expected "
                             f"({expected},)")
        if np.ndim(bias) != 1 or np.shape(bias)[0] != n_blocks * 4 * FL_RNN_BLOCK:
            raise ValueError(f"packed bias has shape {np.shape(bias)}, expected "
                             f"({n_blocks * 4 * FL_RNN_BLOCK},)")
        cdef fl_activation_spec act = activation_spec(activation)
        cdef fl_activation_spec rec_act = activation_spec(recurrent_activation)
        # Owned copies: assign() rewrites them in place, and the raw pointers below (also held
        # by compiled stacks) stay valid for the kernel's life.
        self._weights = aligned_copy(weights)
        self._bias = aligned_copy(bias)
        weights_v = self._weights
        bias_v = self._bias
        self.cell = cell
        self.n_features = n_features
        self.n_units = n_units
        self.params.cell = cell
        self.params.n_features = n_features
        self.params.n_units = n_units
        self.params.activation = act
        self.params.recurrent_activation = rec_act
        self.params.weights = &weights_v[0]
        self.params.bias = &bias_v[0]
        self._pool = []
        self.name = "recurrent"

    def assign(self, weights, bias):
        """New packed weights and bias, copied into this kernel's own buffers. Keras's
        set_weights assigns a layer's variables in place (keras/src/layers/layer.py
        set_weights -> variable.assign), and so does this: every compiled stack holding the
        kernel runs on the new values."""
        if np.shape(weights) != self._weights.shape or np.shape(bias) != self._bias.shape:
            raise ValueError(f"packed weights {np.shape(weights)} and bias {np.shape(bias)} do "
                             f"not match the kernel's {self._weights.shape} and "
                             f"{self._bias.shape}")
        np.copyto(self._weights, weights, casting="same_kind")
        np.copyto(self._bias, bias, casting="same_kind")

    cdef object _take_workspace(self, Py_ssize_t n_batch, int n_threads):
        cdef size_t need = fl_rnn_workspace_floats(&self.params, n_batch, n_threads)
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
                float[:, ::1] c,            # IN/OUT (n_batch, n_units); None for a GRU or SimpleRNN
                out,                        # OUT (n_batch, n_timesteps, n_units) or (n_batch, n_units)
                bint return_sequences, bint go_backwards, int n_threads,
                mask=None,                  # IN (n_batch, n_timesteps) uint8, 0 = masked step
                bint zero_output_for_mask=False):
        cdef Py_ssize_t n_batch = x.shape[0], n_timesteps = x.shape[1]
        cdef const unsigned char[:, ::1] mask_v
        cdef const unsigned char *mask_ptr = NULL
        cdef float[:, :, ::1] out3
        cdef float[:, ::1] out2
        cdef float *out_ptr
        cdef float[::1] ws
        cdef int rc
        where = f"layer {self.name!r}"
        if x.shape[2] != self.n_features:
            raise ValueError(f"{where} expects {self.n_features} features per timestep, got "
                             f"{x.shape[2]}")
        if n_timesteps < 1:
            raise ValueError(f"{where} needs at least one timestep, got 0")
        if h.shape[0] != n_batch or h.shape[1] != self.n_units:
            raise ValueError(f"{where}: state h has shape {(h.shape[0], h.shape[1])}, "
                             f"expected {(n_batch, self.n_units)}")
        if c is None:
            if self.cell == FL_CELL_LSTM:
                raise ValueError(f"{where}: an LSTM needs its state c of shape "
                                 f"{(n_batch, self.n_units)}, got None")
        elif c.shape[0] != n_batch or c.shape[1] != self.n_units:
            raise ValueError(f"{where}: state c has shape {(c.shape[0], c.shape[1])}, "
                             f"expected {(n_batch, self.n_units)}")
        if n_threads < 1:
            raise ValueError(f"n_threads must be >= 1, got {n_threads}")
        if mask is not None:
            mask_v = mask
            if mask_v.shape[0] != n_batch or mask_v.shape[1] != n_timesteps:
                raise ValueError(f"{where}: mask has shape {(mask_v.shape[0], mask_v.shape[1])}, "
                                 f"expected {(n_batch, n_timesteps)}")
        if return_sequences:
            out3 = out
            if (out3.shape[0], out3.shape[1], out3.shape[2]) != (n_batch, n_timesteps, self.n_units):
                raise ValueError(f"{where}: output buffer has the wrong shape")
        else:
            out2 = out
            if (out2.shape[0], out2.shape[1]) != (n_batch, self.n_units):
                raise ValueError(f"{where}: output buffer has the wrong shape")
        if n_batch == 0:
            return
        out_ptr = &out3[0, 0, 0] if return_sequences else &out2[0, 0]
        ws_obj = self._take_workspace(n_batch, n_threads)
        ws = ws_obj
        if mask is not None:
            mask_ptr = &mask_v[0, 0]
        cdef float *c_ptr = NULL if c is None else &c[0, 0]
        with nogil:
            rc = fl_rnn_forward_masked(&self.params, n_batch, n_timesteps, &x[0, 0, 0],
                                       mask_ptr, zero_output_for_mask, &h[0, 0], c_ptr,
                                       out_ptr, return_sequences, go_backwards, &ws[0],
                                       n_threads)
        self._pool.append(ws_obj)
        if rc != 0:
            raise ValueError("fl_rnn_forward rejected its arguments")


cdef extern from "fastlstm.h" nogil:
    ctypedef struct fl_op:
        int kind
        const fl_rnn_params *rnn
        int return_sequences
        int go_backwards
        const float *kernel
        const float *bias
        Py_ssize_t n_in
        Py_ssize_t n_out
        fl_activation_spec activation
        int rank_out
    ctypedef struct fl_op_state:
        float *h
        float *c
    ctypedef struct fl_stack:
        const fl_op *ops
        int n_ops
        Py_ssize_t n_features
    ctypedef struct fl_stack_workspace:
        size_t floats
    int FL_OP_RNN
    int FL_OP_DENSE
    int FL_OP_ACTIVATION
    int FL_STACK_FORWARD
    int FL_STACK_GENERATE
    int FL_STACK_GENERATE_SLIDE
    fl_stack_workspace fl_stack_workspace_size(const fl_stack *s, int call,
                                               const fl_op_state *states, Py_ssize_t n_batch,
                                               Py_ssize_t n_timesteps, int n_threads)
    int fl_stack_forward(const fl_stack *s, const fl_op_state *states, Py_ssize_t n_batch,
                         Py_ssize_t n_timesteps, const float *x, float *out, float *workspace,
                         int n_threads)
    int fl_stack_generate(const fl_stack *s, const fl_op_state *states, Py_ssize_t n_batch,
                          Py_ssize_t n_timesteps, const float *x, float *y, Py_ssize_t n_steps,
                          int slide, float *workspace, int n_threads)
    size_t fl_dense_scratch_floats(Py_ssize_t n_out)
    int fl_dense_forward(const float *x, Py_ssize_t n_rows, Py_ssize_t n_in, const float *kernel,
                         const float *bias, Py_ssize_t n_out,
                         const fl_activation_spec *activation, float *y, float *scratch)

def dense_forward(const float[:, ::1] x, const float[:, ::1] kernel, bias, activation):
    """act(x @ kernel + bias) for x (n_rows, n_in) -> a new (n_rows, n_out) float32 array: the
    same C loop as the compiled stacks, so a model gives the same bits on either path."""
    cdef const float[::1] bv
    cdef const float *bp = NULL
    cdef Py_ssize_t n_rows = x.shape[0], n_in = x.shape[1], n_out = kernel.shape[1]
    cdef int rc
    if kernel.shape[0] != n_in or n_in < 1 or n_out < 1:
        raise ValueError(f"Dense kernel has shape {(kernel.shape[0], n_out)}, input has {n_in} "
                         "features")
    cdef fl_activation_spec spec = activation_spec(activation)
    if bias is not None:
        bv = bias
        if bv.shape[0] != n_out:
            raise ValueError(f"Dense bias has {bv.shape[0]} values, expected {n_out}")
        bp = &bv[0]
    out = np.empty((n_rows, n_out), dtype=np.float32)
    if n_rows == 0:
        return out
    cdef float[:, ::1] ov = out
    cdef float[::1] scratch = np.empty(fl_dense_scratch_floats(n_out), dtype=np.float32)
    with nogil:
        rc = fl_dense_forward(&x[0, 0], n_rows, n_in, &kernel[0, 0], bp, n_out, &spec,
                              &ov[0, 0], &scratch[0])
    if rc != 0:
        raise ValueError("dense_forward: invalid arguments")
    return out



cdef extern from "fastlstm.h" nogil:
    int fl_conv_forward(int rank, Py_ssize_t n_batch, const Py_ssize_t *size_in,
                        Py_ssize_t n_channels, const float *x, const Py_ssize_t *window,
                        Py_ssize_t n_filters, const float *kernel, const Py_ssize_t *strides,
                        const Py_ssize_t *dilations, float *y, int n_threads)

# Spatial axes the direct correlation takes.
CONV_MAX_RANK = 3


def _positive_ints(values, int rank, str what):
    """values as a tuple of rank Python ints >= 1, or ValueError naming what they are."""
    try:
        out = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be {rank} integers, got {values!r}") from None
    if len(out) != rank or any(v < 1 for v in out):
        raise ValueError(f"{what} must be {rank} integers >= 1, got {values!r}")
    return out


def correlate_direct(x, kernel, strides, dilations, int n_threads):
    """The valid cross-correlation of x (n_batch, *spatial, n_channels), already padded, with a
    Keras kernel (*window, n_channels, n_filters), groups == 1, 1 to 3 spatial axes: a new
    float32 (n_batch, *out, n_filters), out = (n - ((k - 1) * d + 1)) // s + 1 per axis, by the
    direct C loop (src/conv_simd.h): the same bits on every SIMD ISA and thread count.

    ValueError on wrong ranks, a kernel whose channels are not x's, or an axis shorter than its
    dilated window."""
    x = as_float32(x)
    kernel = as_float32(kernel)
    cdef int rank = kernel.ndim - 2
    if rank < 1 or rank > CONV_MAX_RANK:
        raise ValueError(f"a convolution kernel has 1 to {CONV_MAX_RANK} spatial axes plus "
                         f"(channels, filters), got shape {kernel.shape}")
    if x.ndim != rank + 2:
        raise ValueError(f"a kernel of {rank} spatial axes takes inputs of rank {rank + 2} "
                         f"(batch, *spatial, channels), got shape {x.shape}")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    stride_t = _positive_ints(strides, rank, "strides")
    dilation_t = _positive_ints(dilations, rank, "dilations")
    window_t = tuple(int(k) for k in kernel.shape[:rank])
    spatial_t = tuple(int(n) for n in x.shape[1:1 + rank])
    n_channels, n_filters = int(kernel.shape[rank]), int(kernel.shape[rank + 1])
    if n_channels < 1 or n_filters < 1 or min(window_t) < 1:
        raise ValueError(f"a convolution kernel needs a window, channels and filters, got shape "
                         f"{kernel.shape}")
    if int(x.shape[rank + 1]) != n_channels:
        raise ValueError(f"the kernel takes {n_channels} channels, the input has "
                         f"{x.shape[rank + 1]}")
    spans = tuple((k - 1) * d + 1 for k, d in zip(window_t, dilation_t))
    if any(n < span for n, span in zip(spatial_t, spans)):
        raise ValueError(f"an input of spatial shape {spatial_t} is smaller than the dilated "
                         f"window {spans}")
    out_t = tuple((n - span) // s + 1 for n, span, s in zip(spatial_t, spans, stride_t))
    n_batch = int(x.shape[0])
    n_out = n_batch * n_filters
    for n in out_t:
        n_out *= n
    if n_out * 4 > PY_SSIZE_T_MAX:
        raise ValueError(f"an output of shape {(n_batch,) + out_t + (n_filters,)} is too large")
    y = np.empty((n_batch,) + out_t + (n_filters,), dtype=np.float32)
    if n_out == 0:
        return y
    cdef Py_ssize_t size_in[3]
    cdef Py_ssize_t window[3]
    cdef Py_ssize_t stride[3]
    cdef Py_ssize_t dilation[3]
    cdef int i
    for i in range(rank):
        size_in[i] = spatial_t[i]
        window[i] = window_t[i]
        # Past the axis a stride or (with a window of 1) a dilation changes nothing: clamped,
        # so that any Python int fits.
        stride[i] = min(stride_t[i], spatial_t[i])
        dilation[i] = min(dilation_t[i], spatial_t[i])
    cdef Py_ssize_t nb = n_batch, nc = n_channels, nf = n_filters
    cdef const float *xp = <const float *>cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef const float *kp = <const float *>cnp.PyArray_DATA(<cnp.ndarray>kernel)
    cdef float *yp = <float *>cnp.PyArray_DATA(<cnp.ndarray>y)
    cdef int rc
    with nogil:
        rc = fl_conv_forward(rank, nb, size_in, nc, xp, window, nf, kp, stride, dilation, yp,
                             n_threads)
    if rc != 0:
        raise_kernel_error(rc)
    return y

cdef class StackPlan:
    """A chain of recurrent (LSTM, GRU, SimpleRNN), Dense and Activation layers run by the C
    stack executor (src/stack.c) in one call from Python: the per-call path validates the input,
    takes a cached workspace and makes one nogil call, so a batch-1 single-step predict costs
    little beyond the kernels themselves. The ops point at the layers' own weight buffers, which
    live as long as the layers and are only ever assigned in place; the state a call advances
    is a StateStore given with the call, each recurrent op naming its slot in the model's own
    store and in a handle's."""
    cdef fl_op *ops           # (capacity): any number of layers
    cdef int *own_slot        # (capacity): a recurrent op's slot in the model's own store, else -1
    cdef int *handle_slot     # (capacity): its slot in a handle's store (-1: not recurrent)
    cdef int n_ops, capacity
    cdef list _keep
    cdef dict _pools          # (batch, timesteps, threads) -> free workspaces
    cdef list _last_pool      # the pool of the last call's key, found without a dict lookup
    cdef Py_ssize_t _last_batch, _last_timesteps
    cdef int _last_threads
    cdef readonly Py_ssize_t n_features, fixed_timesteps, fixed_batch, width
    cdef readonly int rank

    def __cinit__(self, Py_ssize_t n_features, fixed_timesteps, fixed_batch):
        self.ops = NULL
        self.own_slot = self.handle_slot = NULL
        self.n_ops = self.capacity = 0
        self._keep = []
        self._pools = {}
        self._last_pool = None
        self._last_batch = self._last_timesteps = -1
        self._last_threads = -1
        self.n_features = n_features
        self.width = n_features
        self.rank = 3
        self.fixed_timesteps = -1 if fixed_timesteps is None else fixed_timesteps
        self.fixed_batch = -1 if fixed_batch is None else fixed_batch

    def __dealloc__(self):
        PyMem_Free(self.ops)
        PyMem_Free(self.own_slot)
        PyMem_Free(self.handle_slot)

    @property
    def n_layers_fused(self):
        return self.n_ops

    cdef int _grow(self) except -1:
        cdef int grown_capacity = 2 * self.capacity + 8
        cdef void *grown = PyMem_Realloc(self.ops, grown_capacity * sizeof(fl_op))
        if grown == NULL:
            raise MemoryError("cannot grow the compiled stack")
        self.ops = <fl_op *>grown
        for table in range(2):
            grown = PyMem_Realloc(self.own_slot if table == 0 else self.handle_slot,
                                  grown_capacity * sizeof(int))
            if grown == NULL:
                raise MemoryError("cannot grow the compiled stack")
            if table == 0:
                self.own_slot = <int *>grown
            else:
                self.handle_slot = <int *>grown
        self.capacity = grown_capacity
        return 0

    cdef fl_op *_new_op(self, int kind, Py_ssize_t n_out, int rank_out) except NULL:
        if self.n_ops == self.capacity:
            self._grow()
        cdef fl_op *op = &self.ops[self.n_ops]
        memset(op, 0, sizeof(fl_op))
        self.own_slot[self.n_ops] = self.handle_slot[self.n_ops] = -1
        op.kind = kind
        op.n_in = self.width
        op.n_out = n_out
        op.rank_out = rank_out
        self.n_ops += 1
        self.width = n_out
        self.rank = rank_out
        return op

    def add_rnn(self, RecurrentKernel kernel, bint return_sequences, bint go_backwards,
                int own_slot, int handle_slot):
        """own_slot: the layer's slot in the model's own StateStore (-1: stateless layer);
        handle_slot: its slot in a handle's."""
        if self.rank != 3 or kernel.n_features != self.width:
            raise ValueError(f"a recurrent layer expects (batch, timesteps, "
                             f"{kernel.n_features}) input, the stack carries rank {self.rank} "
                             f"width {self.width}")
        if handle_slot < 0 or own_slot < -1:
            raise ValueError(f"state slots must be >= 0 (own: -1 for none), got {own_slot}, "
                             f"{handle_slot}")
        cdef fl_op *op = self._new_op(FL_OP_RNN, kernel.n_units, 3 if return_sequences else 2)
        op.rnn = &kernel.params
        op.return_sequences = return_sequences
        op.go_backwards = go_backwards
        self.own_slot[self.n_ops - 1] = own_slot
        self.handle_slot[self.n_ops - 1] = handle_slot
        self._keep.append(kernel)

    def add_dense(self, kernel, bias, activation):
        cdef const float[:, ::1] kv = kernel
        cdef const float[::1] bv
        if kv.shape[0] != self.width:
            raise ValueError(f"Dense expects {kv.shape[0]} inputs, the stack carries "
                             f"{self.width}")
        cdef fl_activation_spec spec = activation_spec(activation)
        if bias is not None:
            bv = bias
            if bv.shape[0] != kv.shape[1]:
                raise ValueError("Dense bias does not match its kernel")
        cdef fl_op *op = self._new_op(FL_OP_DENSE, kv.shape[1], self.rank)
        op.kernel = &kv[0, 0]
        op.activation = spec
        self._keep.append(kv)
        if bias is not None:
            op.bias = &bv[0]
            self._keep.append(bv)

    def add_activation(self, activation):
        cdef fl_activation_spec spec = activation_spec(activation)
        cdef fl_op *op = self._new_op(FL_OP_ACTIVATION, self.width, self.rank)
        op.activation = spec

    def try_run(self, object x_obj, StateStore own):
        """The predict fast path: run() with the threads of fastlstm.set_num_threads on the
        model's own store (None for a stateless model), its lock held; or None when x_obj is
        not a numeric (batch, timesteps, features) ndarray this stack accepts as is (the
        caller's general path then converts it or explains the problem)."""
        if not cnp.PyArray_CheckExact(x_obj):
            return None
        cdef cnp.ndarray x = <cnp.ndarray>x_obj
        if cnp.PyArray_NDIM(x) != 3 or cnp.PyArray_DIM(x, 2) != self.n_features:
            return None
        if ((self.fixed_timesteps >= 0 and cnp.PyArray_DIM(x, 1) != self.fixed_timesteps)
                or (self.fixed_batch >= 0 and cnp.PyArray_DIM(x, 0) != self.fixed_batch)
                or cnp.PyArray_DIM(x, 1) < 1):
            return None
        if not is_native_float32(x) or not cnp.PyArray_IS_C_CONTIGUOUS(x):
            if x.dtype.kind not in "biuf":  # what the general path accepts, same bits
                return None
            x = as_float32(x)
        if own is None:
            return self._run(x, g_num_threads, None, False, True)
        own.lock.acquire()
        try:
            return self._run(x, g_num_threads, own, False, True)
        finally:
            own.lock.release()

    def run(self, cnp.ndarray x not None, int n_threads, StateStore store=None,
            bint handle=False):
        """x: IN (n_batch, n_timesteps, n_features) float32, C-contiguous -> a new float32
        array. store: the state the recurrent ops advance, the model's own (handle False: only
        stateful layers have a slot) or a handle's (every recurrent layer has one); None for a
        stateless model. The caller holds store.lock."""
        return self._run(x, n_threads, store, handle)

    cdef object _run(self, cnp.ndarray x, int n_threads, StateStore store, bint handle,
                     bint checked=False):
        """checked: try_run has already checked x and n_threads."""
        cdef fl_op_state small[16]
        cdef fl_op_state *states
        if not checked:
            self._check_input(x, n_threads, handle)
        if store is None:
            return self._run_with(x, n_threads, NULL)
        if self.n_ops <= 16:
            self._bind(store, handle, cnp.PyArray_DIM(x, 0), small)
            return self._run_with(x, n_threads, small)
        states = <fl_op_state *>PyMem_Malloc(self.n_ops * sizeof(fl_op_state))
        if states == NULL:
            raise MemoryError("cannot allocate the state pointers")
        try:
            self._bind(store, handle, cnp.PyArray_DIM(x, 0), states)
            return self._run_with(x, n_threads, states)
        finally:
            PyMem_Free(states)

    cdef int _bind(self, StateStore store, bint handle, Py_ssize_t n_batch,
                   fl_op_state *states) except -1:
        """states[i]: the h and c of store that recurrent op i advances (NULL: zero initial
        state, not kept), each slot checked against the op and the batch."""
        cdef int i, slot
        if store.batch_size != n_batch:
            raise ValueError(f"the state holds {store.batch_size} rows; got a batch of "
                             f"{n_batch}")
        for i in range(self.n_ops):
            states[i].h = states[i].c = NULL
            slot = self.handle_slot[i] if handle else self.own_slot[i]
            if slot < 0:
                continue
            if (slot >= store.n_slots or store.units[slot] != self.ops[i].n_out
                    or (store.c(slot) == NULL and self.ops[i].rnn.cell == FL_CELL_LSTM)):
                raise ValueError(f"the state's slot {slot} does not hold the states of a "
                                 f"recurrent layer of {self.ops[i].n_out} units")
            states[i].h = store.h(slot)
            states[i].c = store.c(slot)
        return 0

    cdef object _run_with(self, cnp.ndarray x, int n_threads, const fl_op_state *states):
        cdef Py_ssize_t n_batch = cnp.PyArray_DIM(x, 0), n_timesteps = cnp.PyArray_DIM(x, 1)
        cdef int rc
        cdef cnp.npy_intp dims[3]
        cdef cnp.ndarray out
        cdef cnp.ndarray ws_arr
        dims[0] = n_batch
        if self.rank == 3:
            dims[1] = n_timesteps
            dims[2] = self.width
        else:
            dims[1] = self.width
        out = cnp.PyArray_EMPTY(self.rank, dims, cnp.NPY_FLOAT32, 0)
        if n_batch == 0 or self.n_ops == 0:
            if self.n_ops == 0:
                out[...] = x
            return out
        cdef fl_stack stack = fl_stack(ops=self.ops, n_ops=self.n_ops, n_features=self.n_features)
        pool = self._pool(n_batch, n_timesteps, n_threads)
        ws_arr = pool.pop() if pool else np.empty(
            fl_stack_workspace_size(&stack, FL_STACK_FORWARD, states, n_batch, n_timesteps,
                                    n_threads).floats, dtype=np.float32)
        with nogil:
            rc = fl_stack_forward(&stack, states, n_batch, n_timesteps,
                                  <const float *>cnp.PyArray_DATA(x),
                                  <float *>cnp.PyArray_DATA(out),
                                  <float *>cnp.PyArray_DATA(ws_arr), n_threads)
        pool.append(ws_arr)
        if rc != 0:
            raise_kernel_error(rc)
        return out

    cdef int _check_input(self, cnp.ndarray x, int n_threads, bint with_handle) except -1:
        if (cnp.PyArray_NDIM(x) != 3 or not is_native_float32(x)
                or not cnp.PyArray_IS_C_CONTIGUOUS(x)):
            raise ValueError(f"StackPlan.run needs a C-contiguous, aligned, native-byte-order "
                             f"float32 array of rank 3, got {x.dtype.str} of rank {x.ndim}")
        if cnp.PyArray_DIM(x, 2) != self.n_features:
            raise ValueError(f"expected {self.n_features} features per timestep, got "
                             f"{cnp.PyArray_DIM(x, 2)}")
        if self.fixed_timesteps >= 0 and cnp.PyArray_DIM(x, 1) != self.fixed_timesteps:
            raise ValueError(f"expected {self.fixed_timesteps} timesteps, got "
                             f"{cnp.PyArray_DIM(x, 1)}")
        if (self.fixed_batch >= 0 and not with_handle
                and cnp.PyArray_DIM(x, 0) != self.fixed_batch):
            raise ValueError(f"expected batch size {self.fixed_batch}, got "
                             f"{cnp.PyArray_DIM(x, 0)}")
        if cnp.PyArray_DIM(x, 1) < 1:
            raise ValueError("expected at least one timestep, got 0")
        if n_threads < 1:
            raise ValueError(f"n_threads must be >= 1, got {n_threads}")
        return 0

    cdef list _pool(self, Py_ssize_t n_batch, Py_ssize_t n_timesteps, int n_threads):
        if (n_batch == self._last_batch and n_timesteps == self._last_timesteps
                and n_threads == self._last_threads):
            return self._last_pool
        key = (n_batch, n_timesteps, n_threads)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools.setdefault(key, [])
        self._last_batch, self._last_timesteps, self._last_threads = key
        self._last_pool = pool
        return pool

    def generate(self, cnp.ndarray x not None, Py_ssize_t n_steps, int n_threads,
                 StateStore store, bint handle, bint slide):
        """Autoregressive generation in one nogil call (fl_stack_generate). x: IN (n_batch,
        n_timesteps, width) float32 C-contiguous. Returns (n_batch, n_steps, width): y_1 is the
        last timestep of the stack's output for x; y_{k+1} the output for y_k as the next input
        -- one step on the carried state of store (as in run(); the caller holds its lock), or
        (slide) the window x shifted by one with y_k appended, from zero state."""
        cdef Py_ssize_t n_batch, n_timesteps
        cdef fl_op_state *states = NULL
        self._check_input(x, n_threads, handle)
        if self.width != self.n_features:
            raise ValueError(f"generate feeds each output back as the next input, so the model "
                             f"must output as many features as it takes ({self.n_features}); "
                             f"it outputs {self.width}")
        if n_steps < 0:
            raise ValueError(f"steps must be >= 0, got {n_steps}")
        n_batch = cnp.PyArray_DIM(x, 0)
        n_timesteps = cnp.PyArray_DIM(x, 1)
        if store is not None and not slide:
            states = <fl_op_state *>PyMem_Malloc((self.n_ops + 1) * sizeof(fl_op_state))
            if states == NULL:
                raise MemoryError("cannot allocate the state pointers")
        try:
            if states != NULL:
                self._bind(store, handle, n_batch, states)
            return self._generate(x, n_batch, n_timesteps, n_steps, n_threads, states, slide)
        finally:
            PyMem_Free(states)

    cdef object _generate(self, cnp.ndarray x, Py_ssize_t n_batch, Py_ssize_t n_timesteps,
                          Py_ssize_t n_steps, int n_threads, const fl_op_state *states,
                          bint slide):
        cdef int rc = 0
        cdef cnp.npy_intp dims[3]
        cdef cnp.ndarray out
        dims[0] = n_batch
        dims[1] = n_steps
        dims[2] = self.width
        out = cnp.PyArray_ZEROS(3, dims, cnp.NPY_FLOAT32, 0)
        if self.n_ops == 0:  # the model passes x through: every output is x's last step
            out[...] = x[:, -1:, :]
            return out
        if n_batch == 0 or n_steps == 0:
            return out
        cdef fl_stack stack = fl_stack(ops=self.ops, n_ops=self.n_ops, n_features=self.n_features)
        cdef cnp.ndarray ws_arr = np.empty(
            fl_stack_workspace_size(&stack, FL_STACK_GENERATE_SLIDE if slide else FL_STACK_GENERATE,
                                    states, n_batch, n_timesteps, n_threads).floats,
            dtype=np.float32)
        with nogil:
            rc = fl_stack_generate(&stack, states, n_batch, n_timesteps,
                                   <const float *>cnp.PyArray_DATA(x),
                                   <float *>cnp.PyArray_DATA(out), n_steps, slide,
                                   <float *>cnp.PyArray_DATA(ws_arr), n_threads)
        if rc != 0:
            raise_kernel_error(rc)
        return out
