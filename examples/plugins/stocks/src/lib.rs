//! The `stocks` example plugin: a Rust cdylib with the examples' C ABI,
//!
//! ```c
//! int plugin_run(const char *url, char *err, size_t errlen);
//! ```
//!
//! `url` is `tcp://HOST:PORT[/SYM,SYM,...]`. The plugin connects with
//! [`std::net::TcpStream`], sends one line `STOCKS SYM SYM ...\n`, ends its side of the stream
//! and reads the server's quotes until the server closes. It returns the number of bytes it
//! received, or -1 with a message in `err` (always NUL-terminated when `errlen > 0`).
//!
//! Nothing here knows about sockmeter: the host that loads this library meters it.

use std::ffi::{c_char, c_int, CStr};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// Every network wait is bounded by this.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The symbols asked for when the URL names none.
const DEFAULT_SYMBOLS: &str = "AAPL,MSFT,GOOG";

fn run(url: &str) -> Result<usize, String> {
    let rest = url
        .strip_prefix("tcp://")
        .ok_or_else(|| format!("{url}: expected tcp://HOST:PORT[/SYM,...]"))?;
    let (hostport, symbols) = rest.split_once('/').unwrap_or((rest, DEFAULT_SYMBOLS));
    let addr: SocketAddr = hostport
        .parse()
        .map_err(|e| format!("{hostport}: not an IP address and port: {e}"))?;
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(TIMEOUT))
        .and_then(|()| s.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| format!("timeouts: {e}"))?;
    let request = format!("STOCKS {}\n", symbols.replace(',', " "));
    s.write_all(request.as_bytes()).map_err(|e| format!("send: {e}"))?;
    s.shutdown(Shutdown::Write).map_err(|e| format!("shutdown: {e}"))?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).map_err(|e| format!("receive: {e}"))?;
    Ok(reply.len())
}

fn write_err(err: *mut c_char, errlen: usize, msg: &str) {
    if err.is_null() || errlen == 0 {
        return;
    }
    let n = msg.len().min(errlen - 1);
    // SAFETY: the caller gave `errlen` writable bytes at `err`; we write n + 1 <= errlen.
    unsafe {
        std::ptr::copy_nonoverlapping(msg.as_ptr(), err as *mut u8, n);
        *err.add(n) = 0;
    }
}

/// Fetches quotes from `url`; returns the bytes received, or -1 with a message in `err`.
///
/// # Safety
/// `url` must be a NUL-terminated string; `err` must be NULL or point to `errlen` writable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn plugin_run(url: *const c_char, err: *mut c_char, errlen: usize) -> c_int {
    if url.is_null() {
        write_err(err, errlen, "url is NULL");
        return -1;
    }
    // SAFETY: the caller promises a NUL-terminated string.
    let url = unsafe { CStr::from_ptr(url) }.to_string_lossy().into_owned();
    match std::panic::catch_unwind(|| run(&url)) {
        Ok(Ok(n)) => c_int::try_from(n).unwrap_or(c_int::MAX),
        Ok(Err(e)) => {
            write_err(err, errlen, &e);
            -1
        }
        Err(_) => {
            write_err(err, errlen, "the stocks plugin panicked");
            -1
        }
    }
}
