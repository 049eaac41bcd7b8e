/* Exact temperature sampling of one token from a row of logits, for serverroom's llama.cpp
 * engine (serverroom.engine.llamacpp.draw holds the Python side and the explanation).
 *
 * draw(address, n_vocab, inv_t, state, bias_ids, bias_values) -> token
 *
 *   address      where the row of n_vocab float32 logits lies (llama.cpp's output buffer or a
 *                numpy copy); the logit bias is added to it in place
 *   inv_t        1 / temperature; 0 means greedy (the first largest biased logit)
 *   state        a writable buffer of four uint64: the sequence's xoshiro256** generator
 *   bias_ids     int32 token ids, bias_values float32 additions (-inf bans a token)
 *
 * The row is split into blocks of BLOCK consecutive tokens. A block whose largest logit is
 * within HOT nats (after temperature) of the overall largest is "hot": its exact mass is
 * computed. Every other block is "cold" and only bounded, by its size times the mass of its
 * largest token. A block is chosen with probability proportional to its exact mass (hot) or
 * bound (cold); a cold block is then accepted with probability mass / bound, computed only
 * then, and a rejection starts over. Accepted draws follow softmax(logits / T) exactly. After
 * TRIES rejections every token is weighed (also exact). The bound is exact, not approximate:
 * (x - m) * inv and exp are both monotonic, so no token of a block outweighs its largest.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define BLOCK 64
#define HOT 8.0f
#define TRIES 8

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(uint64_t *s) { /* xoshiro256** (Blackman and Vigna) */
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static double uniform(uint64_t *s) { return (double)(next_u64(s) >> 11) * 0x1.0p-53; }

static inline double weight(float x, float m, float inv) { return exp((double)((x - m) * inv)); }

static double block_mass(const float *x, int32_t lo, int32_t hi, float m, float inv) {
    double s = 0.0;
    for (int32_t i = lo; i < hi; i++) s += weight(x[i], m, inv);
    return s;
}

/* The token of [lo, hi) where the running mass first exceeds target (the last token with
 * mass when rounding leaves target at the very top); -1 if none has mass. */
static int32_t pick(const float *x, int32_t lo, int32_t hi, float m, float inv, double target) {
    double acc = 0.0;
    int32_t last = -1;
    for (int32_t i = lo; i < hi; i++) {
        double e = weight(x[i], m, inv);
        if (e > 0) {
            acc += e;
            last = i;
            if (target < acc) return i;
        }
    }
    return last;
}

static float block_max(const float *x, int32_t lo, int32_t hi) {
    float mx = -INFINITY;
    if (hi - lo == BLOCK) { /* eight independent lanes, so the compares pipeline */
        float lane[8];
        for (int k = 0; k < 8; k++) lane[k] = x[lo + k];
        for (int32_t i = lo + 8; i < hi; i += 8)
            for (int k = 0; k < 8; k++) lane[k] = x[i + k] > lane[k] ? x[i + k] : lane[k];
        for (int k = 0; k < 8; k++) mx = lane[k] > mx ? lane[k] : mx;
    } else {
        for (int32_t i = lo; i < hi; i++) mx = x[i] > mx ? x[i] : mx;
    }
    return mx;
}

static int32_t draw_row(float *x, int32_t n, float inv, uint64_t *state, double *w, float *bmax) {
    int32_t nb = (n + BLOCK - 1) / BLOCK, best = 0, arg = 0;
    float m = -INFINITY;
    for (int32_t b = 0; b < nb; b++) {
        int32_t lo = b * BLOCK, hi = lo + BLOCK < n ? lo + BLOCK : n;
        bmax[b] = block_max(x, lo, hi);
        if (bmax[b] > m) {
            m = bmax[b];
            best = b;
        }
    }
    if (!(m > -INFINITY)) return 0; /* everything banned or masked: nothing better to do */
    for (int32_t i = best * BLOCK;; i++) {
        if (x[i] == m) {
            arg = i;
            break;
        }
    }
    if (inv <= 0) return arg;
    double hot = 0.0, cold = 0.0;
    for (int32_t b = 0; b < nb; b++) {
        int32_t lo = b * BLOCK, hi = lo + BLOCK < n ? lo + BLOCK : n;
        float g = (bmax[b] - m) * inv;
        if (g >= -HOT) {
            w[b] = block_mass(x, lo, hi, m, inv); /* >= 1 for the best block, else >= 0 */
            hot += w[b];
        } else {
            w[b] = -(double)(hi - lo) * exp((double)g); /* negative: a cold block's bound */
            cold -= w[b];
        }
    }
    for (int t = 0; t < TRIES; t++) {
        double u = uniform(state) * (hot + cold), acc = 0.0;
        int32_t b = 0;
        for (; b < nb - 1; b++) {
            double a = fabs(w[b]);
            if (u < acc + a) break;
            acc += a;
        }
        int32_t lo = b * BLOCK, hi = lo + BLOCK < n ? lo + BLOCK : n;
        if (w[b] >= 0) {
            int32_t token = pick(x, lo, hi, m, inv, u - acc);
            return token >= 0 ? token : arg;
        }
        double mass = block_mass(x, lo, hi, m, inv);
        double v = uniform(state) * -w[b];
        if (v < mass) { /* accepted; v is uniform on [0, mass) */
            int32_t token = pick(x, lo, hi, m, inv, v);
            return token >= 0 ? token : arg;
        }
    }
    int32_t token = pick(x, 0, n, m, inv, uniform(state) * block_mass(x, 0, n, m, inv));
    return token >= 0 ? token : arg;
}

static PyObject *draw(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "draw() takes 6 arguments");
        return NULL;
    }
    float *x = (float *)PyLong_AsVoidPtr(args[0]);
    long n = PyLong_AsLong(args[1]);
    double inv = PyFloat_AsDouble(args[2]);
    if (PyErr_Occurred()) return NULL;
    if (x == NULL || n <= 0 || n > (1L << 30)) {
        PyErr_SetString(PyExc_ValueError, "draw() needs a row address and a positive size");
        return NULL;
    }
    Py_buffer state, ids, values;
    if (PyObject_GetBuffer(args[3], &state, PyBUF_WRITABLE) < 0) return NULL;
    if (PyObject_GetBuffer(args[4], &ids, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&state);
        return NULL;
    }
    if (PyObject_GetBuffer(args[5], &values, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&state);
        PyBuffer_Release(&ids);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t n_bias = ids.len / (Py_ssize_t)sizeof(int32_t);
    int32_t nb = (int32_t)((n + BLOCK - 1) / BLOCK);
    double *w = malloc(sizeof(double) * (size_t)nb);
    float *bmax = malloc(sizeof(float) * (size_t)nb);
    if (state.len < (Py_ssize_t)(4 * sizeof(uint64_t)) ||
        values.len != n_bias * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "draw() needs 4 state words and matching bias arrays");
    } else if (w == NULL || bmax == NULL) {
        PyErr_NoMemory();
    } else {
        const int32_t *bias_ids = (const int32_t *)ids.buf;
        const float *bias_values = (const float *)values.buf;
        int ok = 1;
        for (Py_ssize_t i = 0; i < n_bias; i++) ok &= bias_ids[i] >= 0 && bias_ids[i] < n;
        if (!ok) {
            PyErr_SetString(PyExc_ValueError, "draw() got a bias for a token outside the row");
        } else {
            for (Py_ssize_t i = 0; i < n_bias; i++) x[bias_ids[i]] += bias_values[i];
            int32_t token = draw_row(x, (int32_t)n, (float)inv, (uint64_t *)state.buf, w, bmax);
            result = PyLong_FromLong(token);
        }
    }
    free(w);
    free(bmax);
    PyBuffer_Release(&state);
    PyBuffer_Release(&ids);
    PyBuffer_Release(&values);
    return result;
}

static PyMethodDef methods[] = {
    {"draw", (PyCFunction)(void (*)(void))draw, METH_FASTCALL,
     "draw(address, n_vocab, inv_t, state, bias_ids, bias_values) -> token"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_draw", "Exact temperature sampling of one token.", -1, methods,
};

PyMODINIT_FUNC PyInit__draw(void) { return PyModule_Create(&module); }
