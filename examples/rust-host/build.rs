//! Build script of the Rust host: links `libsockmeter_shim.so` ahead of libc, and compiles
//! the C `weather` plugin.
//!
//! **Linking the shim.** The shim is a cdylib of this workspace, and a cdylib cannot be a
//! Cargo dependency, so while `cargo build --workspace` links this binary the shim may not be
//! built yet (members build in parallel), or may be half-written. The link therefore does not
//! use the real shim at all: this script compiles an empty *stand-in* library named
//! `libsockmeter_shim.so` (soname `libsockmeter_shim.so`) into `OUT_DIR` and links against
//! that. Its only symbol is `sockmeter_version`, which the host calls directly: that use is
//! what keeps the library NEEDED under rustc's `--as-needed` (the `-as-needed` link modifier
//! is unstable), while everything else goes through `sockmeter::embed`, which finds the
//! shim's functions with `dlsym`. The binary then records `NEEDED libsockmeter_shim.so`
//! before `libc.so.6` (this crate's native libraries precede std's `-lc` on the link line),
//! and a RUNPATH of `$ORIGIN` (the shim and
//! this binary both land in `target/<profile>/`) plus that directory's absolute path. At run
//! time the loader finds the real shim there: the build order no longer matters, only that
//! the workspace was built. `examples/README.md` has the `readelf -d` check.
//!
//! **The weather plugin.** `examples/plugins/weather.c` is compiled with `cc -shared ... -lcurl`
//! into `OUT_DIR/libweather_plugin.so`, whose path the host gets as
//! `SOCKMETER_EXAMPLE_WEATHER`. Without libcurl's headers (`apt-get install
//! libcurl4-openssl-dev`) the build goes on with a warning and the host says why the plugin
//! is missing when it runs: an example must not break the workspace's build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".to_string())
}

/// Runs the C compiler; on failure returns its stderr.
fn compile(args: &[&str]) -> Result<(), String> {
    let out = Command::new(cc())
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cc()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"));
    // OUT_DIR is <target>/[<triple>/]<profile>/build/<pkg>-<hash>/out: the shim is built
    // into <target>/[<triple>/]<profile>/, next to this binary.
    let profile_dir: PathBuf = out
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .expect("OUT_DIR has the usual depth");

    // The stand-in for the link.
    let stub_dir = out.join("link-stub");
    std::fs::create_dir_all(&stub_dir).expect("create OUT_DIR/link-stub");
    let stub_src = stub_dir.join("stub.c");
    std::fs::write(
        &stub_src,
        "/* link-time stand-in for libsockmeter_shim.so; the real one is loaded at run time */\n\
         const char *sockmeter_version(void) { return \"link-stub\"; }\n",
    )
    .expect("write stub.c");
    let stub = stub_dir.join("libsockmeter_shim.so");
    if let Err(e) = compile(&[
        "-shared",
        "-fPIC",
        "-Wl,-soname,libsockmeter_shim.so",
        "-o",
        stub.to_str().expect("utf-8 OUT_DIR"),
        stub_src.to_str().expect("utf-8 OUT_DIR"),
    ]) {
        panic!("cannot build the link stand-in for the shim with {}: {e}", cc());
    }
    println!("cargo:rustc-link-search=native={}", stub_dir.display());
    println!("cargo:rustc-link-lib=dylib=sockmeter_shim");
    println!("cargo:rustc-link-arg-bins=-Wl,-rpath,$ORIGIN:{}", profile_dir.display());

    // The C plugin.
    let src = manifest.join("../plugins/weather.c");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let so = out.join("libweather_plugin.so");
    let built = compile(&[
        "-shared",
        "-fPIC",
        "-O2",
        "-g",
        "-Wall",
        "-o",
        so.to_str().expect("utf-8 OUT_DIR"),
        src.to_str().expect("utf-8 manifest dir"),
        "-lcurl",
    ]);
    match built {
        Ok(()) => {
            println!("cargo:rustc-env=SOCKMETER_EXAMPLE_WEATHER={}", so.display());
            println!("cargo:rustc-env=SOCKMETER_EXAMPLE_WEATHER_ERROR=");
        }
        Err(e) => {
            let first = e.lines().next().unwrap_or("").to_string();
            println!("cargo:warning=the weather example plugin was not built (libcurl headers missing? apt-get install libcurl4-openssl-dev): {first}");
            println!("cargo:rustc-env=SOCKMETER_EXAMPLE_WEATHER=");
            println!(
                "cargo:rustc-env=SOCKMETER_EXAMPLE_WEATHER_ERROR=examples/plugins/weather.c did not compile when this host was built ({first}); install libcurl4-openssl-dev and rebuild"
            );
        }
    }
}
