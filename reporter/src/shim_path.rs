//! Finding the shim (`libsockmeter_shim.so`) that `run` preloads.
//!
//! In order:
//!
//! 1. `SOCKMETER_SHIM`: the shim to use (an error if it names nothing, rather than quietly
//!    using another one);
//! 2. the library next to the `sockmeter` executable (a workspace build: `target/debug/`), then
//!    `../lib/` relative to it (a packaged install);
//! 3. the copy embedded in the executable (`build.rs` builds it): written once to a per-user
//!    cache, `$XDG_CACHE_HOME/sockmeter/` or `~/.cache/sockmeter/` (else
//!    `/tmp/sockmeter-<uid>/`), a directory of mode 0700 owned by the user, under a name made
//!    of its length and hash (`libsockmeter_shim-<len>-<hash>.so`). A new file is written
//!    under a temporary name and renamed into place (no process ever sees half a shim), and the
//!    file is compared byte for byte with the embedded copy before each use (a damaged or
//!    foreign file is replaced). So `cargo install --path reporter`, or a copied binary, works
//!    from any directory.
//!
//! The result is canonical, so `LD_PRELOAD` does not depend on the command's working directory,
//! and never contains a colon or a space, which `LD_PRELOAD` cannot carry (a cache directory
//! whose path does is passed over).

use std::ffi::{OsStr, OsString};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The shim's file name.
#[cfg(not(target_os = "macos"))]
pub const SHIM_NAME: &str = "libsockmeter_shim.so";
/// The shim's file name.
#[cfg(target_os = "macos")]
pub const SHIM_NAME: &str = "libsockmeter_shim.dylib";
/// The preload stage's file name (Linux, x86_64): a small library that loads the shim from its
/// own directory only when a process first meets a socket (`shim/stage1/lib.rs`).
pub const PRELOAD_NAME: &str = "libsockmeter_preload.so";
/// The variable that overrides where the shim is.
pub const SHIM_ENV: &str = "SOCKMETER_SHIM";

/// The shim this executable carries (see `build.rs`).
static EMBEDDED: &[u8] = include_bytes!(env!("SOCKMETER_EMBEDDED_SHIM"));
/// Its name in the cache: length and hash.
const EMBEDDED_ID: &str = env!("SOCKMETER_EMBEDDED_SHIM_ID");

/// The shim for this process: from `SOCKMETER_SHIM`, the current executable's location, or
/// the embedded copy.
pub fn find() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot tell where the sockmeter executable is")?;
    if let Some(p) = find_from(std::env::var_os(SHIM_ENV).as_deref(), &exe)? {
        return Ok(p);
    }
    let env = |k: &str| std::env::var_os(k);
    extract(&cache_dirs(env, home_of_user()), EMBEDDED, EMBEDDED_ID)
}

/// What `run` and `listen` preload (and `shim-path` prints): `SOCKMETER_SHIM` as it is when
/// set; else the preload stage when it sits beside the shim found (a workspace build, a
/// packaged install); else the shim itself (the embedded copy, or a target without a preload
/// stage).
pub fn find_preload() -> Result<PathBuf> {
    let shim = find()?;
    if std::env::var_os(SHIM_ENV).is_some() {
        return Ok(shim);
    }
    Ok(preload_beside(&shim).unwrap_or(shim))
}

/// The preload stage beside `shim`, if there is one (it loads its sibling of the shim's name).
pub fn preload_beside(shim: &Path) -> Option<PathBuf> {
    if shim.file_name()? != SHIM_NAME {
        return None;
    }
    let p = shim.with_file_name(PRELOAD_NAME);
    p.is_file().then_some(p)
}

/// The shim given the value of `SOCKMETER_SHIM` (if set) and the executable's path; `None` when
/// neither names one (the embedded copy is then the one).
pub fn find_from(env: Option<&OsStr>, exe: &Path) -> Result<Option<PathBuf>> {
    if let Some(v) = env {
        if let Some(problem) = env_problem(v) {
            bail!(
                "{SHIM_ENV}={:?}: {problem}",
                sockmeter::config::shown(v.to_string_lossy().into_owned())
            );
        }
        let p = Path::new(v);
        return p
            .canonicalize()
            .map(Some)
            .with_context(|| format!("cannot resolve {SHIM_ENV}={}", p.display()));
    }
    let exe = exe.canonicalize().unwrap_or_else(|_| exe.to_path_buf());
    let dir = exe.parent().unwrap_or(Path::new("/"));
    for c in [dir.join(SHIM_NAME), dir.join("..").join("lib").join(SHIM_NAME)] {
        if c.is_file() {
            return c
                .canonicalize()
                .map(Some)
                .with_context(|| format!("cannot resolve {}", c.display()));
        }
    }
    Ok(None)
}

/// What is wrong with `SOCKMETER_SHIM=v`, if anything.
pub fn env_problem(v: &OsStr) -> Option<String> {
    if v.is_empty() {
        return Some(format!("empty (unset it, or set it to the path of {SHIM_NAME})"));
    }
    (!Path::new(v).is_file()).then(|| format!("does not name a file (it should be the path of {SHIM_NAME})"))
}

/// The user's home directory from the password database (when `HOME` is unset).
fn home_of_user() -> Option<PathBuf> {
    // SAFETY: getuid cannot fail; getpwuid_r writes into our buffers only.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let r = libc::getpwuid_r(libc::getuid(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out);
        if r != 0 || out.is_null() || pw.pw_dir.is_null() {
            return None;
        }
        let dir = std::ffi::CStr::from_ptr(pw.pw_dir).to_bytes();
        (!dir.is_empty()).then(|| PathBuf::from(OsStr::from_bytes(dir)))
    }
}

/// Where the embedded shim may be written, best first: `$XDG_CACHE_HOME/sockmeter`,
/// `$HOME/.cache/sockmeter` (or the password database's home), `/tmp/sockmeter-<uid>`.
pub fn cache_dirs(env: impl Fn(&str) -> Option<OsString>, passwd_home: Option<PathBuf>) -> Vec<PathBuf> {
    let abs = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    let mut dirs = Vec::new();
    if let Some(x) = abs(env("XDG_CACHE_HOME")) {
        dirs.push(x.join("sockmeter"));
    }
    if let Some(h) = abs(env("HOME")).or(passwd_home) {
        dirs.push(h.join(".cache").join("sockmeter"));
    }
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    dirs.push(std::env::temp_dir().join(format!("sockmeter-{uid}")));
    dirs
}

/// Writes `bytes` (the shim) as `libsockmeter_shim-<id>.so` into the first of `dirs` that
/// works, or finds it there already; returns its path.
pub fn extract(dirs: &[PathBuf], bytes: &[u8], id: &str) -> Result<PathBuf> {
    let mut why = Vec::new();
    for d in dirs {
        if d.as_os_str().as_bytes().iter().any(|b| *b == b':' || *b == b' ') {
            why.push(format!(
                "{}: its path contains a colon or a space, which LD_PRELOAD cannot carry",
                d.display()
            ));
            continue;
        }
        match extract_into(d, bytes, id) {
            Ok(p) => return Ok(p),
            Err(e) => why.push(format!("{}: {e:#}", d.display())),
        }
    }
    bail!(
        "cannot find the shim {SHIM_NAME}: none beside the executable, and the embedded copy could not be written to a cache directory ({}); set {SHIM_ENV} to a copy of the shim",
        why.join("; ")
    )
}

fn extract_into(dir: &Path, bytes: &[u8], id: &str) -> Result<PathBuf> {
    private_dir(dir)?;
    if noexec(dir) {
        bail!("it is on a filesystem mounted noexec (the loader could not map the shim)");
    }
    let ext = Path::new(SHIM_NAME)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("so");
    let path = dir.join(format!("libsockmeter_shim-{id}.{ext}"));
    if same_file_contents(&path, bytes)? {
        return Ok(path);
    }
    // Written beside under a name of our own, then renamed over the final name: a process that
    // loads the shim meanwhile sees the old file or the whole new one.
    let tmp = dir.join(format!(".libsockmeter_shim-{id}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    if !same_file_contents(&path, bytes)? {
        bail!("{} does not read back as written", path.display());
    }
    Ok(path)
}

/// Makes `dir` (and its parents) if missing, and checks it is a directory of ours that no one
/// else can write: not a symbolic link, owned by this user, mode 0700 (a looser mode of our own
/// directory is tightened).
fn private_dir(dir: &Path) -> Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
    let m = std::fs::symlink_metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    if !m.file_type().is_dir() {
        bail!("it is not a directory (a symbolic link, or a file)");
    }
    if m.uid() != euid {
        bail!("it belongs to uid {}, not to this user (uid {euid})", m.uid());
    }
    if m.mode() & 0o777 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private (mode 0700)", dir.display()))?;
    }
    Ok(())
}

/// Whether `dir`'s file system refuses to map programs from it (mounted `noexec`).
fn noexec(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    #[cfg(target_os = "linux")]
    {
        // SAFETY: an all-zero statvfs is valid to be filled in; `c` is NUL-terminated.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
        r == 0 && st.f_flag & libc::ST_NOEXEC != 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        // SAFETY: an all-zero statfs is valid to be filled in; `c` is NUL-terminated.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let r = unsafe { libc::statfs(c.as_ptr(), &mut st) };
        r == 0 && st.f_flags & libc::MNT_NOEXEC as u32 != 0
    }
}

/// Whether `path` is a regular file of this user's (not a symbolic link) holding exactly
/// `bytes`. A missing file is `false`; an unreadable one an error.
fn same_file_contents(path: &Path, bytes: &[u8]) -> Result<bool> {
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        // ELOOP: a symbolic link in our place; it is replaced.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let m = f
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    if !m.is_file() || m.uid() != euid || m.len() != bytes.len() as u64 {
        return Ok(false);
    }
    equal_contents(f, bytes).with_context(|| format!("cannot read {}", path.display()))
}

fn equal_contents(mut f: File, bytes: &[u8]) -> std::io::Result<bool> {
    let mut buf = vec![0u8; 1 << 16];
    let mut at = 0;
    loop {
        let n = match f.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(at == bytes.len());
        }
        if at + n > bytes.len() || buf[..n] != bytes[at..at + n] {
            return Ok(false);
        }
        at += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::private_dir::PrivateDir;

    #[test]
    fn next_to_the_executable_then_lib_then_none() {
        let d = PrivateDir::new().unwrap();
        let bin = d.path().join("bin");
        let lib = d.path().join("lib");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&lib).unwrap();
        let exe = bin.join("sockmeter");
        std::fs::write(&exe, b"").unwrap();

        assert_eq!(find_from(None, &exe).unwrap(), None, "the embedded copy is next");

        std::fs::write(lib.join(SHIM_NAME), b"").unwrap();
        assert_eq!(
            find_from(None, &exe).unwrap(),
            Some(lib.join(SHIM_NAME).canonicalize().unwrap())
        );
        std::fs::write(bin.join(SHIM_NAME), b"").unwrap();
        assert_eq!(
            find_from(None, &exe).unwrap(),
            Some(bin.join(SHIM_NAME).canonicalize().unwrap())
        );
    }

    #[test]
    fn the_variable_wins_and_must_be_right() {
        let d = PrivateDir::new().unwrap();
        let shim = d.path().join("custom.so");
        std::fs::write(&shim, b"").unwrap();
        let exe = Path::new("/nonexistent/sockmeter");
        assert_eq!(
            find_from(Some(shim.as_os_str()), exe).unwrap(),
            Some(shim.canonicalize().unwrap())
        );
        let e = find_from(Some(OsStr::new("/nonexistent/shim.so")), exe)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "SOCKMETER_SHIM=\"/nonexistent/shim.so\": does not name a file (it should be the path of libsockmeter_shim.so)"
        );
        assert!(find_from(Some(OsStr::new("")), exe)
            .unwrap_err()
            .to_string()
            .contains("empty"));
        assert!(
            find_from(Some(d.path().as_os_str()), exe).is_err(),
            "a directory is not a shim"
        );
    }

    #[test]
    fn cache_directories_in_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| OsString::from(v))
        };
        let tmp = std::env::temp_dir();
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() };
        let last = tmp.join(format!("sockmeter-{uid}"));
        assert_eq!(
            cache_dirs(env(&[("XDG_CACHE_HOME", "/x/c"), ("HOME", "/h")]), None),
            [
                PathBuf::from("/x/c/sockmeter"),
                PathBuf::from("/h/.cache/sockmeter"),
                last.clone()
            ]
        );
        assert_eq!(
            cache_dirs(env(&[("XDG_CACHE_HOME", "relative"), ("HOME", "")]), Some("/pw".into())),
            [PathBuf::from("/pw/.cache/sockmeter"), last.clone()],
            "a relative XDG_CACHE_HOME is ignored (the XDG rule); an empty HOME too"
        );
        assert_eq!(cache_dirs(env(&[]), None), [last]);
    }

    #[test]
    fn the_embedded_shim_is_written_once_verified_and_repaired() {
        use std::os::unix::fs::MetadataExt;
        let d = PrivateDir::new().unwrap();
        let cache = d.path().join("home/.cache/sockmeter");
        let bytes = b"\x7fELF pretend shim".repeat(10_000);
        let p = extract(std::slice::from_ref(&cache), &bytes, "170000-00ab").unwrap();
        assert_eq!(p, cache.join("libsockmeter_shim-170000-00ab.so"));
        assert_eq!(std::fs::read(&p).unwrap(), bytes);
        assert_eq!(std::fs::metadata(&cache).unwrap().mode() & 0o777, 0o700);
        let ino = std::fs::metadata(&p).unwrap().ino();
        assert_eq!(extract(std::slice::from_ref(&cache), &bytes, "170000-00ab").unwrap(), p);
        assert_eq!(std::fs::metadata(&p).unwrap().ino(), ino, "found, not written again");

        // A damaged file (cut short, or one byte changed) is replaced by a whole one.
        std::fs::write(&p, &bytes[..1000]).unwrap();
        extract(std::slice::from_ref(&cache), &bytes, "170000-00ab").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), bytes);
        let mut changed = bytes.clone();
        changed[5000] ^= 1;
        std::fs::write(&p, &changed).unwrap();
        extract(std::slice::from_ref(&cache), &bytes, "170000-00ab").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), bytes);
        // A symbolic link in its place is not followed: replaced by the file.
        let elsewhere = d.path().join("elsewhere.so");
        std::fs::write(&elsewhere, &bytes).unwrap();
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &p).unwrap();
        extract(std::slice::from_ref(&cache), &bytes, "170000-00ab").unwrap();
        assert!(std::fs::symlink_metadata(&p).unwrap().file_type().is_file());
        let left: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "no temporary file left behind: {left:?}");

        // A loose mode on our own directory is tightened.
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o755)).unwrap();
        extract(std::slice::from_ref(&cache), &bytes, "170000-00ab").unwrap();
        assert_eq!(std::fs::metadata(&cache).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn unusable_cache_directories_are_passed_over_with_reasons() {
        let d = PrivateDir::new().unwrap();
        let bytes = b"shim".to_vec();
        let spaced = d.path().join("with space/sockmeter");
        let a_file = d.path().join("a-file");
        std::fs::write(&a_file, b"").unwrap();
        let good = d.path().join("good");
        let p = extract(&[spaced.clone(), a_file.clone(), good.clone()], &bytes, "4-1").unwrap();
        assert!(p.starts_with(&good), "{}", p.display());
        let e = format!("{:#}", extract(&[spaced, a_file], &bytes, "4-1").unwrap_err());
        assert!(
            e.contains("colon or a space") && e.contains("not a directory") && e.contains("SOCKMETER_SHIM"),
            "{e}"
        );
    }

    #[test]
    fn the_embedded_shim_is_a_shared_object_exporting_the_hooks() {
        assert_eq!(&EMBEDDED[..4], b"\x7fELF");
        let id: Vec<&str> = EMBEDDED_ID.split('-').collect();
        assert_eq!(id[0], EMBEDDED.len().to_string());
        let needle = b"sockmeter_snapshot_json";
        assert!(
            EMBEDDED.windows(needle.len()).any(|w| w == needle),
            "the C API's symbols are in it"
        );
    }
}
