//! macOS: the shim's CoreFoundation hooks import CoreFoundation's functions weakly, found by
//! flat lookup at load (the shim does not link CoreFoundation: a host without it loads none).
//! The linker must leave those symbols undefined; `shim/tests/macho.rs` checks that nothing
//! else is left to flat lookup.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        static_unwinder();
    }
    if os == "linux" {
        // The shim's references to its own functions (the hook table's wrappers, std calling a
        // hooked `read`) bind inside the shim at link time: a relative relocation each instead
        // of a symbol lookup at every process start.
        println!("cargo:rustc-cdylib-link-arg=-Wl,-Bsymbolic-functions");
        // Functions marked `.text.hot.sockmeter` (the hook wrappers and a forked child's path:
        // `src/lib.rs`, "Hot text") stay together in one output section.
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,keep-text-section-prefix");
    }
    if os == "linux" && std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64") && env == "gnu" {
        preload_stage();
    }
    if os == "macos" {
        println!("cargo:rustc-cdylib-link-arg=-undefined");
        println!("cargo:rustc-cdylib-link-arg=dynamic_lookup");
    }
}

/// Linux (glibc): the unwinder (`catch_unwind` shields every handler) comes from libgcc's static
/// archive, linked into the shim whole, instead of from `libgcc_s.so.1`: every process that
/// loads the shim would otherwise map a second library and run its constructor (CPUID, which
/// traps to the hypervisor on a VM). With the archive's symbols defined first, the linker's
/// `--as-needed` drops `-lgcc_s`; the copy is private (the cdylib exports only its own symbols).
/// `shim/tests/load.rs` checks that the shim needs nothing but libc and the loader.
fn static_unwinder() {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = std::process::Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output();
    let path = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => String::new(),
    };
    let path = std::path::Path::new(&path);
    let Some(dir) = path.parent().filter(|_| path.is_absolute() && path.exists()) else {
        println!("cargo:warning=libgcc_eh.a not found: the shim links libgcc_s.so.1");
        return;
    };
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static:+whole-archive,-bundle=gcc_eh");
}

/// Linux (x86_64, glibc): the preload stage, `libsockmeter_preload.so` (`stage1/lib.rs`), a
/// `no_std` library that must not unwind, which the workspace's profile (built to unwind, for
/// the shim's `catch_unwind`) cannot make: compiled here with `rustc` and `panic = "abort"`,
/// and put beside the shim in the profile's directory (`target/<profile>/`), where `sockmeter
/// run` looks for it. Other targets have no preload stage: `sockmeter run` then preloads the
/// shim itself.
fn preload_stage() {
    use std::path::PathBuf;
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    for f in ["stage1", "src/hooks/list.rs", "src/hooks/sysclass.rs"] {
        println!("cargo:rerun-if-changed={}", manifest.join(f).display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let lib = out.join("libsockmeter_preload.so");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    let mut cmd = std::process::Command::new(rustc);
    cmd.args([
        "--edition",
        "2021",
        "--crate-type",
        "cdylib",
        "--crate-name",
        "sockmeter_preload",
    ])
    .args([
        "-C",
        "panic=abort",
        "-C",
        "opt-level=3",
        "-C",
        "debuginfo=1",
        "-l",
        "dylib=c",
    ])
    .arg("-o")
    .arg(&lib)
    .arg(manifest.join("stage1").join("lib.rs"));
    if target != host {
        cmd.args(["--target", &target]);
    }
    let res = cmd.output().expect("cannot run rustc for the preload stage");
    if !res.status.success() {
        panic!(
            "building the preload stage failed:\n{}",
            String::from_utf8_lossy(&res.stderr)
        );
    }
    // Clippy does not see the stage (not a cargo crate): rustc's warnings are passed on.
    for line in String::from_utf8_lossy(&res.stderr)
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        println!("cargo:warning=preload stage: {line}");
    }
    // OUT_DIR is <target>/[<triple>/]<profile>/build/<pkg>-<hash>/out.
    let profile_dir = out
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "build"))
        .and_then(|b| b.parent())
        .expect("OUT_DIR is inside a cargo target directory");
    let dest = profile_dir.join("libsockmeter_preload.so");
    let tmp = profile_dir.join(".libsockmeter_preload.so.tmp");
    std::fs::copy(&lib, &tmp).expect("cannot copy the preload stage");
    std::fs::rename(&tmp, &dest).expect("cannot put the preload stage beside the shim");
}
