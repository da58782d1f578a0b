/* A third-party CPython extension module (tests/e2e/origins.rs): `meterext.call(f)` calls the
 * Python function f from C, so this module's code sits on the stack above the interpreter
 * while f opens its socket. That traffic is the extension's: a plugin above the interpreter. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static long calls;

static PyObject *call(PyObject *self, PyObject *f) {
    (void)self;
    PyObject *r = PyObject_CallNoArgs(f);
    /* Work after the call keeps this frame on the stack while f runs (no tail call). */
    calls++;
    return r;
}

static PyMethodDef methods[] = {
    {"call", call, METH_O, "Call f() from C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "meterext", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_meterext(void) { return PyModule_Create(&module); }
