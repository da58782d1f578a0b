//! macOS: the shim's CoreFoundation hooks import CoreFoundation's functions weakly, found by
//! flat lookup at load (the shim does not link CoreFoundation: a host without it loads none).
//! The linker must leave those symbols undefined; `shim/tests/macho.rs` checks that nothing
//! else is left to flat lookup.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("macos") {
        println!("cargo:rustc-cdylib-link-arg=-undefined");
        println!("cargo:rustc-cdylib-link-arg=dynamic_lookup");
    }
}
