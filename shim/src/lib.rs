//! # sockmeter-shim
//!
//! The preloadable library (`LD_PRELOAD=libsockmeter_shim.so`, or linked by a host ahead of
//! libc): it interposes the libc socket calls, counts every byte per socket in the core
//! crate's registry, and ships what it sees from a background thread.
//!
//! * [`hooks`]: the one hook table and the handlers, by family.
//! * [`guard`]: the per-thread re-entrancy flag.
//! * [`modules`]: which module (plugin) opened a socket; host labels.
//! * [`runtime`]: configuration, the reporting thread, fork/exit/exec.
//! * [`capi`]: the C embedding API (`include/sockmeter.h`).
//! * [`platform`]: everything OS-specific, behind one contract.

pub mod capi;
pub mod guard;
pub mod hooks;
pub mod loads;
pub mod modules;
pub mod platform;
pub mod runtime;
