//! Where `sockmeter listen` puts its socket: a directory only the user can enter.
//!
//! The default is `$XDG_RUNTIME_DIR/sockmeter` (the user's own runtime directory), or
//! `/tmp/sockmeter-UID` where there is none. It is created with mode 0700; one that exists must
//! be a real directory (not a symbolic link), owned by the user, with no permission for anyone
//! else: in a shared place such as /tmp, another user could have made it first to read or feed
//! the reporter's socket. A directory named `sockmeter.*` is refused too: that name marks
//! `sockmeter run`'s private directories, whose processes never reconnect
//! (`sockmeter::outbox::reconnects`).

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::private_dir::MAX_SOCKET_PATH;

/// The socket's name in the default directory.
pub const SOCKET_NAME: &str = "sockmeter.sock";

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// The default socket path: in `$XDG_RUNTIME_DIR/sockmeter/` when that variable names an
/// absolute directory short enough for a socket path, else in `/tmp/sockmeter-UID/`.
pub fn default_socket() -> PathBuf {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_dir())
        .map(|p| p.join("sockmeter"))
        .filter(|d| d.as_os_str().len() + 1 + SOCKET_NAME.len() <= MAX_SOCKET_PATH);
    xdg.unwrap_or_else(|| PathBuf::from(format!("/tmp/sockmeter-{}", euid())))
        .join(SOCKET_NAME)
}

/// Makes sure `dir` is a directory only this user can enter, creating it (0700) when missing.
pub fn prepare(dir: &Path) -> Result<()> {
    if dir
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("sockmeter."))
    {
        bail!(
            "{}: directories named sockmeter.* are sockmeter run's private ones (their processes never reconnect); choose another name",
            dir.display()
        );
    }
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        }
        Err(e) => return Err(e).with_context(|| format!("cannot look at {}", dir.display())),
        Ok(_) => {}
    }
    check(dir)
}

/// Refuses `dir` unless it is a real directory of this user's, closed to everyone else.
pub fn check(dir: &Path) -> Result<()> {
    let m = std::fs::symlink_metadata(dir).with_context(|| format!("cannot look at {}", dir.display()))?;
    if m.file_type().is_symlink() {
        bail!(
            "{} is a symbolic link; the reporter's socket must be in a real directory of yours",
            dir.display()
        );
    }
    if !m.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    if m.uid() != euid() {
        bail!(
            "{} belongs to uid {}, not to you (uid {}): another user could read or feed the reporter's socket there",
            dir.display(),
            m.uid(),
            euid()
        );
    }
    let mode = m.mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} is open to other users (mode {mode:04o}): make it 0700 (chmod 700 {}) or choose another directory",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_private_and_refused_when_open_or_foreign() {
        let base = crate::private_dir::PrivateDir::new().unwrap();
        let d = base.path().join("listen");
        prepare(&d).unwrap();
        assert_eq!(std::fs::metadata(&d).unwrap().permissions().mode() & 0o777, 0o700);
        prepare(&d).expect("an existing private directory is taken");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = format!("{:#}", prepare(&d).unwrap_err());
        assert!(e.contains("open to other users (mode 0755)"), "{e}");
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert!(format!("{:#}", prepare(&link).unwrap_err()).contains("symbolic link"));
        let e = format!("{:#}", prepare(&base.path().join("sockmeter.abc")).unwrap_err());
        assert!(e.contains("sockmeter run's private ones"), "{e}");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&d, Some(4242), None).expect("chown (the tests run as root)");
        let e = format!("{:#}", prepare(&d).unwrap_err());
        assert!(e.contains("belongs to uid 4242, not to you"), "{e}");
        assert!(default_socket().ends_with(SOCKET_NAME));
    }
}
