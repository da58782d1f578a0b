//! A private temporary directory (mode 0700, made with `mkdtemp`) to hold the reporter's
//! Unix socket, removed with everything in it when dropped.
//!
//! Only the user who runs sockmeter can reach a socket inside it, so no other user can feed
//! the reporter made-up counts.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The longest socket path `bind` accepts (`sun_path` holds 108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// A directory removed (with its contents) on drop.
#[derive(Debug)]
pub struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    /// Creates `sockmeter.XXXXXX` under `$TMPDIR` (or `/tmp` when `$TMPDIR` is unset, relative,
    /// or too long for a socket path inside it).
    pub fn new() -> Result<Self> {
        let base = std::env::var_os("TMPDIR")
            .map(PathBuf::from)
            .filter(|p| {
                p.is_absolute() && p.as_os_str().len() + "/sockmeter.XXXXXX/sockmeter.sock".len() <= MAX_SOCKET_PATH
            })
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        Self::new_in(&base)
    }

    /// Creates `sockmeter.XXXXXX` under `base`.
    pub fn new_in(base: &Path) -> Result<Self> {
        let template = base.join("sockmeter.XXXXXX");
        let c =
            CString::new(template.as_os_str().as_bytes()).context("temporary directory path contains a NUL byte")?;
        let mut bytes = c.into_bytes_with_nul();
        // SAFETY: `bytes` is a NUL-terminated, writable buffer that mkdtemp fills in place
        // (it only rewrites the trailing XXXXXX); it outlives the call.
        let r = unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast::<libc::c_char>()) };
        if r.is_null() {
            let e = std::io::Error::last_os_error();
            return Err(e).with_context(|| format!("cannot create a private directory in {}", base.display()));
        }
        bytes.pop();
        let path = PathBuf::from(OsString::from_vec(bytes));
        let dir = PrivateDir { path };
        // mkdtemp makes it 0700 already; say so explicitly whatever the umask did.
        std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", dir.path.display()))?;
        Ok(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_removed_on_drop() {
        let d = PrivateDir::new().unwrap();
        let p = d.path().to_path_buf();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::write(p.join("f"), b"x").unwrap();
        drop(d);
        assert!(!p.exists());
    }

    #[test]
    fn missing_base_is_a_clear_error() {
        let e = PrivateDir::new_in(Path::new("/nonexistent/sockmeter-base")).unwrap_err();
        assert!(
            format!("{e:#}").contains("cannot create a private directory in /nonexistent/sockmeter-base"),
            "{e:#}"
        );
    }
}
