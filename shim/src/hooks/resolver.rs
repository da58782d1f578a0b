//! The resolver's entry points: which name each address came from.
//!
//! `getaddrinfo`, `gethostbyname`, `gethostbyname2`, their `_r` forms, and glibc's asynchronous
//! `getaddrinfo_a` (whose requests are read when they are done: at once with `GAI_WAIT`, or
//! when `gai_error` says so) are hooked only to look at what they returned: for every address,
//! the name the program asked for goes into the region's host table
//! (`sockmeter::hostnames`), and a socket connected to that address is reported with it
//! (`example.org (93.184.215.14:443)`). Nothing here resolves anything: no lookup of its own,
//! no reverse lookup; a name that is itself an address literal is not recorded.
//!
//! Not the per-byte path: a lookup costs milliseconds, recording costs a scan of the table
//! (256 entries) per address, with no allocation, lock or system call.

// Handlers are called only by the wrappers `hook_table!` generates, with exactly the arguments
// the host passed to the libc function, which the real call has just accepted; pointers are
// read only when the call succeeded (and then point to what it returned).
#![allow(clippy::not_unsafe_ptr_arg_deref, clippy::too_many_arguments)]

use std::ffi::CStr;

use libc::{addrinfo, c_char, c_int, c_void, hostent, size_t, sockaddr, socklen_t};
use sockmeter::hostnames::{key_v4, key_v6, IpKey};

use crate::hooks::table::Fallback;

/// How many addresses of one answer are looked at (an answer has a handful).
const MAX_ANSWERS: usize = 64;

/// glibc's `struct gaicb` (netdb.h), which the libc crate does not have.
#[repr(C)]
pub struct Gaicb {
    ar_name: *const c_char,
    ar_service: *const c_char,
    ar_request: *const addrinfo,
    ar_result: *mut addrinfo,
    ret: c_int,
    reserved: [c_int; 5],
}

/// `getaddrinfo_a`'s mode that waits for every request.
const GAI_WAIT: c_int = 0;

impl Fallback for *mut hostent {
    fn fallback() -> Self {
        std::ptr::null_mut()
    }
    #[inline]
    fn failed(&self) -> bool {
        self.is_null()
    }
}

fn table() -> &'static sockmeter::hostnames::Hosts {
    &crate::runtime::shared().names.hosts
}

/// The name the program asked for, unless it is an address literal (or missing). The bytes are
/// the caller's: used only while the handler runs.
fn asked<'a>(name: *const c_char) -> Option<&'a [u8]> {
    if name.is_null() {
        return None;
    }
    // SAFETY: the real call accepted `name` as a NUL-terminated string, which the caller still
    // owns while the handler runs.
    let bytes: &[u8] = unsafe { CStr::from_ptr(name) }.to_bytes();
    let literal = std::str::from_utf8(bytes).is_ok_and(|s| s.parse::<std::net::IpAddr>().is_ok());
    (!bytes.is_empty() && !literal).then_some(bytes)
}

/// The table's key for a socket address the resolver returned.
fn key_of(addr: *const sockaddr, len: socklen_t) -> Option<IpKey> {
    if addr.is_null() {
        return None;
    }
    let len = len as usize;
    // SAFETY: `addr` points to `len` bytes of a sockaddr the resolver made; each form is read
    // only when it is long enough.
    unsafe {
        match c_int::from((*addr).sa_family) {
            libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
                let a = &*(addr as *const libc::sockaddr_in);
                Some(key_v4(a.sin_addr.s_addr.to_ne_bytes()))
            }
            libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
                let a = &*(addr as *const libc::sockaddr_in6);
                Some(key_v6(a.sin6_addr.s6_addr))
            }
            _ => None,
        }
    }
}

/// Records every address of an `addrinfo` list under `name`.
fn record_addrinfo(name: &[u8], mut ai: *const addrinfo) {
    for _ in 0..MAX_ANSWERS {
        if ai.is_null() {
            return;
        }
        // SAFETY: a node of the list the resolver returned (the caller frees it later).
        let a = unsafe { &*ai };
        if let Some(k) = key_of(a.ai_addr, a.ai_addrlen) {
            table().record(name, k);
        }
        ai = a.ai_next;
    }
}

/// Records every address of a `hostent` under `name`.
fn record_hostent(name: &[u8], h: *const hostent) {
    if h.is_null() {
        return;
    }
    // SAFETY: the hostent the resolver returned, valid until the caller's next lookup.
    let h = unsafe { &*h };
    let len = usize::try_from(h.h_length).unwrap_or(0);
    if h.h_addr_list.is_null() || !matches!((h.h_addrtype, len), (libc::AF_INET, 4) | (libc::AF_INET6, 16)) {
        return;
    }
    for i in 0..MAX_ANSWERS {
        // SAFETY: a NULL-terminated array of pointers to `h_length`-byte addresses.
        let p = unsafe { *h.h_addr_list.add(i) };
        if p.is_null() {
            return;
        }
        let mut raw = [0u8; 16];
        // SAFETY: each address is `len` (4 or 16) bytes.
        unsafe { std::ptr::copy_nonoverlapping(p as *const u8, raw.as_mut_ptr(), len) };
        let k = if len == 4 {
            key_v4([raw[0], raw[1], raw[2], raw[3]])
        } else {
            key_v6(raw)
        };
        table().record(name, k);
    }
}

pub fn getaddrinfo(
    ret: c_int,
    _e: c_int,
    node: *const c_char,
    _service: *const c_char,
    _hints: *const addrinfo,
    res: *mut *mut addrinfo,
) {
    if ret != 0 || res.is_null() {
        return;
    }
    if let Some(name) = asked(node) {
        // SAFETY: on success the resolver stored the list's head in `*res`.
        record_addrinfo(name, unsafe { *res });
    }
}

pub fn gethostbyname(ret: *mut hostent, _e: c_int, name: *const c_char) {
    if let Some(n) = asked(name) {
        record_hostent(n, ret);
    }
}

pub fn gethostbyname2(ret: *mut hostent, _e: c_int, name: *const c_char, _af: c_int) {
    gethostbyname(ret, _e, name);
}

/// The result of a reentrant lookup: `*result` when it returned 0 and found the host.
fn reentrant_result(ret: c_int, result: *mut *mut hostent) -> *const hostent {
    if ret != 0 || result.is_null() {
        return std::ptr::null();
    }
    // SAFETY: on success the resolver stored its answer (or null: not found) in `*result`.
    unsafe { *result }
}

pub fn gethostbyname_r(
    ret: c_int,
    _e: c_int,
    name: *const c_char,
    _h: *mut hostent,
    _buf: *mut c_char,
    _len: size_t,
    result: *mut *mut hostent,
    _herr: *mut c_int,
) {
    if let Some(n) = asked(name) {
        record_hostent(n, reentrant_result(ret, result));
    }
}

pub fn gethostbyname2_r(
    ret: c_int,
    _e: c_int,
    name: *const c_char,
    _af: c_int,
    _h: *mut hostent,
    _buf: *mut c_char,
    _len: size_t,
    result: *mut *mut hostent,
    _herr: *mut c_int,
) {
    if let Some(n) = asked(name) {
        record_hostent(n, reentrant_result(ret, result));
    }
}

/// A finished `getaddrinfo_a` request: its name and answer.
fn record_request(req: *const Gaicb) {
    if req.is_null() {
        return;
    }
    // SAFETY: the caller's request, finished (GAI_WAIT returned, or gai_error said 0): the
    // resolver's thread no longer writes it.
    let r = unsafe { &*req };
    if r.ret != 0 {
        return;
    }
    if let Some(n) = asked(r.ar_name) {
        record_addrinfo(n, r.ar_result);
    }
}

pub fn getaddrinfo_a(ret: c_int, _e: c_int, mode: c_int, list: *mut *mut Gaicb, n: c_int, _sev: *mut c_void) {
    // With GAI_NOWAIT the requests finish on another thread: they are read when gai_error
    // says they are done.
    if ret != 0 || mode != GAI_WAIT || list.is_null() {
        return;
    }
    for i in 0..usize::try_from(n).unwrap_or(0) {
        // SAFETY: the caller's array of `n` request pointers (null entries are allowed).
        record_request(unsafe { *list.add(i) });
    }
}

pub fn gai_error(ret: c_int, _e: c_int, req: *mut Gaicb) {
    if ret == 0 {
        record_request(req);
    }
}
