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
