//! The hook table as the preload stage sees it: `shim/src/hooks/list.rs` included with a
//! `hook_table!` of the stage's own, which ignores the argument types and makes, per entry, an
//! index ([`Hook`]), a name, a [`Class`] (what the export does before the shim is loaded) and
//! an argument probe, and a naked export (`trampoline::export!`); then the few exports outside
//! the table ([`EXTRA`]). Names are fixed arrays, not pointers: nothing here is relocated when
//! the library loads.

use core::ffi::{c_int, c_long, c_void};

use crate::sys::fileno;
use crate::trampoline;

/// What an export does before the shim is loaded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Load the shim and jump to it.
    Load,
    /// A call on the fds its probe returns: libc unless one is a socket.
    Fds,
    /// `syscall()`: libc unless the shim meters the number (or the fd is a socket).
    Sys,
    /// Makes an fd that is never a socket: libc, then the new fd is "not a socket".
    Makes,
    /// `pipe`/`pipe2`: as [`Class::Makes`], for the two fds in the array.
    MakesPair,
    /// `fopen` and its kin: as [`Class::Makes`], for the stream's fd.
    MakesStream,
    /// `close`: libc unless the fd is a socket; the number is forgotten.
    Close,
    /// `dup2`/`dup3`: as [`Class::Fds`] for the old fd; the new number is forgotten.
    DupTo,
    /// `close_range(first, last, flags)`: every number in the range is forgotten.
    CloseRange,
    /// `closefrom(low)`: every number from `low` up is forgotten.
    CloseFrom,
    /// `fclose`/`freopen`: as [`Class::Close`] for the stream's fd (`freopen`: the third
    /// argument).
    StdioClose,
    /// `sigaction`, `signal` and its kin: a handler for a signal a process is sent (SIGINT,
    /// SIGALRM, SIGCHLD...) loads the shim first, so that no such handler can be the first to
    /// meet a socket, loading the shim inside a signal handler; asking, the default, "ignore",
    /// and a handler for the faults of a bad instruction (SIGSEGV, SIGBUS, SIGILL, SIGFPE,
    /// SIGTRAP, SIGSYS: GNU tools install one to report a stack overflow) go to libc. The shim,
    /// once loaded, puts the handlers it finds installed behind its trampoline, as if they had
    /// come through its hooks.
    Signals,
    /// `_exit`/`_Exit`: libc (a process that never loaded the shim has nothing to flush).
    Pass,
}

/// The longest name an export may have, with its NUL.
pub const NAME_MAX: usize = 48;

/// `s` (NUL-terminated) in a fixed array.
const fn name(s: &str) -> [u8; NAME_MAX] {
    let b = s.as_bytes();
    assert!(b.len() <= NAME_MAX, "an export's name is longer than NAME_MAX");
    let mut out = [0u8; NAME_MAX];
    let mut i = 0;
    while i < b.len() {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// The fds (or `syscall()`'s number and first argument) an entry's probe found.
#[repr(C)]
pub struct Probe {
    pub a: i64,
    pub b: i64,
}

/// Builds the exports from the hook table: an index per entry (`Hook`), their names, classes
/// and argument probes in the same order, and per entry a naked export
/// (`trampoline::export!`).
macro_rules! hook_table {
    ($(
        $(#[$doc:meta])*
        fn $name:ident $(= $sym:literal)? ($($arg:ident : $ty:ty),* $(, ... $va:ident : $vty:ty)? $(,)?) -> $ret:ty $([$mode:ident $($fd:ident)*])? => $kind:ident $($fam:ident :: $h:ident),+;
    )*) => {
        /// The table's entries, numbered.
        #[repr(usize)]
        pub enum Hook { $($(#[$doc])* $name,)* Extra }

        /// The table's names, in [`Hook`]'s order (arrays, not pointers: nothing to relocate
        /// when the library loads).
        #[allow(unused_doc_comments)]
        pub static NAMES: [[u8; NAME_MAX]; Hook::Extra as usize] = [$(
            $(#[$doc])*
            name(concat!(stringify!($name), "\0")),
        )*];

        /// What each entry does before the shim is loaded, in [`Hook`]'s order.
        #[allow(unused_doc_comments)]
        pub static CLASSES: [Class; Hook::Extra as usize] = [$(
            $(#[$doc])*
            hook_table!(@class [$($mode)?] $kind $($fam $h)+),
        )*];

        /// The fds (or `syscall()`'s number and first argument, or a signal and its handler)
        /// in entry `i`'s arguments, given the six argument registers.
        #[allow(unused_doc_comments)]
        pub fn probe(i: usize, r: [usize; 6]) -> Probe {
            match i {
                $(
                $(#[$doc])*
                x if x == Hook::$name as usize => {
                    #[allow(unused_variables, clippy::too_many_arguments)]
                    extern "C" fn p($($arg: usize,)* $($va: usize)?) -> Probe {
                        hook_table!(@probe [$($mode $($fd)*)?] $kind $($fam $h)+ ; $($arg)*)
                    }
                    // SAFETY: `p` reads at most six integer arguments; called with six.
                    let f = unsafe {
                        core::mem::transmute::<*const (), extern "C" fn(usize, usize, usize, usize, usize, usize) -> Probe>(
                            p as *const (),
                        )
                    };
                    f(r[0], r[1], r[2], r[3], r[4], r[5])
                }
                )*
                _ => Probe { a: -1, b: -1 },
            }
        }

        /// The exports.
        #[allow(unused_doc_comments)]
        pub mod exports {
            use super::trampoline;
            $(
            $(#[$doc])*
            trampoline::export!(
                $name,
                stringify!($name),
                super::Hook::$name as usize,
                super::fast_path(
                    hook_table!(@class [$($mode)?] $kind $($fam $h)+),
                    hook_table!(@first [$($mode $($fd)*)?] $($arg)*)
                )
            );
            )*
        }
    };

    (@class [data] $($rest:tt)*) => { $crate::Class::Fds };
    (@class [fd] $($rest:tt)*) => { $crate::Class::Fds };
    (@class [sys] $($rest:tt)*) => { $crate::Class::Sys };
    (@class [lib] $($rest:tt)*) => { $crate::Class::Load };
    (@class [] after files pipe) => { $crate::Class::MakesPair };
    (@class [] after files pipe2) => { $crate::Class::MakesPair };
    (@class [] after files fopen) => { $crate::Class::MakesStream };
    (@class [] after files $h:ident) => { $crate::Class::Makes };
    (@class [] around files $b:ident files $a:ident) => { $crate::Class::StdioClose };
    (@class [] around lifecycle close_before lifecycle $a:ident) => { $crate::Class::Close };
    (@class [] around lifecycle dup2_before lifecycle $a:ident) => { $crate::Class::DupTo };
    (@class [] around lifecycle dup3_before lifecycle $a:ident) => { $crate::Class::DupTo };
    (@class [] around lifecycle close_range_before lifecycle $a:ident) => { $crate::Class::CloseRange };
    (@class [] around lifecycle closefrom_before lifecycle $a:ident) => { $crate::Class::CloseFrom };
    (@class [] rewrite signals $h:ident) => { $crate::Class::Signals };
    (@class [] around process exit_before process $a:ident) => { $crate::Class::Pass };
    (@class [] after process spawn_adddup2) => { $crate::Class::Fds };
    (@class [] $($rest:tt)*) => { $crate::Class::Load };

    (@first [data $fd:ident] $a0:ident $($rest:ident)*) => { $crate::same_name(stringify!($fd), stringify!($a0)) };
    (@first [fd $fd:ident] $a0:ident $($rest:ident)*) => { $crate::same_name(stringify!($fd), stringify!($a0)) };
    (@first [$($x:tt)*] $($rest:tt)*) => { false };

    (@probe [data $fd:ident] $($rest:tt)*) => { Probe { a: $fd as c_int as i64, b: -1 } };
    (@probe [fd $fd:ident] $($rest:tt)*) => { Probe { a: $fd as c_int as i64, b: -1 } };
    (@probe [fd $x:ident $y:ident] $($rest:tt)*) => { Probe { a: $x as c_int as i64, b: $y as c_int as i64 } };
    (@probe [sys $n:ident] $kind:ident $($f:ident $h:ident)+ ; $a0:ident $a1:ident $($more:ident)*) => {
        Probe { a: $a0 as c_long as i64, b: $a1 as c_long as i64 }
    };
    (@probe [] around lifecycle $b:ident lifecycle $a:ident ; $a0:ident $($more:ident)*) => {
        Probe { a: $a0 as i64, b: -1 }
    };
    (@probe [] around files freopen_before files $a:ident ; $p:ident $m:ident $f:ident) => {
        Probe { a: stream_fd($f), b: -1 }
    };
    (@probe [] around files fclose_before files $a:ident ; $f:ident) => {
        Probe { a: stream_fd($f), b: -1 }
    };
    (@probe [] rewrite signals sigaction ; $sig:ident $act:ident $($more:ident)*) => {
        $crate::Probe { a: $sig as c_int as i64, b: $crate::handler_of($act) }
    };
    (@probe [] rewrite signals signal ; $sig:ident $handler:ident) => {
        $crate::Probe { a: $sig as c_int as i64, b: $handler as i64 }
    };
    (@probe [] after process spawn_adddup2 ; $actions:ident $fd:ident $new:ident) => {
        Probe { a: $fd as c_int as i64, b: -1 }
    };
    (@probe [$($x:tt)*] $($rest:tt)*) => { Probe { a: -1, b: -1 } };
}

include!("../src/hooks/list.rs");

/// Declares the exports outside the hook table once: their index after the table's
/// ([`Outside`]), their names ([`EXTRA`]) and their naked exports.
macro_rules! outside_the_table {
    ($($name:ident),* $(,)?) => {
        /// The exports outside the table, numbered from 0 after it.
        #[repr(usize)]
        pub enum Outside { $($name,)* }

        /// Their names, in [`Outside`]'s order.
        pub static EXTRA: [[u8; NAME_MAX]; 0 $(+ { let _ = stringify!($name); 1 })*] =
            [$(name(concat!(stringify!($name), "\0")),)*];

        /// Their exports.
        pub mod outside_exports {
            use super::trampoline;
            $(trampoline::export!($name, stringify!($name), super::Hook::Extra as usize + super::Outside::$name as usize, 0);)*
        }
    };
}

// Each made by its own module in the shim (`hooks/dlopen.rs`, `hooks/execlist.rs`, `capi.rs`),
// but `vfork`, the stage's own (see [`VFORK`]). `tests/e2e/preload.rs` checks that the two
// libraries export the same names.
outside_the_table! {
    dlopen,
    execl,
    execle,
    execlp,
    sockmeter_flush,
    sockmeter_label_pop,
    sockmeter_label_push,
    sockmeter_selftest_unwind,
    sockmeter_snapshot_json,
    sockmeter_string_free,
    sockmeter_subscribe,
    sockmeter_unsubscribe,
    sockmeter_version,
    vfork,
}

/// `vfork`, the one export the shim does not have: it loads the shim first (in the parent, an
/// ordinary context), then jumps to libc's. A vfork child shares its parent's memory and must
/// never load the shim itself, yet its `exec` is where the shim checks the program about to
/// run: so the parent has the shim before the child exists.
pub const VFORK: usize = Outside::vfork as usize;

/// Every export: the table's, then [`EXTRA`].
pub const TOTAL: usize = Hook::Extra as usize + EXTRA.len();

pub fn name_of(i: usize) -> &'static [u8] {
    if i < Hook::Extra as usize {
        &NAMES[i]
    } else {
        &EXTRA[i - Hook::Extra as usize]
    }
}

/// Whether two names are the same (for the table's macro, at compile time).
pub const fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The export's own path to libc before the shim is loaded, without `s1_slow`
/// (`trampoline.rs`): 1 for a call whose one fd is its first argument (to libc when the table
/// says "not a socket"), 2 for `close` (the same, and the number is forgotten), 0 for none.
pub const fn fast_path(class: Class, fd_first: bool) -> usize {
    match class {
        Class::Fds if fd_first => 1,
        Class::Close => 2,
        Class::Makes => 3,
        _ => 0,
    }
}

/// The handler a `sigaction` call would set (`sa_handler` is the struct's first word), or -1
/// when it sets none.
pub extern "C" fn handler_of(act: usize) -> i64 {
    if act == 0 {
        return -1;
    }
    // SAFETY: a non-null `struct sigaction` pointer the host passes (libc reads it too); its
    // first word is read.
    unsafe { *(act as *const usize) as i64 }
}

pub extern "C" fn stream_fd(f: usize) -> i64 {
    if f == 0 {
        return -1;
    }
    // SAFETY: a non-null FILE pointer the host passes to fclose/freopen; fileno only reads it.
    unsafe { fileno(f as *mut c_void) as i64 }
}
