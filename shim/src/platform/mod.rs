//! The platform contract: everything the rest of the shim needs from the operating system,
//! in one place. `linux.rs` implements it with glibc; `macos.rs` with libSystem. Nothing
//! outside this folder names a platform.
//!
//! Each platform module provides, with the same names and signatures:
//!
//! * `errno()` / `set_errno(e)`: the calling thread's errno (hooks save it right after the
//!   real call and restore it last, so the host sees exactly what libc said).
//! * `now_ms()`: wall-clock ms since the epoch, without a system call where the platform has
//!   a vDSO / commpage clock.
//! * `next_symbol(name)`: the next definition of a libc symbol after ours (what the hook
//!   forwards to). Called once per symbol.
//! * `sockaddr_words(ptr, len)`: a `sockaddr` encoded into `sockmeter::addr` words, without
//!   allocating (the per-byte path uses it for datagram peers).
//! * `classify(fd)`: what an fd we have not seen created is: not a socket, or a socket with its
//!   family, protocol and listening state. One or a few system calls; called once per fd.
//! * `local_words(fd)` / `peer_words(fd)`: getsockname / getpeername, encoded.
//! * `object_at(ip)`: the loaded object (base address, path as the loader knows it) that
//!   contains a code address, without the loader lock where possible.
//! * `walk_stack(visit)`: the caller's return addresses, innermost first, until `visit` stops.
//! * `for_each_object(f)`: every loaded object's loader name (`l_name`), for telling the
//!   objects loaded at start from those loaded later.
//! * `is_system_library(path)`, `is_runtime_library(path)`, `is_interpreter_library(path)`,
//!   `is_interpreter_executable(path)`:
//!   objects attribution skips (the system library directories; libc, the loader, threads,
//!   the shim itself; a language runtime's own objects, `runtimes.rs`).
//! * `exe_path()`, `cmdline()`, `pid()`, `ppid()`; `note_self_pid()` (read the pid again, in a
//!   fork child) and `in_vfork_child()` (a child running in its parent's memory: one `getpid`);
//!   `image_token(pid)`: what tells this process image from any other of the same pid.
//! * `single_threaded()`: whether the process surely has one thread only (false when unknown):
//!   shipper mode's region is made lazily only then.
//! * `address_space_limited()`: whether `RLIMIT_AS` caps the address space (then the forked
//!   children's nursery, `runtime/nursery.rs`, is not mapped).
//! * `add_counter(word, v)`: the per-byte path's one write, a plain add where the process has
//!   one thread and the platform allows it, else an atomic add.
//! * `spawn_blocking_signals(f)`: the shim's own threads are born blocking every signal, so they
//!   take none of the host's.
//! * `hand_off(fd, bytes)`: the last lines of an exiting process in thread mode, written to its
//!   reporter connection without the host waiting; `hand_off_later(addrs, bytes, for_ms)`: the
//!   same for a reporter that is not there now (a `listen` that is away), reached later by a
//!   writer of its own (Linux; not on macOS).
//! * shipper mode (`shipper.rs` on Linux): `create_region` (a shared mapping others can map),
//!   `link_pair`, `spawn_shipper` (a process that is never the host's child), and for forked children `adoption_pair`, `exit_link`, `pidfd_of` and
//!   `send_with_fds` (handing a region to the shipper that already exists).
//! * the kernel witness (Linux; none on macOS): `tcp_counts(fd)`, `unread_bytes(fd)`,
//!   `kernel_tls(fd)`, `flush_stdio_on(wanted)` (at exit) and `stdio_pending(stream)` (the
//!   bytes a stream holds that `fclose` is about to write).
//! * the preload stage (Linux x86_64, `shim/stage1/`; macOS has none): `loaded_late()`
//!   (whether the stage loaded the shim after the process started), `start_var(name)` (a
//!   `SOCKMETER_*` or preload variable as the process started with it: the stage's copy, else
//!   the shim's own from its load; macOS: the environment), `image_started_ms()` (when the
//!   process image started), and `bind_past_stage(lookup)` (points the GOT slots that lead
//!   through the stage at the shim's hooks; macOS: nothing to do).
//! * `constructor!` / hook export: how a function runs at load time and how a hook replaces
//!   the libc function (a `#[no_mangle]` export on Linux, an `__interpose` entry on macOS).
//! * the flag constants the handlers test (`MSG_PEEK`, `EAGAIN`, ...) come from `libc`, which
//!   already names them per platform.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;
#[cfg(target_os = "linux")]
mod linux_naked;
#[cfg(target_os = "linux")]
mod linux_stage;
#[cfg(target_os = "linux")]
pub(crate) use linux_naked::*;
#[cfg(target_os = "linux")]
pub use linux_stage::*;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
pub use macos::*;
#[cfg(target_os = "macos")]
mod macos_naked;
#[cfg(target_os = "macos")]
pub(crate) use macos_naked::*;

mod posix;
pub use posix::*;

mod runtimes;
pub use runtimes::*;

#[cfg(target_os = "linux")]
mod shipper;
#[cfg(target_os = "linux")]
pub use shipper::*;

#[cfg(target_os = "linux")]
mod elf_got;
#[cfg(target_os = "linux")]
mod page_prots;

use libc::c_int;
use sockmeter::model::{Family, Proto};

/// Family and protocol of a `socket(domain, type, protocol)` call; `None` for families not
/// metered (netlink, packet, ...). The type's flag bits (`SOCK_NONBLOCK`, `SOCK_CLOEXEC`, where
/// What decides whether the dynamic loader honours the preload variable for a program
/// (`program_privileges`, read from its open file).
#[derive(Clone, Copy, Debug)]
pub struct ProgramPrivileges {
    /// Its mode bits (setuid, setgid).
    pub mode: u32,
    /// Its owner.
    pub uid: u32,
    /// Its group.
    pub gid: u32,
    /// Whether it carries file capabilities (Linux).
    pub caps: bool,
    /// Whether its file system ignores setuid bits (`nosuid`).
    pub nosuid: bool,
}

/// the platform has them) are ignored.
pub fn kind_of(domain: c_int, ty: c_int, protocol: c_int) -> Option<(Family, Proto)> {
    let family = match domain {
        libc::AF_INET => Family::Inet,
        libc::AF_INET6 => Family::Inet6,
        libc::AF_UNIX => Family::Unix,
        _ => return None,
    };
    let base = ty & 0xf;
    let proto = match (family, base) {
        (Family::Unix, libc::SOCK_STREAM) => Proto::Stream,
        (Family::Unix, libc::SOCK_DGRAM) => Proto::Dgram,
        (_, libc::SOCK_SEQPACKET) => Proto::Seqpacket,
        (_, libc::SOCK_RAW) => Proto::Raw,
        (_, libc::SOCK_STREAM) => Proto::Tcp,
        (_, libc::SOCK_DGRAM) if protocol == libc::IPPROTO_ICMP || protocol == libc::IPPROTO_ICMPV6 => Proto::Raw,
        (_, libc::SOCK_DGRAM) => Proto::Udp,
        _ => Proto::Other,
    };
    Some((family, proto))
}

/// What `classify` found out about an fd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdKind {
    /// Closed or not valid: leave it unknown.
    Invalid,
    /// A file, pipe, tty, eventfd...
    NotSocket,
    /// A socket.
    Socket {
        /// Its family.
        family: Family,
        /// Its protocol.
        proto: Proto,
        /// Whether it listens.
        listening: bool,
        /// Whether it has a peer.
        connected: bool,
    },
}

/// What `rebind_objects_since` did: import slots pointed at the hooks, and the objects it
/// could not (fully) rebind, each with the reason.
#[derive(Debug, Default)]
pub struct Rebound {
    /// Slots changed.
    pub patched: usize,
    /// `name: reason` for each object that failed.
    pub failed: Vec<String>,
}

/// A loaded object found by `object_at`.
#[derive(Clone, Copy, Debug)]
pub struct Object {
    /// Where it is mapped (identifies it while loaded).
    pub base: usize,
    /// The name the loader knows it by: a NUL-terminated path, empty for the main program.
    pub name: *const libc::c_char,
}
