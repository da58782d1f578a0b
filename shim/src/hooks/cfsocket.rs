//! CoreFoundation's CFSocket: the sockets a program makes through it are labelled, never
//! counted twice.
//!
//! CoreFoundation does a CFSocket's I/O with the BSD calls on the socket's fd (`recvfrom` on
//! its helper thread for data callbacks, `send`/`sendto` in `CFSocketSendData`, `accept` for
//! accept callbacks), which the `io` and `lifecycle` hooks count. These hooks only say what
//! the socket is:
//!
//! * **origin `cfsocket`** (`FLAG_CFSOCKET`; the report and the wire carry `origin` per socket,
//!   the summary says `(CFSocket)` after the role), role and addresses as the kernel has them;
//! * **the module that called `CFSocketCreate*`**: attribution by socket, at creation (the
//!   bytes move on CoreFoundation's own thread, whose stack shows no plugin). A socket a
//!   CFSocket listener accepts is charged to the listener's module, with the same origin
//!   (`lifecycle::accept`).
//!
//! CoreFoundation's own sockets (the wake-up pair its helper thread listens to: two connected
//! loopback UDP sockets on Linux, a local datagram socketpair on macOS) are not the host's
//! traffic: every socket made by CoreFoundation's own code is left out by the `socket` and
//! `socketpair` hooks (`modules::Who::internal`), and the `CFSocketCreate*` hooks then take
//! back the one socket they return. Functions CoreFoundation calls inside itself are not
//! interposable on macOS, so each entry point is hooked; nested calls (where they pass the
//! hooks, on Linux) label the same socket twice, to the same effect.
//!
//! `CFSocketSetAddress` (bind, listen), `CFSocketConnectToAddress`, `CFSocketSendData` and
//! `CFSocketInvalidate` keep the label true: the socket is (still) the caller's CFSocket, with
//! its role and addresses as they are now. They count nothing: `CFSocketSendData` reports
//! success on a partial send, the BSD hook under it counts what the kernel took.
//!
//! The functions are a library's, not the C library's (`[lib]` in the table): resolved only
//! when the host calls them, so a host without CoreFoundation never looks them up. The few
//! CoreFoundation functions these hooks call themselves (`CFSocketGetNative`,
//! `CFDataGetBytePtr`, `CFDataGetLength`) are looked up the same way, on first use.

#![allow(clippy::not_unsafe_ptr_arg_deref, clippy::too_many_arguments)]

use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicPtr, Ordering::*};

use libc::{c_int, c_long};
use sockmeter::addr::ADDR_WORDS;
use sockmeter::model::Role;
use sockmeter::registry::{FdState, FLAG_CFSOCKET, OVERFLOW};

use super::sockets;
use crate::modules::{self, Who};
use crate::platform;
use crate::runtime::{self, reg};

/// `CFSocketRef`.
pub type CFSocketRef = *mut c_void;
/// `CFDataRef`, `CFAllocatorRef`, `const CFSocketSignature *`, `const CFSocketContext *`,
/// `CFSocketCallBack`: pointers the hooks pass on (only `CFDataRef` is read).
pub type CFRef = *const c_void;
/// `CFOptionFlags`.
pub type CFOptionFlags = libc::c_ulong;
/// `CFSocketError` (a `CFIndex`): 0 success, -1 error, -2 timeout.
pub type CFSocketError = c_long;
/// `CFTimeInterval`.
pub type CFTimeInterval = f64;

/// A CoreFoundation function the hooks call, looked up on first use.
struct CfFn {
    name: &'static CStr,
    ptr: AtomicPtr<c_void>,
}

impl CfFn {
    const fn new(name: &'static CStr) -> Self {
        CfFn {
            name,
            ptr: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    fn get(&self) -> *mut c_void {
        let p = self.ptr.load(Acquire);
        if !p.is_null() {
            return p;
        }
        let p = platform::library_symbol(self.name);
        self.ptr.store(p, Release);
        p
    }
}

static GET_NATIVE: CfFn = CfFn::new(c"CFSocketGetNative");
static DATA_PTR: CfFn = CfFn::new(c"CFDataGetBytePtr");
static DATA_LEN: CfFn = CfFn::new(c"CFDataGetLength");

/// The fd under a CFSocket (`CFSocketGetNative`; -1 for an invalid one).
fn native(s: CFSocketRef) -> Option<c_int> {
    if s.is_null() {
        return None;
    }
    let f = GET_NATIVE.get();
    if f.is_null() {
        return None;
    }
    // SAFETY: CoreFoundation's `CFSocketNativeHandle CFSocketGetNative(CFSocketRef)`, called
    // with a CFSocket the real function has just returned or accepted.
    let get = unsafe { std::mem::transmute::<*mut c_void, unsafe extern "C" fn(CFSocketRef) -> c_int>(f) };
    let fd = unsafe { get(s) };
    (fd >= 0).then_some(fd)
}

/// The address in a `CFDataRef` (a `struct sockaddr`), encoded.
fn address(data: CFRef) -> Option<[u64; ADDR_WORDS]> {
    let (p, n) = (DATA_PTR.get(), DATA_LEN.get());
    if data.is_null() || p.is_null() || n.is_null() {
        return None;
    }
    // SAFETY: CoreFoundation's `const UInt8 *CFDataGetBytePtr(CFDataRef)` and
    // `CFIndex CFDataGetLength(CFDataRef)`, on the CFData the caller passed to a CFSocket call
    // that has just read it.
    unsafe {
        let ptr = std::mem::transmute::<*mut c_void, unsafe extern "C" fn(CFRef) -> *const u8>(p)(data);
        let len = std::mem::transmute::<*mut c_void, unsafe extern "C" fn(CFRef) -> c_long>(n)(data);
        if ptr.is_null() || len <= 0 {
            return None;
        }
        let len = libc::socklen_t::try_from(len).ok()?;
        platform::sockaddr_words(ptr as *const libc::sockaddr, len)
    }
}

/// The address in a `CFSocketSignature` (`{ SInt32 family, type, protocol; CFDataRef address; }`).
fn signature_address(sig: CFRef) -> Option<[u64; ADDR_WORDS]> {
    if sig.is_null() {
        return None;
    }
    #[repr(C)]
    struct Signature {
        family: i32,
        ty: i32,
        protocol: i32,
        address: CFRef,
    }
    // SAFETY: the caller's `const CFSocketSignature *`, which the real call has just read.
    address(unsafe { (*(sig as *const Signature)).address })
}

/// Makes the socket under `s` the caller's CFSocket: registered (taken back from the sockets
/// CoreFoundation keeps for itself, or recognised) or re-labelled, origin `cfsocket`, charged to
/// `who` (when given: a creation) and with `role` and `peer` when the call says so.
fn label(s: CFSocketRef, who: Option<Who>, role: Option<Role>, peer: Option<[u64; ADDR_WORDS]>) {
    let Some(fd) = native(s) else { return };
    let idx = match reg().fds.get(fd) {
        FdState::Record(idx) => idx,
        // Made by CoreFoundation's own code (the `socket` hook left it out), or never seen.
        st @ (FdState::Ignored | FdState::Unknown) => {
            if st == FdState::Ignored && (runtime::owns_fd(fd) || !reg().fds.replace(fd, st, FdState::Unknown)) {
                return;
            }
            let who = who.unwrap_or_else(modules::attribute);
            match sockets::recognise_as(fd, FLAG_CFSOCKET, Some(who)) {
                Some(idx) => idx,
                None => return,
            }
        }
        FdState::NotSocket => return,
    };
    if idx == OVERFLOW {
        return;
    }
    let rec = reg().records.get(idx);
    rec.set_flag(FLAG_CFSOCKET);
    if let Some(who) = who {
        rec.set_module(who.module, who.via, who.label);
    }
    if let Some(p) = peer {
        rec.set_peer(&p);
    }
    if let Some(r) = role {
        if rec.role() != r {
            rec.set_role(r);
        }
    }
    if let Some(l) = platform::local_words(fd) {
        rec.set_local(&l);
    }
    runtime::notify();
}

/// Before any `CFSocketCreate*`: who is calling (the plugin, on this thread's stack).
fn caller() -> Who {
    modules::attribute()
}

pub fn create_before(
    _alloc: CFRef,
    _family: i32,
    _ty: i32,
    _protocol: i32,
    _callbacks: CFOptionFlags,
    _callout: CFRef,
    _context: CFRef,
) -> Who {
    caller()
}

pub fn create_after(
    who: Who,
    ret: CFSocketRef,
    _e: c_int,
    _alloc: CFRef,
    _family: i32,
    _ty: i32,
    _protocol: i32,
    _callbacks: CFOptionFlags,
    _callout: CFRef,
    _context: CFRef,
) {
    label(ret, Some(who), None, None);
}

pub fn with_native_before(
    _alloc: CFRef,
    _fd: c_int,
    _callbacks: CFOptionFlags,
    _callout: CFRef,
    _context: CFRef,
) -> Who {
    caller()
}

pub fn with_native_after(
    who: Who,
    ret: CFSocketRef,
    _e: c_int,
    _alloc: CFRef,
    _fd: c_int,
    _callbacks: CFOptionFlags,
    _callout: CFRef,
    _context: CFRef,
) {
    label(ret, Some(who), None, None);
}

pub fn with_signature_before(
    _alloc: CFRef,
    _sig: CFRef,
    _callbacks: CFOptionFlags,
    _callout: CFRef,
    _context: CFRef,
) -> Who {
    caller()
}

/// `CFSocketCreateWithSocketSignature`: a listening socket (bind and listen on the signature's
/// address).
pub fn with_signature_after(
    who: Who,
    ret: CFSocketRef,
    _e: c_int,
    _alloc: CFRef,
    _sig: CFRef,
    _callbacks: CFOptionFlags,
    _callout: CFRef,
    _context: CFRef,
) {
    label(ret, Some(who), None, None);
}

pub fn connected_before(
    _alloc: CFRef,
    _sig: CFRef,
    _callbacks: CFOptionFlags,
    _callout: CFRef,
    _context: CFRef,
    _timeout: CFTimeInterval,
) -> Who {
    caller()
}

/// `CFSocketCreateConnectedToSocketSignature`: connected (or connecting, with a negative
/// timeout) to the signature's address.
pub fn connected_after(
    who: Who,
    ret: CFSocketRef,
    _e: c_int,
    _alloc: CFRef,
    sig: CFRef,
    _callbacks: CFOptionFlags,
    _callout: CFRef,
    _context: CFRef,
    _timeout: CFTimeInterval,
) {
    if !ret.is_null() {
        label(ret, Some(who), Some(Role::Connected), signature_address(sig));
    }
}

/// `CFSocketSetAddress`: bound and listening.
pub fn set_address(ret: CFSocketError, _e: c_int, s: CFSocketRef, _address: CFRef) {
    if ret == 0 {
        label(s, None, Some(Role::Listening), None);
    }
}

/// `CFSocketConnectToAddress`: connected, or connecting in the background (a negative timeout
/// returns at once).
pub fn connect_to_address(ret: CFSocketError, _e: c_int, s: CFSocketRef, addr: CFRef, timeout: CFTimeInterval) {
    if ret == 0 || timeout < 0.0 {
        label(s, None, Some(Role::Connected), address(addr));
    }
}

/// `CFSocketSendData`: nothing to count (the `send`/`sendto` under it did); the socket is the
/// caller's CFSocket.
pub fn send_data(
    ret: CFSocketError,
    _e: c_int,
    s: CFSocketRef,
    _address: CFRef,
    _data: CFRef,
    _timeout: CFTimeInterval,
) {
    let _ = ret;
    label(s, None, None, None);
}

/// `CFSocketInvalidate`: the fd before the call (CoreFoundation closes it, unless told not to).
pub fn invalidate_before(s: CFSocketRef) -> Option<c_int> {
    native(s)
}

/// After `CFSocketInvalidate`: a socket CoreFoundation did not close stays the program's, with
/// the label it had (its close, when it comes, is a `close` the hooks see).
pub fn invalidate_after(fd: Option<c_int>, _ret: (), _e: c_int, _s: CFSocketRef) {
    if let Some(fd) = fd {
        if let FdState::Record(_) = reg().fds.get(fd) {
            runtime::notify();
        }
    }
}
