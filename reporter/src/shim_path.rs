//! Finding the shim (`libsockmeter_shim.so`) that `run` preloads.
//!
//! In order: the `SOCKMETER_SHIM` environment variable (an error if it names nothing, rather
//! than quietly using another shim), the library next to the `sockmeter` executable (a cargo
//! build), then `../lib/` relative to it (an installed prefix). The result is canonical, so
//! `LD_PRELOAD` does not depend on the command's working directory.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The shim's file name.
#[cfg(not(target_os = "macos"))]
pub const SHIM_NAME: &str = "libsockmeter_shim.so";
/// The shim's file name.
#[cfg(target_os = "macos")]
pub const SHIM_NAME: &str = "libsockmeter_shim.dylib";
/// The variable that overrides where the shim is.
pub const SHIM_ENV: &str = "SOCKMETER_SHIM";

/// The shim for this process: from `SOCKMETER_SHIM` or the current executable's location.
pub fn find() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot tell where the sockmeter executable is")?;
    find_from(std::env::var_os(SHIM_ENV).as_deref(), &exe)
}

/// The shim given the value of `SOCKMETER_SHIM` (if set) and the executable's path.
pub fn find_from(env: Option<&OsStr>, exe: &Path) -> Result<PathBuf> {
    if let Some(v) = env {
        if v.is_empty() {
            bail!("{SHIM_ENV} is set but empty: unset it, or set it to the path of {SHIM_NAME}");
        }
        let p = Path::new(v);
        if !p.is_file() {
            bail!(
                "{SHIM_ENV}={} does not name a file (it should be the path of {SHIM_NAME})",
                p.display()
            );
        }
        return p
            .canonicalize()
            .with_context(|| format!("cannot resolve {SHIM_ENV}={}", p.display()));
    }
    let exe = exe.canonicalize().unwrap_or_else(|_| exe.to_path_buf());
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let candidates = [dir.join(SHIM_NAME), dir.join("..").join("lib").join(SHIM_NAME)];
    for c in &candidates {
        if c.is_file() {
            return c
                .canonicalize()
                .with_context(|| format!("cannot resolve {}", c.display()));
        }
    }
    bail!(
        "cannot find the shim {SHIM_NAME}: looked in {} and {}; build it (cargo build -p sockmeter-shim) or set {SHIM_ENV}",
        candidates[0].display(),
        candidates[1].display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::private_dir::PrivateDir;

    #[test]
    fn next_to_the_executable_then_lib() {
        let d = PrivateDir::new().unwrap();
        let bin = d.path().join("bin");
        let lib = d.path().join("lib");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&lib).unwrap();
        let exe = bin.join("sockmeter");
        std::fs::write(&exe, b"").unwrap();

        let e = find_from(None, &exe).unwrap_err().to_string();
        assert!(e.contains("cannot find the shim") && e.contains(SHIM_ENV), "{e}");

        std::fs::write(lib.join(SHIM_NAME), b"").unwrap();
        assert_eq!(
            find_from(None, &exe).unwrap(),
            lib.join(SHIM_NAME).canonicalize().unwrap()
        );
        std::fs::write(bin.join(SHIM_NAME), b"").unwrap();
        assert_eq!(
            find_from(None, &exe).unwrap(),
            bin.join(SHIM_NAME).canonicalize().unwrap()
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
            shim.canonicalize().unwrap()
        );
        let e = find_from(Some(OsStr::new("/nonexistent/shim.so")), exe)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("SOCKMETER_SHIM=/nonexistent/shim.so does not name a file"),
            "{e}"
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
}
