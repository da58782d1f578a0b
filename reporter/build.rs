//! Builds the shim (`libsockmeter_shim.so`) and hands its bytes to the `sockmeter` binary, which
//! embeds them (`include_bytes!`, see `src/shim_path.rs`): an installed or copied `sockmeter`
//! needs no file beside it (`cargo install --path reporter` installs only the binary).
//!
//! Cargo has no stable way to make one package's cdylib an input of another (artifact
//! dependencies are nightly-only), so this script runs cargo itself: `cargo build -p
//! sockmeter-shim` of this same workspace, with the same profile and target, into a target
//! directory of its own inside the outer build's profile directory (`<target>/<profile>/
//! embedded-shim`). A target directory of its own because the outer cargo holds the lock of
//! its own; inside the outer one so that `cargo clean` removes it and later builds are
//! incremental. Debug information is stripped from this copy (the one beside the binary in a
//! workspace build keeps it): it is what an installed `sockmeter` writes to the user's cache.
//!
//! The script reruns when the shim's or the core library's sources change; the nested cargo
//! then rebuilds only what changed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The shim's file name for a target (`.dylib` on Apple's).
fn shim_name(target: &str) -> &'static str {
    if target.contains("-apple-") {
        "libsockmeter_shim.dylib"
    } else {
        "libsockmeter_shim.so"
    }
}

fn main() {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .expect("reporter/ lives in the workspace")
        .to_path_buf();
    for watched in ["shim", "src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    if !root.join("shim").join("Cargo.toml").is_file() {
        panic!(
            "the shim's sources are not at {}: sockmeter is built from its workspace (a clone: `cargo install --path reporter`)",
            root.join("shim").display()
        );
    }

    let out_dir = PathBuf::from(env("OUT_DIR"));
    // OUT_DIR is <target>/[<triple>/]<profile>/build/<pkg>-<hash>/out.
    let profile_dir = out_dir
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "build"))
        .and_then(Path::parent)
        .expect("OUT_DIR is inside a cargo target directory")
        .to_path_buf();
    let nested = profile_dir.join("embedded-shim");
    let release = env("PROFILE") == "release";
    let target = env("TARGET");
    let cross = target != env("HOST");

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("-p")
        .arg("sockmeter-shim")
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&nested);
    if root.join("Cargo.lock").is_file() {
        cmd.arg("--locked");
    }
    if release {
        cmd.arg("--release");
    }
    if cross {
        cmd.arg("--target").arg(&target);
    }
    let strip = if release {
        "CARGO_PROFILE_RELEASE_STRIP"
    } else {
        "CARGO_PROFILE_DEV_STRIP"
    };
    cmd.env(strip, "debuginfo")
        // Under `cargo clippy` this names clippy-driver: the nested build compiles, it does
        // not lint (the outer run lints the shim itself).
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET");
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the shim: {e}"));
    assert!(status.success(), "building the shim to embed failed ({status})");

    let mut built = nested.clone();
    if cross {
        built.push(&target);
    }
    built.push(if release { "release" } else { "debug" });
    built.push(shim_name(&target));
    let bytes = std::fs::read(&built).unwrap_or_else(|e| panic!("cannot read {}: {e}", built.display()));
    // A copy of our own: another build may rebuild the nested one while this crate compiles.
    let copy = out_dir.join(shim_name(&target));
    std::fs::write(&copy, &bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", copy.display()));
    println!("cargo:rustc-env=SOCKMETER_EMBEDDED_SHIM={}", copy.display());
    println!("cargo:rustc-env=SOCKMETER_EMBEDDED_SHIM_ID={}", content_id(&bytes));
}

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("cargo sets {k} for build scripts"))
}

/// The embedded shim's name in the cache: its length and a 64-bit FNV-1a of its bytes (a
/// name, not a proof: the file is compared byte for byte before use).
fn content_id(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{}-{h:016x}", bytes.len())
}
