//! macOS (libSystem, DYLD_INSERT_LIBRARIES) implementation of the platform contract.
//!
//! Not written yet: the macOS port (interpose entries, `$NOCANCEL` variants, dladdr-based
//! attribution, CFSocket hooks) is its own issue. Building the shim for an Apple target stops
//! here with a clear message rather than producing a library that silently counts nothing.

compile_error!(
    "sockmeter's shim does not support macOS yet: the macOS platform module is not written (see docs/architecture.md)"
);
