//! Tests of the GOT rewriting: real objects loaded here, their slots found, rewritten and
//! put back, and the page protections kept.

use super::*;

#[test]
fn finds_an_exported_function_through_the_hash_tables() {
    let main = loaded_objects()[0].base;
    // SAFETY: dlsym with a NUL-terminated name.
    let want = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"getpwuid".as_ptr()) } as usize;
    assert_ne!(want, 0);
    assert_eq!(find_function_after(c"getpwuid", main), Some(want));
    assert_eq!(find_function_after(c"no_such_function_anywhere", main), None);
    // Not a function: a data symbol is never returned.
    assert_eq!(find_function_after(c"environ", main), None);
    // A symbol with two versions (glibc's pthread_cond_wait@GLIBC_2.2.5, hidden, and
    // @@GLIBC_2.3.2, the default): the one dlsym returns.
    // SAFETY: as above.
    let cond = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"pthread_cond_wait".as_ptr()) } as usize;
    assert_eq!(find_function_after(c"pthread_cond_wait", main), Some(cond));
}
use std::os::fd::AsRawFd;

use crate::platform::page_prots::text_prots;

const LIB_C: &str = "#include <unistd.h>\n int lib_getpid(void) { return getpid(); }\n\
    int lib_getppid(void) { pid_t (*volatile f)(void) = getppid; return f(); }\n";
const GLOB_DAT: u32 = SLOT_TYPES[0];
const JUMP_SLOT: u32 = SLOT_TYPES[1];
type IntFn = extern "C" fn() -> c_int;

extern "C" fn fake_getpid() -> c_int {
    4242
}
extern "C" fn fake_getppid() -> c_int {
    4343
}
fn replace(name: &CStr) -> Option<usize> {
    match name.to_bytes() {
        b"getpid" => Some(fake_getpid as IntFn as usize),
        b"getppid" => Some(fake_getppid as IntFn as usize),
        _ => None,
    }
}
fn patch(obj: &LoadedObject, rep: &dyn Fn(&CStr) -> Option<usize>) -> Result<usize, GotError> {
    // SAFETY: tests only hand out stand-ins with the real signatures, or patch objects
    // that are never called afterwards.
    unsafe { patch_object(obj, rep) }
}

/// Builds the fixture with `flags`, dlopens it RTLD_NOW|RTLD_DEEPBIND, finds it.
fn build(variant: &str, flags: &[&str]) -> (LoadedObject, IntFn, IntFn) {
    let dir = std::env::temp_dir().join(format!("elf-got-{}-{variant}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (src, so) = (dir.join("got.c"), dir.join("libgot.so"));
    std::fs::write(&src, LIB_C).expect("write fixture");
    let mut cc = std::process::Command::new("cc");
    cc.args(["-shared", "-fPIC", "-O2", "-o"]).args([&so, &src]).args(flags);
    assert!(cc.status().expect("run cc").success(), "cc: {variant}");
    let path = CString::new(so.to_str().expect("utf-8")).expect("path");
    // SAFETY: a trivial test library without constructors.
    let h = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_DEEPBIND) };
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!h.is_null(), "dlopen failed");
    let sym = |n: &[u8]| {
        // SAFETY: `n` is NUL-terminated; the fixture defines both as `int f(void)`.
        let p = unsafe { libc::dlsym(h, n.as_ptr().cast()) };
        assert!(!p.is_null());
        // SAFETY: as above, a non-null address of an `int f(void)` function.
        unsafe { std::mem::transmute::<*mut c_void, IntFn>(p) }
    };
    let obj = loaded_objects().into_iter().find(|o| o.name == path);
    (obj.expect("listed"), sym(b"lib_getpid\0"), sym(b"lib_getppid\0"))
}

fn slot(obj: &LoadedObject, name: &str) -> (usize, u32) {
    let mut out = None;
    for_each_image(&mut |img| {
        let mut f = |s, n: &CStr, k| out = out.or((n.to_bytes() == name.as_bytes()).then_some((s, k)));
        img.base == obj.base && visit_slots(img, &mut f).is_ok()
    });
    out.expect(name)
}

fn prot(addr: usize) -> Option<c_int> {
    maps_prots(&[addr & !4095]).first().copied().flatten()
}

/// Patches getpid (a `kind` slot, on a page `read_only` or not), then getppid.
fn exercise(variant: &str, flags: &[&str], kind: u32, read_only: bool) {
    let (obj, lib_getpid, lib_getppid) = build(variant, flags);
    // SAFETY: getppid has no preconditions.
    let (pid, ppid) = (std::process::id() as c_int, unsafe { libc::getppid() });
    assert_eq!((lib_getpid(), lib_getppid()), (pid, ppid));
    let (pid_slot, ppid_slot) = (slot(&obj, "getpid"), slot(&obj, "getppid"));
    assert_eq!((pid_slot.1, ppid_slot.1), (kind, GLOB_DAT));
    let prots = (prot(pid_slot.0), prot(ppid_slot.0));
    assert_eq!(prots.0.map(|p| p & libc::PROT_WRITE == 0), Some(read_only));
    let only_getpid = |n: &CStr| replace(n).filter(|_| n.to_bytes() == b"getpid");
    assert_eq!(patch(&obj, &only_getpid), Ok(1));
    assert_eq!((lib_getpid(), lib_getppid()), (4242, ppid)); // unpatched one still works
    assert_eq!(patch(&obj, &only_getpid), Ok(0)); // twice is harmless
    assert_eq!(
        (patch(&obj, &replace), lib_getpid(), lib_getppid()),
        (Ok(1), 4242, 4343)
    );
    assert_eq!((prot(pid_slot.0), prot(ppid_slot.0)), prots); // protection restored
}

#[test]
fn relro_now_jump_slot_and_glob_dat() {
    exercise("now", &["-Wl,-z,relro,-z,now"], JUMP_SLOT, true);
}

#[test]
fn lazy_writable_got_plt() {
    exercise("lazy", &["-Wl,-z,relro,-z,lazy"], JUMP_SLOT, false);
}

#[test]
fn no_plt_glob_dat() {
    exercise("noplt", &["-fno-plt", "-Wl,-z,relro,-z,now"], GLOB_DAT, true);
}

#[test]
fn lists_libc_but_not_vdso_and_rejects_stale() {
    let objs = loaded_objects();
    let has = |n: &str| objs.iter().any(|o| o.name.to_string_lossy().contains(n));
    assert!(has("libc.so.6") && !has("vdso"), "{objs:?}");
    assert!(objs.iter().all(|o| patch(o, &|_| None) == Ok(0)));
    let stale = LoadedObject {
        base: 1,
        name: CString::default(),
        dynamic: 8 as *const u8,
    };
    let err = patch(&stale, &|_| Some(1)).unwrap_err();
    assert_eq!((err.clone(), err.to_string().is_empty()), (GotError::NotLoaded, false));
}

#[test]
fn pointer_resolution_and_relro_fallback() {
    let (p_offset, p_paddr, p_filesz, p_align) = (0, 0, 0, 0);
    let ph = |p_type, p_vaddr, p_memsz| libc::Elf64_Phdr {
        p_type,
        p_flags: 6, // PF_R | PF_W
        p_offset,
        p_vaddr,
        p_paddr,
        p_filesz,
        p_memsz,
        p_align,
    };
    let phdrs = [ph(PT_LOAD, 0, 0x3000), ph(PT_GNU_RELRO, 0x1000, 0x1800)];
    let img = Image {
        base: 0x10000,
        name: <&CStr>::default(),
        phdrs: &phdrs,
    };
    assert_eq!(img.ptr(Some(0x10100), 8, ""), Ok(0x10100)); // relocated in place
    assert_eq!(img.ptr(Some(0x100), 8, ""), Ok(0x10100)); // not relocated
    assert!(img.ptr(Some(0x2ffc), 8, "").is_err() && img.ptr(None, 8, "").is_err());
    assert_eq!(img.expected_prot(0x11000, 0x11008, 4096), Some(libc::PROT_READ));
    assert_eq!(
        img.expected_prot(0x12000, 0x12008, 4096),
        Some(libc::PROT_READ | libc::PROT_WRITE)
    );
}

/// `cargo test --release -- --ignored --nocapture bench_libcurl`
#[test]
#[ignore]
fn bench_libcurl() {
    extern "C" fn hook() {}
    let rep = |n: &CStr| match n.to_bytes() {
        b"send" | b"recv" | b"sendto" | b"recvfrom" | b"sendmsg" | b"recvmsg" | b"connect" | b"close" | b"shutdown"
        | b"read" | b"write" => Some(hook as extern "C" fn() as usize),
        _ => None,
    };
    let (before, t) = (loaded_objects(), std::time::Instant::now());
    let path = b"/usr/lib/x86_64-linux-gnu/libcurl.so.4\0";
    // SAFETY: NUL-terminated path; libcurl is loaded but never called once patched.
    let h = unsafe { libc::dlopen(path.as_ptr().cast(), libc::RTLD_NOW | libc::RTLD_DEEPBIND) };
    let open = t.elapsed();
    assert!(!h.is_null());
    let mut fresh: Vec<_> = loaded_objects().into_iter().filter(|o| !before.contains(o)).collect();
    let curl = fresh.iter().position(|o| o.name.to_bytes().ends_with(b"libcurl.so.4"));
    let curl = fresh.swap_remove(curl.expect("libcurl loaded"));
    let t = std::time::Instant::now();
    let n = patch(&curl, &rep).unwrap();
    let first = t.elapsed();
    let t = std::time::Instant::now();
    assert!((0..1000).all(|_| patch(&curl, &rep) == Ok(0)));
    let again = t.elapsed() / 1000;
    let t = std::time::Instant::now();
    let more: usize = fresh.iter().map(|o| patch(o, &rep).unwrap()).sum();
    let (others, rest) = (fresh.len(), t.elapsed());
    let file = std::fs::File::open("/proc/self/maps").expect("maps");
    let (page, mut prot) = ([curl.dynamic as usize & !4095], [None]);
    let t = std::time::Instant::now();
    text_prots(file.as_raw_fd().into(), &page, &mut prot);
    println!("text /proc/self/maps lookup of libcurl's page: {:?}", t.elapsed());
    println!("dlopen {open:?}; libcurl: {n} slots in {first:?}, unchanged re-patch {again:?}");
    println!("its {others} dependencies: {more} slots in {rest:?}");
}
