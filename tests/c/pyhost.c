/* A program embedding CPython through the shared libpython (tests/e2e/origins.rs):
 * pyhost CODE runs CODE with the interpreter linked in (a copy of the system's libpython, put
 * outside the system directories as a self-built or version-managed Python would be). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <unistd.h>

int main(int argc, char **argv) {
    alarm(90);
    if (argc != 2) {
        fprintf(stderr, "usage: pyhost CODE\n");
        return 2;
    }
    Py_Initialize();
    int r = PyRun_SimpleString(argv[1]);
    if (Py_FinalizeEx() < 0) return 3;
    return r == 0 ? 0 : 1;
}
