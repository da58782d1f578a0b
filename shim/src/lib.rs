//! # sockmeter-shim
//!
//! The preloadable library (`LD_PRELOAD=libsockmeter_shim.so`, or linked by a host ahead of
//! libc): it interposes the libc socket calls, counts every byte per socket in the core
//! crate's registry, and ships what it sees from a background thread.
//!
//! The layers call one way, each only into those below it:
//!
//! * [`capi`]: the C embedding API (`include/sockmeter.h`), and [`hooks`]: the one hook table
//!   and the handlers, by family;
//! * [`modules`]: which module (plugin) opened a socket; host labels; and [`loads`]: how each
//!   loaded object came in;
//! * [`runtime`]: configuration, the shared region, the shipper or reporting thread;
//! * [`platform`]: everything OS-specific, behind one contract;
//! * [`guard`]: the per-thread re-entrancy flag, beneath all of them.
//!
//! `shim/tests/layers.rs` checks it.
//!
//! ## Hot text
//!
//! A forked child's page tables hold none of the shim's code (the kernel copies only the
//! entries of mappings with private pages), so each 64 KB fault-around window of the shim's
//! text that the child runs costs it a page fault, and its exit the teardown of what that
//! fault mapped. Spread over 850 KB of text, the child's path (fork handlers, its first
//! socket, the hand-over, close, exit) touched eleven windows. The hook wrappers and the
//! functions on that path are therefore marked
//! `#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]`, and the shim is
//! linked with `-z keep-text-section-prefix` (`build.rs`), which keeps them together in one
//! `.text.hot` output section. Measured in docs/benchmarks.md ("Hot text"). Marking a function
//! is a layout hint only: a missed one costs a page fault, never a wrong count.

pub mod capi;
pub mod guard;
pub mod hooks;
pub mod loads;
pub mod modules;
pub mod platform;
pub mod publish;
pub mod runtime;

/// Runs when the shim is loaded, before the host's `main` (see `platform::on_load!`): how
/// objects came in, the configuration, what the hooks need, then the reporting side may start.
fn at_load() {
    guard::with(|| {
        loads::at_load();
    });
    runtime::init();
    guard::with(hooks::at_load);
    runtime::ready();
}

platform::on_load!(at_load);
