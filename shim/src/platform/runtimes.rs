//! Language runtimes' own objects (Linux paths): never a module.
//!
//! An interpreter reaches the network through its own code: CPython's `_socket` module, Ruby's
//! `socket.so`, Perl's `pp_socket`. A static build has that code inside its executable, a
//! shared build in `libpython3.11.so` and a `_socket.cpython-311-…so` it loads with `dlopen`
//! from its standard library. Charging those objects would name a different module for the
//! same program depending on how the interpreter was built, and would tell the user nothing
//! (every Python program's traffic goes through `_socket`). So the interpreter's core library
//! and the compiled modules of its *standard library* count as the interpreter: attribution
//! looks past them, to a plugin above them on the stack (a third-party extension module) or
//! else to the executable. Third-party extensions (site-packages, dist-packages, vendor and
//! site Perl, gems) are plugins like any other object the process loaded with `dlopen`.
//!
//! A static build's executable *is* the interpreter: it is recognised by its file name
//! (`python`, `python3`, `python3.11`, `perl`, `perl5.36.0`, `ruby`, `ruby3.1`: the name and
//! digits and dots; no symbol look-up, which would disturb the host's `dlerror()` state), and
//! is then looked past like the core library, so a plugin above it on the stack is found the
//! same way in every build; it stays the fallback module. An embedding host that links a
//! shared libpython is not an interpreter (its own code is charged as any executable's).
//!
//! Recognised by where each runtime installs them (the path after `realpath`):
//!
//! | runtime | core library | standard library's compiled modules |
//! |---|---|---|
//! | CPython | `libpython*.so*` | `…/pythonX.Y/lib-dynload/` |
//! | Perl | `libperl.so*` | `…/perl/5.x/`, `…/perl-base/` (Debian), `…/perl5/5.x.y/<arch>/` (upstream) |
//! | Ruby | `libruby*.so*` | `…/ruby/X.Y.Z/` (gems live in `…/ruby/gems/`, `vendor_ruby`, `site_ruby`) |

fn file_name(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

/// The directory components of `path` (without the file name).
fn dirs(path: &[u8]) -> impl Iterator<Item = &[u8]> + Clone {
    let dir = match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[..i],
        None => &path[..0],
    };
    dir.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

fn starts_with_digit(c: &[u8]) -> bool {
    c.first().is_some_and(u8::is_ascii_digit)
}

/// `5.36`, `5.36.0`: a Perl 5 version component.
fn perl_version(c: &[u8]) -> bool {
    c.starts_with(b"5.") && c.len() > 2 && c[2..].iter().all(|b| b.is_ascii_digit() || *b == b'.')
}

/// An interpreter's core library or one of its standard library's compiled modules.
pub fn is_interpreter_library(path: &[u8]) -> bool {
    let f = file_name(path);
    if [&b"libpython"[..], b"libperl.so", b"libruby"]
        .iter()
        .any(|p| f.starts_with(p))
        && f.windows(3).any(|w| w == b".so")
    {
        return true;
    }
    let comps: Vec<&[u8]> = dirs(path).collect();
    comps.windows(2).any(|w| match (w[0], w[1]) {
        // CPython: .../python3.11/lib-dynload/
        (py, b"lib-dynload") => py.starts_with(b"python"),
        // Perl (Debian): .../perl/5.36/..., .../perl/5.36.0/...
        (b"perl", v) => perl_version(v),
        // Ruby: .../ruby/3.1.0/... (not gems, vendor_ruby, site_ruby)
        (b"ruby", v) => starts_with_digit(v),
        _ => false,
    }) || comps.contains(&&b"perl-base"[..])
        // Perl (upstream): .../perl5/5.36.0/x86_64-linux/auto/...
        || comps
            .windows(3)
            .any(|w| w[0] == b"perl5" && perl_version(w[1]) && w[2].windows(6).any(|x| x == b"-linux"))
}

/// Whether the executable at `path` is a language runtime's interpreter (see the module docs).
pub fn is_interpreter_executable(path: &[u8]) -> bool {
    let f = file_name(path);
    [&b"python"[..], b"perl", b"ruby"].iter().any(|p| {
        f.strip_prefix(*p)
            .is_some_and(|rest| rest.iter().all(|b| b.is_ascii_digit() || *b == b'.'))
    })
}

#[cfg(test)]
mod tests {
    use super::is_interpreter_library as interp;

    #[test]
    fn the_interpreters_own_objects() {
        for p in [
            "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0",
            "/root/.pyenv/versions/3.11.7/lib/python3.11/lib-dynload/_socket.cpython-311-x86_64-linux-gnu.so",
            "/usr/lib/python3.11/lib-dynload/_asyncio.cpython-311-x86_64-linux-gnu.so",
            "/opt/conda/lib/python3.12/lib-dynload/_socket.cpython-312-x86_64-linux-gnu.so",
            "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0",
            "/usr/lib/x86_64-linux-gnu/libperl.so.5.36.0",
            "/usr/lib/x86_64-linux-gnu/perl-base/auto/Socket/Socket.so",
            "/usr/lib/x86_64-linux-gnu/perl/5.36.0/auto/Socket/Socket.so",
            "/home/u/perl5/perlbrew/perls/perl-5.38.0/lib/perl5/5.38.0/x86_64-linux/auto/Socket/Socket.so",
            "/usr/lib/x86_64-linux-gnu/ruby/3.1.0/socket.so",
            "/usr/local/lib/ruby/3.3.0/x86_64-linux/socket.so",
            "/usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1.2",
        ] {
            assert!(interp(p.as_bytes()), "{p}");
        }
    }

    #[test]
    fn interpreter_executables_by_name() {
        use super::is_interpreter_executable as exe;
        for p in [
            "/usr/bin/python3.11",
            "/root/.pyenv/versions/3.11.7/bin/python3.11",
            "/usr/bin/perl",
            "/usr/bin/perl5.36.0",
            "/usr/bin/ruby3.1",
            "/x/python",
        ] {
            assert!(exe(p.as_bytes()), "{p}");
        }
        for p in [
            "/usr/bin/python3-config",
            "/usr/bin/pythonista",
            "/usr/bin/gst-launch-1.0",
            "/usr/sbin/apache2",
            "/usr/bin/perldoc",
        ] {
            assert!(!exe(p.as_bytes()), "{p}");
        }
    }

    #[test]
    fn third_party_extensions_and_other_objects_are_not() {
        for p in [
            "/usr/lib/python3/dist-packages/pycurl.cpython-311-x86_64-linux-gnu.so",
            "/root/.local/lib/python3.11/site-packages/grpc/_cython/cygrpc.cpython-311-x86_64-linux-gnu.so",
            "/usr/lib/x86_64-linux-gnu/perl5/5.36/auto/Net/SSLeay/SSLeay.so",
            "/usr/local/lib/perl5/site_perl/5.38.0/x86_64-linux/auto/X/X.so",
            "/var/lib/gems/3.1.0/gems/nio4r-2.5.8/lib/nio4r_ext.so",
            "/usr/lib/x86_64-linux-gnu/ruby/vendor_ruby/3.1.0/x.so",
            "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstsoup.so",
            "/usr/lib/x86_64-linux-gnu/libcurl.so.4.8.0",
            "/usr/bin/python3.11",
            "/opt/app/python-plugins/lib-dynload-like/x.so",
        ] {
            assert!(!interp(p.as_bytes()), "{p}");
        }
    }
}
