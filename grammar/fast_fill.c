/* grammar._fast_fill: a mask fill (and a step) in one call from Python, without ctypes (a CPython
   extension).

   GrammarMatcher.fill_bitmask is the engine's per-row, per-step call.  Through ctypes it cost a
   pointer lookup, a foreign call and a Python-side cache of mask rows copied into the caller's
   row (~1.8 us warm, more cold: a cold mask went to a fresh cache row, then to the caller's).
   fill() takes the caller's row through the buffer protocol and calls pda_core.c's
   gs_config_mask on it directly (its per-stack masks are cached in C: a warm fill is one copy, or
   one OR per stack): ~0.6 us warm.  step() does the same for GrammarMatcher.accept_token's step
   (gs_step_bytes on a token's bytes).

   pda_core.c is not linked in: fill() receives gs_config_mask's address from the ctypes library
   (native.py), so this file needs only Python's headers.  Built like pda_core.c, on first use, by
   native.py; without the headers the ctypes path runs (same masks). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef int64_t (*config_mask_fn)(void *core, int32_t cid, uint32_t *out);

/* a 4-byte integer item: numpy int32 / uint32 ("i", "I", with an optional byte-order mark) */
static int int32_format(const char *f) {
    if (!f) return 0;
    if (*f == '<' || *f == '=' || *f == '@') f++;
    return (f[0] == 'i' || f[0] == 'I') && f[1] == 0;
}

/* fill(fn, core, cid, row, words) -> int
   Writes configuration cid's mask into the first `words` words of row (a writable, contiguous,
   one-dimensional int32 / uint32 array) and zeroes the rest of it.  Returns gs_config_mask's
   code (>= 0 done, -1 out of memory), or -2 when row is not such an array (nothing written:
   the caller takes its general path).  The GIL is released around the C call (a cold mask walks
   the vocabulary trie); callers serialize calls on one core themselves. */
static PyObject *fill(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "fill(fn, core, cid, row, words) takes 5 arguments");
        return NULL;
    }
    config_mask_fn fn = (config_mask_fn)PyLong_AsVoidPtr(args[0]);
    void *core = PyLong_AsVoidPtr(args[1]);
    const long cid = PyLong_AsLong(args[2]);
    const Py_ssize_t words = PyLong_AsSsize_t(args[4]);
    if (PyErr_Occurred()) return NULL;
    if (!fn || !core || cid < 0 || cid > INT32_MAX || words < 0) {
        PyErr_SetString(PyExc_ValueError, "fill: bad core, configuration or width");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[3], &view, PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_ND | PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();  /* read-only, strided or not a buffer: the general path */
        return PyLong_FromLong(-2);
    }
    int64_t rc = -2;
    if (view.ndim == 1 && view.itemsize == 4 && int32_format(view.format) && view.len >= words * 4) {
        uint32_t *out = (uint32_t *)view.buf;
        Py_BEGIN_ALLOW_THREADS
        rc = fn(core, (int32_t)cid, out);
        if (rc >= 0 && view.len > words * 4) memset(out + words, 0, (size_t)(view.len - words * 4));
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&view);
    return PyLong_FromLongLong(rc);
}

typedef int32_t (*step_bytes_fn)(void *core, int32_t lv, int32_t cid, const uint8_t *data, int64_t n);

/* step(fn, core, lv, cid, data) -> int: gs_step_bytes (fn) of configuration cid of level lv on
   the bytes `data` (a bytes object: a token's): the configuration after them, 0 when they leave
   the language, -1 out of memory.  The GIL is released around it, as ctypes did. */
static PyObject *step(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "step(fn, core, lv, cid, data) takes 5 arguments");
        return NULL;
    }
    step_bytes_fn fn = (step_bytes_fn)PyLong_AsVoidPtr(args[0]);
    void *core = PyLong_AsVoidPtr(args[1]);
    const long lv = PyLong_AsLong(args[2]), cid = PyLong_AsLong(args[3]);
    if (PyErr_Occurred()) return NULL;
    char *data;
    Py_ssize_t n;
    if (PyBytes_AsStringAndSize(args[4], &data, &n) < 0) return NULL;
    if (!fn || !core || lv < 0 || lv > INT32_MAX || cid < 0 || cid > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "step: bad core, level or configuration");
        return NULL;
    }
    int32_t got;
    Py_BEGIN_ALLOW_THREADS
    got = fn(core, (int32_t)lv, (int32_t)cid, (const uint8_t *)data, (int64_t)n);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(got);
}

static PyMethodDef methods[] = {
    {"fill", (PyCFunction)(void (*)(void))fill, METH_FASTCALL, "fill(fn, core, cid, row, words) -> int"},
    {"step", (PyCFunction)(void (*)(void))step, METH_FASTCALL, "step(fn, core, lv, cid, data) -> int"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fast_fill", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fast_fill(void) { return PyModule_Create(&module); }
