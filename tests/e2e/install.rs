//! The README's install command, for real: `cargo install --path reporter` into a fresh root,
//! and the installed `sockmeter` (nothing beside it: cargo installs only the binary) run from
//! another directory, with a fresh home, against a real program and an unmetered peer. It finds
//! its shim by itself (the copy embedded in it, written once to the user's cache, private), and
//! the counts are exact.
//!
//! The install reuses this workspace's target directory (`CARGO_TARGET_DIR`, and `--debug`:
//! the profile `cargo build --workspace` built), so it compiles nothing new; the time it took
//! is printed (`cargo test -- --nocapture` shows it).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use sockmeter::report::Report;

use crate::harness::{fresh_dir, python, root, target_dir, Sink, WithoutSockmeterEnv};

#[test]
fn cargo_install_gives_a_sockmeter_that_works_from_any_directory() {
    let install_root = fresh_dir("install-root");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // target/<profile>/ → target/
    let target = target_dir().parent().expect("target dir").to_path_buf();
    let t0 = Instant::now();
    let out = Command::new(&cargo)
        .args([
            "install",
            "--path",
            "reporter",
            "--debug",
            "--locked",
            "--offline",
            "--root",
        ])
        .arg(&install_root)
        .current_dir(root())
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("CARGO_INSTALL_ROOT")
        .stdin(Stdio::null())
        .output()
        .expect("run cargo install");
    let took = t0.elapsed();
    assert!(
        out.status.success(),
        "cargo install failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("cargo install --path reporter --debug (reusing the workspace's target dir) took {took:.1?}");
    let bin_dir = install_root.join("bin");
    let installed = bin_dir.join("sockmeter");
    let beside: Vec<String> = std::fs::read_dir(&bin_dir)
        .expect("bin dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside, ["sockmeter"], "cargo installs the binary alone");

    // Another directory, a fresh home: nothing of the workspace is near.
    let home = fresh_dir("install-home");
    let work = fresh_dir("install-cwd");
    let run = |args: &[&str]| {
        Command::new(&installed)
            .args(args)
            .current_dir(&work)
            .without_sockmeter_env()
            .env("HOME", &home)
            .env_remove("XDG_CACHE_HOME")
            .stdin(Stdio::null())
            .output()
            .expect("run the installed sockmeter")
    };
    let o = run(&["shim-path"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let shim_path = String::from_utf8(o.stdout).expect("utf-8");
    let shim = Path::new(shim_path.trim_end());
    let cache = home.join(".cache/sockmeter");
    assert_eq!(shim.parent(), Some(cache.as_path()), "{}", shim.display());
    let name = shim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("libsockmeter_shim-") && name.ends_with(".so"),
        "{name}"
    );
    assert_eq!(
        std::fs::metadata(&cache).expect("cache").mode() & 0o777,
        0o700,
        "a private cache"
    );

    let sink = Sink::start();
    let script = format!(
        "import socket\nc = socket.create_connection(('127.0.0.1', {}))\nc.sendall(b'i' * 3000000)\nc.close()\n",
        sink.port
    );
    let o = run(&["run", "--json", "r.json", "--", python(), "-c", &script]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(sink.received(), 3_000_000);
    let r: Report = serde_json::from_str(&std::fs::read_to_string(work.join("r.json")).expect("report")).expect("json");
    assert_eq!(r.totals.tx_bytes, 3_000_000, "exact, with the embedded shim\n{err}");
    assert!(
        err.contains(": 0 B in, 3.0 MB out over 1 connection with 127.0.0.1:"),
        "{err}"
    );
    // The shim was written once: a second run finds it, the same file.
    let ino = std::fs::metadata(shim).expect("shim").ino();
    let o = run(&["shim-path"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), shim_path);
    assert_eq!(std::fs::metadata(shim).expect("shim").ino(), ino, "not written again");
}
