//! GOT rewriting for objects that bypass `LD_PRELOAD` interposition.
//!
//! **Why.** A plugin opened with `dlopen(path, RTLD_NOW | RTLD_DEEPBIND)` binds its
//! undefined symbols against its own dependency tree first, so its calls to `send`,
//! `connect`, ... go straight to libc and skip the shim's hooks.
//!
//! **What.** After such a `dlopen`, the shim diffs [`loaded_objects`] before/after and
//! calls [`patch_object`] on each new object. That points the object's GOT slots for
//! the hooked names at the hooks (the kubo/plthook technique, written from scratch).
//!
//! **How.** The object is found again with `dl_iterate_phdr`, and all work happens
//! inside its callback. glibc holds `dl_load_write_lock` there, so the object cannot be
//! unmapped meanwhile and two patchers cannot race. `PT_DYNAMIC` gives `DT_RELA`/`SZ`/
//! `ENT`, `DT_JMPREL`/`DT_PLTRELSZ`/`DT_PLTREL`, `DT_SYMTAB`/`DT_SYMENT` and
//! `DT_STRTAB`/`DT_STRSZ`. The module then takes each `JUMP_SLOT`/`GLOB_DAT`
//! relocation (`R_X86_64_*`, `R_AARCH64_*`) whose symbol is *undefined* in the object.
//! Its own definitions are left alone. Each slot is set with one aligned atomic store.
//! ld.so relocates `d_ptr` values in place only when the dynamic section is writable
//! (not for the vDSO or a read-only `PT_DYNAMIC`). So a pointer is taken as absolute if
//! it falls inside one of the object's `PT_LOAD` segments, else as base-relative. Every
//! table, symbol, string and slot is checked against those segments before it is read.
//! A read-only page (RELRO, `-z now`) is `mprotect`ed writable and then given back its
//! old protection. That protection comes from `/proc/self/maps`: the PROCMAP_QUERY
//! ioctl where available, else the text, read with raw syscalls so no hooked libc I/O
//! runs under the lock. If that fails, it is derived from `PT_LOAD`/`PT_GNU_RELRO` as
//! ld.so applied them.
//!
//! **Limits.** Only GOT-mediated references are redirected. Not covered: pointers from
//! `dlsym`, absolute data relocations (`R_X86_64_64`/`R_AARCH64_ABS64`, e.g. static
//! tables of function pointers), `IRELATIVE`, calls bound at static link time, raw
//! syscalls, and objects still being loaded by another thread (ld.so may overwrite a
//! slot later). Names are matched without symbol versions. Linux/glibc, ELF64 RELA only
//! (x86_64, aarch64; elsewhere `Unsupported`). `replacement` runs under the loader lock,
//! so it must be a plain lookup: no `dlsym`/`dlopen`. Never patch the shim itself.

use std::ffi::{c_int, c_void, CStr, CString};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::page_prots::maps_prots;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_GNU_RELRO: u32 = 0x6474_e552;
const DT_PLTRELSZ: usize = 2;
const DT_STRTAB: usize = 5;
const DT_SYMTAB: usize = 6;
const DT_RELA: usize = 7;
const DT_RELASZ: usize = 8;
const DT_RELAENT: usize = 9;
const DT_STRSZ: usize = 10;
const DT_SYMENT: usize = 11;
const DT_PLTREL: usize = 20;
const DT_JMPREL: usize = 23;
const AT_SYSINFO_EHDR: libc::c_ulong = 33;
const RELA_SIZE: usize = 24;
const SYM_SIZE: usize = 24;
const SLOT_SIZE: usize = std::mem::size_of::<usize>();
/// GOT slot relocation types: `[GLOB_DAT, JUMP_SLOT]`.
#[cfg(target_arch = "x86_64")]
const SLOT_TYPES: &[u32] = &[6, 7];
#[cfg(target_arch = "aarch64")]
const SLOT_TYPES: &[u32] = &[1025, 1026];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SLOT_TYPES: &[u32] = &[];

/// One loaded object as the dynamic loader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedObject {
    /// Load bias (`l_addr` / `dlpi_addr`); 0 for a non-PIE main program.
    pub base: usize,
    /// Path as the loader recorded it; empty for the main program.
    pub name: CString,
    /// Address of the object's dynamic section (`l_ld`).
    pub dynamic: *const u8,
}

/// Why [`patch_object`] could not (fully) patch an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GotError {
    /// No loaded object has this base and dynamic section (e.g. it was dlclosed).
    NotLoaded,
    /// The dynamic section or a table it points to is missing or out of bounds.
    BadDynamic(&'static str),
    /// Not handled here: REL relocations, odd entry sizes, another architecture.
    Unsupported(&'static str),
    /// Making a GOT page writable failed; slots on earlier pages may already be patched.
    Protect {
        /// Page address.
        addr: usize,
        /// `errno` from `mprotect`.
        errno: i32,
    },
    /// Slots were patched, but the page could not be given back its old protection.
    Restore {
        /// Page address.
        addr: usize,
        /// `errno` from `mprotect`.
        errno: i32,
    },
}

impl fmt::Display for GotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotLoaded => write!(f, "object is not (or no longer) loaded"),
            Self::BadDynamic(what) => write!(f, "malformed dynamic section: {what}"),
            Self::Unsupported(what) => write!(f, "unsupported object: {what}"),
            Self::Protect { addr, errno } => write!(f, "mprotect RW {addr:#x}: errno {errno}"),
            Self::Restore { addr, errno } => write!(f, "mprotect back {addr:#x}: errno {errno}"),
        }
    }
}

impl std::error::Error for GotError {}

/// An object as seen from inside a `dl_iterate_phdr` callback.
struct Image<'a> {
    base: usize,
    name: &'a CStr,
    phdrs: &'a [libc::Elf64_Phdr],
}

impl Image<'_> {
    /// Absolute `[start, end)` of a program header's memory image.
    fn span(&self, p: &libc::Elf64_Phdr) -> Option<(usize, usize)> {
        let start = self.base.checked_add(usize::try_from(p.p_vaddr).ok()?)?;
        Some((start, start.checked_add(usize::try_from(p.p_memsz).ok()?)?))
    }

    fn dynamic(&self) -> Option<(usize, usize)> {
        let (start, end) = self.span(self.phdrs.iter().find(|p| p.p_type == PT_DYNAMIC)?)?;
        Some((start, end.checked_sub(start)?))
    }

    /// The readable `PT_LOAD` segment that wholly contains `[addr, addr + len)`.
    fn segment(&self, addr: usize, len: usize) -> Option<&libc::Elf64_Phdr> {
        let end = addr.checked_add(len)?;
        self.phdrs.iter().find(|p| {
            let inside = self.span(p).is_some_and(|(s, e)| s <= addr && end <= e);
            p.p_type == PT_LOAD && p.p_flags & libc::PF_R != 0 && inside
        })
    }

    /// Resolves a `d_ptr` whether or not ld.so relocated it in place.
    fn ptr(&self, value: Option<u64>, len: usize, what: &'static str) -> Result<usize, GotError> {
        let v = value.and_then(|v| usize::try_from(v).ok());
        let abs = v.filter(|&v| v >= self.base && self.segment(v, len).is_some());
        let rel = || v.and_then(|v| self.base.checked_add(v));
        let addr = abs.or_else(|| rel().filter(|&a| self.segment(a, len).is_some()));
        addr.ok_or(GotError::BadDynamic(what))
    }

    /// The absolute `[start, end)` its `PT_LOAD` segments cover.
    fn extent(&self) -> (usize, usize) {
        let spans = self
            .phdrs
            .iter()
            .filter(|p| p.p_type == PT_LOAD)
            .filter_map(|p| self.span(p));
        spans.fold((usize::MAX, 0), |(lo, hi), (s, e)| (lo.min(s), hi.max(e)))
    }

    fn is_vdso(&self) -> bool {
        let n = self.name.to_bytes();
        // SAFETY: getauxval only reads the process's auxiliary vector.
        let ehdr = usize::try_from(unsafe { libc::getauxval(AT_SYSINFO_EHDR) }).unwrap_or(0);
        n == b"linux-vdso.so.1" || (ehdr != 0 && self.segment(ehdr, 1).is_some())
    }

    /// Protection ld.so left on `page` (holding `slot`): read-only inside `PT_GNU_RELRO`
    /// (whose end glibc rounds down), else the `PT_LOAD` flags. Fallback only.
    fn expected_prot(&self, page: usize, slot: usize, page_size: usize) -> Option<c_int> {
        let mask = !(page_size - 1);
        let relro = self.phdrs.iter().filter(|p| p.p_type == PT_GNU_RELRO);
        if relro
            .filter_map(|p| self.span(p))
            .any(|(s, e)| s & mask <= page && page < e & mask)
        {
            return Some(libc::PROT_READ);
        }
        let f = self.segment(slot, SLOT_SIZE)?.p_flags;
        let bit = |flag: u32, prot: c_int| if f & flag != 0 { prot } else { 0 };
        let rw = bit(libc::PF_R, libc::PROT_READ) | bit(libc::PF_W, libc::PROT_WRITE);
        Some(rw | bit(libc::PF_X, libc::PROT_EXEC))
    }
}

type Visitor<'f> = &'f mut dyn FnMut(&Image<'_>) -> bool;

/// Calls `f` for each loaded object (under glibc's loader lock) until it returns true.
fn for_each_image(mut f: Visitor<'_>) {
    unsafe extern "C" fn trampoline(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> c_int {
        // SAFETY: `data` is the `&mut Visitor` passed by `for_each_image`, alive and
        // exclusively borrowed for the whole `dl_iterate_phdr` call.
        let f = unsafe { &mut *data.cast::<Visitor<'_>>() };
        // SAFETY: dl_iterate_phdr passes a valid info struct for the callback's duration.
        let Some(info) = (unsafe { info.as_ref() }) else {
            return 0;
        };
        let name = match info.dlpi_name.is_null() {
            true => <&CStr>::default(),
            // SAFETY: a non-null dlpi_name is the loader's NUL-terminated l_name.
            false => unsafe { CStr::from_ptr(info.dlpi_name) },
        };
        let phdrs = match info.dlpi_phdr.is_null() {
            true => &[][..],
            // SAFETY: dlpi_phdr points at dlpi_phnum program headers that stay mapped
            // while the loader lock is held.
            false => unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) },
        };
        let base = usize::try_from(info.dlpi_addr).unwrap_or(0);
        c_int::from(f(&Image { base, name, phdrs }))
    }
    // SAFETY: the trampoline matches the callback ABI, and `data` points to `f`, which
    // outlives the call. The callback cannot unwind: nothing in it panics.
    unsafe { libc::dl_iterate_phdr(Some(trampoline), (&mut f as *mut Visitor<'_>).cast()) };
}

/// The absolute `[start, end)` of the loaded object at `base`, if one is loaded there.
pub fn object_extent(base: usize) -> Option<(usize, usize)> {
    let mut out = None;
    for_each_image(&mut |img| {
        if img.base == base {
            out = Some(img.extent());
        }
        out.is_some()
    });
    out
}

/// All currently loaded objects that have a dynamic section, in the loader's order
/// (main program first). The vDSO is left out: it has no GOT.
pub fn loaded_objects() -> Vec<LoadedObject> {
    let mut out = Vec::new();
    for_each_image(&mut |img| {
        if let (false, Some((dynamic, _))) = (img.is_vdso(), img.dynamic()) {
            let (base, name, dynamic) = (img.base, img.name.to_owned(), dynamic as *const u8);
            out.push(LoadedObject { base, name, dynamic });
        }
        false
    });
    out
}

/// In one object, sets every `JUMP_SLOT`/`GLOB_DAT` GOT slot to `addr` when the slot's
/// (undefined) symbol name maps to `Some(addr)` under `replacement`. RELRO pages are made
/// writable for the write and then restored. Returns how many slots changed. Slots that
/// already hold `addr` are not counted, so patching twice is harmless and the second call
/// returns 0. The vDSO gives `Ok(0)`.
///
/// # Safety
/// Each address that `replacement` returns must be a function that can stand in for the
/// named symbol (same ABI and contract): the object will jump there. `replacement` runs
/// under glibc's loader lock and must not call into the dynamic loader.
pub unsafe fn patch_object(
    obj: &LoadedObject,
    replacement: &dyn Fn(&CStr) -> Option<usize>,
) -> Result<usize, GotError> {
    // SAFETY: the caller's promise, for every slot `replacement` names.
    unsafe { patch_object_with(obj, &|name, _current, _span| replacement(name)) }
}

/// A replacement that also sees a slot's current value and its object's `[start, end)`.
pub type SlotReplacement<'a> = dyn Fn(&CStr, usize, (usize, usize)) -> Option<usize> + 'a;

/// [`patch_object`], where `replacement` also sees the slot's current value (and the object's
/// own `[start, end)`): it may leave a slot alone by what it holds now.
///
/// # Safety
/// As [`patch_object`].
pub unsafe fn patch_object_with(obj: &LoadedObject, replacement: &SlotReplacement<'_>) -> Result<usize, GotError> {
    if SLOT_TYPES.is_empty() {
        return Err(GotError::Unsupported("architecture"));
    }
    let mut result = Err(GotError::NotLoaded);
    for_each_image(&mut |img| {
        if img.base != obj.base || img.dynamic().map(|d| d.0) != Some(obj.dynamic as usize) {
            return false;
        }
        result = match img.is_vdso() {
            true => Ok(0),
            false => patch_image(img, replacement),
        };
        true
    });
    result
}

fn patch_image(img: &Image<'_>, rep: &SlotReplacement<'_>) -> Result<usize, GotError> {
    let mut writes: Vec<(usize, usize)> = Vec::new();
    let span = img.extent();
    visit_slots(img, &mut |slot, name, _| {
        // SAFETY: visit_slots only reports aligned slots inside a mapped segment, kept
        // mapped by the loader lock. AtomicUsize has the layout of usize.
        let current = unsafe { &*(slot as *const AtomicUsize) }.load(Ordering::Relaxed);
        if let Some(addr) = rep(name, current, span).filter(|&a| a != current) {
            writes.push((slot, addr));
        }
    })?;
    if writes.is_empty() {
        return Ok(0);
    }
    writes.sort_unstable();
    writes.dedup_by_key(|w| w.0);
    write_slots(img, &writes)
}

/// Reads a `T` from an address that the caller has bounds-checked.
///
/// # Safety
/// `[addr, addr + size_of::<T>())` must be mapped and readable; T must be plain data.
unsafe fn read<T: Copy>(addr: usize) -> T {
    // SAFETY: guaranteed by the caller; read_unaligned tolerates any alignment.
    unsafe { std::ptr::read_unaligned(addr as *const T) }
}

/// Calls `f(slot_address, symbol_name, relocation_type)` for every GOT slot that
/// refers to a symbol undefined in `img`.
fn visit_slots(img: &Image<'_>, f: &mut dyn FnMut(usize, &CStr, u32)) -> Result<(), GotError> {
    let bad = GotError::BadDynamic;
    let (dynamic, size) = img.dynamic().ok_or(bad("no PT_DYNAMIC"))?;
    img.segment(dynamic, size).ok_or(bad("PT_DYNAMIC outside PT_LOAD"))?;
    let mut tags = [None::<u64>; 24];
    for entry in (dynamic..dynamic.saturating_add(size)).step_by(16).take(size / 16) {
        // SAFETY: the entry lies inside PT_DYNAMIC, checked above to be in a mapped segment.
        let [tag, val] = unsafe { read::<[u64; 2]>(entry) };
        if tag == 0 {
            break; // DT_NULL
        }
        if let Some(t) = usize::try_from(tag).ok().and_then(|t| tags.get_mut(t)) {
            *t = Some(val);
        }
    }
    let tag = |t: usize| tags.get(t).copied().flatten();
    let is_not = |t: usize, want: usize| tag(t).is_some_and(|v| v != want as u64);
    if is_not(DT_PLTREL, DT_RELA) || is_not(DT_RELAENT, RELA_SIZE) || is_not(DT_SYMENT, SYM_SIZE) {
        return Err(GotError::Unsupported("not ELF64 RELA"));
    }
    let tables = [(DT_RELA, DT_RELASZ), (DT_JMPREL, DT_PLTRELSZ)];
    let tables = tables.map(|(t, sz)| tag(t).zip(tag(sz).and_then(|s| usize::try_from(s).ok())));
    if tables.iter().all(Option::is_none) {
        return Ok(());
    }
    let strsz = tag(DT_STRSZ)
        .and_then(|s| usize::try_from(s).ok())
        .ok_or(bad("DT_STRSZ"))?;
    let strtab = img.ptr(tag(DT_STRTAB), strsz, "DT_STRTAB")?;
    // SAFETY: [strtab, strtab + strsz) was checked to lie in a mapped, readable segment,
    // which the loader lock keeps mapped while this slice lives.
    let strtab = unsafe { std::slice::from_raw_parts(strtab as *const u8, strsz) };
    let symtab = img.ptr(tag(DT_SYMTAB), SYM_SIZE, "DT_SYMTAB")?;
    for (addr, size) in tables.into_iter().flatten() {
        let table = img.ptr(Some(addr), size, "relocation table")?;
        for rela in (table..table.saturating_add(size))
            .step_by(RELA_SIZE)
            .take(size / RELA_SIZE)
        {
            // SAFETY: the entry lies inside the table, checked to be in a mapped segment.
            let [offset, info, _addend] = unsafe { read::<[u64; 3]>(rela) };
            let (kind, sym) = ((info & 0xffff_ffff) as u32, (info >> 32) as usize);
            if sym == 0 || !SLOT_TYPES.contains(&kind) {
                continue;
            }
            let sym = sym.checked_mul(SYM_SIZE).and_then(|o| symtab.checked_add(o));
            let sym = sym.filter(|&a| img.segment(a, SYM_SIZE).is_some());
            // SAFETY: the whole Elf64_Sym at `sym` was checked to be in a mapped segment.
            let sym = unsafe { read::<[u8; SYM_SIZE]>(sym.ok_or(bad("bad symbol index"))?) };
            let [n0, n1, n2, n3, _info, _other, s0, s1, ..] = sym;
            if u16::from_ne_bytes([s0, s1]) != 0 {
                continue; // st_shndx != SHN_UNDEF: defined by the object itself
            }
            let name = strtab.get(u32::from_ne_bytes([n0, n1, n2, n3]) as usize..);
            let name = name.and_then(|b| CStr::from_bytes_until_nul(b).ok());
            let slot = usize::try_from(offset).ok().and_then(|o| img.base.checked_add(o));
            let slot = slot.filter(|&s| s % SLOT_SIZE == 0 && img.segment(s, SLOT_SIZE).is_some());
            f(slot.ok_or(bad("bad GOT slot"))?, name.ok_or(bad("bad name"))?, kind);
        }
    }
    Ok(())
}

/// `DT_GNU_HASH`: the GNU hash table of the dynamic symbols.
const DT_GNU_HASH: u64 = 0x6fff_fef5;
/// `DT_HASH`: the System V hash table (older objects).
const DT_HASH: u64 = 4;
/// `DT_VERSYM`: each dynamic symbol's version index (bit 15: hidden, not the default version).
const DT_VERSYM: u64 = 0x6fff_fff0;

/// The address of a function `name` defined (exported) by a loaded object after the one at
/// `after_base` in load order (the objects `dlsym(RTLD_NEXT)` would search from there, and
/// those loaded with `RTLD_LOCAL`, which it cannot see), found through the objects' own hash
/// tables without calling `dlsym` (whose failed look-ups leave an error in `dlerror()`). The
/// first in load order wins.
#[cfg(test)]
pub fn find_function_after(name: &CStr, after_base: usize) -> Option<usize> {
    find_function_after_skipping(name, after_base, usize::MAX)
}

/// [`find_function_after`], leaving out the object at `skip_base` (the shim, when the preload
/// stage loaded it after the objects it must find). `after_base` 0: from the first object.
pub fn find_function_after_skipping(name: &CStr, after_base: usize, skip_base: usize) -> Option<usize> {
    let mut found = None;
    let mut past = after_base == 0;
    for_each_image(&mut |img| {
        if !past {
            past = img.base == after_base;
            return false;
        }
        if img.is_vdso() || img.base == skip_base {
            return false;
        }
        found = lookup(img, name.to_bytes()).ok().flatten();
        found.is_some()
    });
    found
}

fn gnu_hash(name: &[u8]) -> u32 {
    name.iter()
        .fold(5381u32, |h, &b| h.wrapping_mul(33).wrapping_add(u32::from(b)))
}

fn sysv_hash(name: &[u8]) -> u32 {
    let mut h = 0u32;
    for &b in name {
        h = (h << 4).wrapping_add(u32::from(b));
        let g = h & 0xf000_0000;
        if g != 0 {
            h ^= g >> 24;
        }
        h &= !g;
    }
    h
}

/// `name`'s definition in `img` (a function or an indirect one's resolver is not returned:
/// only `STT_FUNC`; of a versioned symbol, the default version, as `dlsym` would), by its hash
/// table.
fn lookup(img: &Image<'_>, name: &[u8]) -> Result<Option<usize>, GotError> {
    let bad = GotError::BadDynamic;
    let (dynamic, size) = img.dynamic().ok_or(bad("no PT_DYNAMIC"))?;
    img.segment(dynamic, size).ok_or(bad("PT_DYNAMIC outside PT_LOAD"))?;
    let (mut strtab, mut strsz, mut symtab, mut gnu, mut sysv, mut versym) = (None, None, None, None, None, None);
    for entry in (dynamic..dynamic.saturating_add(size)).step_by(16).take(size / 16) {
        // SAFETY: the entry lies inside PT_DYNAMIC, checked above to be in a mapped segment.
        let [tag, val] = unsafe { read::<[u64; 2]>(entry) };
        match tag {
            0 => break,
            t if t == DT_STRTAB as u64 => strtab = Some(val),
            t if t == DT_STRSZ as u64 => strsz = usize::try_from(val).ok(),
            t if t == DT_SYMTAB as u64 => symtab = Some(val),
            DT_GNU_HASH => gnu = Some(val),
            DT_HASH => sysv = Some(val),
            DT_VERSYM => versym = Some(val),
            _ => {}
        }
    }
    let strsz = strsz.ok_or(bad("DT_STRSZ"))?;
    let strtab = img.ptr(strtab, strsz, "DT_STRTAB")?;
    // SAFETY: checked to lie in a mapped, readable segment, kept mapped by the loader lock.
    let strtab = unsafe { std::slice::from_raw_parts(strtab as *const u8, strsz) };
    let symtab = img.ptr(symtab, SYM_SIZE, "DT_SYMTAB")?;
    let u32_at = |a: usize| -> Result<u32, GotError> {
        img.segment(a, 4).ok_or(bad("hash table"))?;
        // SAFETY: checked to be in a mapped segment.
        Ok(unsafe { read::<u32>(a) })
    };
    // Whether symbol `i` is `name`, defined here as a function: its address if so.
    let matches = |i: usize| -> Result<Option<usize>, GotError> {
        let at = i.checked_mul(SYM_SIZE).and_then(|o| symtab.checked_add(o));
        let at = at
            .filter(|&a| img.segment(a, SYM_SIZE).is_some())
            .ok_or(bad("symbol"))?;
        // SAFETY: the whole Elf64_Sym at `at` was checked to be in a mapped segment.
        let sym = unsafe { read::<[u8; SYM_SIZE]>(at) };
        let [n0, n1, n2, n3, info, _other, s0, s1, v0, v1, v2, v3, v4, v5, v6, v7, ..] = sym;
        let defined = u16::from_ne_bytes([s0, s1]) != 0;
        let (kind, bind) = (info & 0xf, info >> 4);
        if !defined || kind != 2 || !(bind == 1 || bind == 2) {
            return Ok(None); // not a defined STT_FUNC with STB_GLOBAL/STB_WEAK
        }
        let n = strtab.get(u32::from_ne_bytes([n0, n1, n2, n3]) as usize..);
        if n.and_then(|b| CStr::from_bytes_until_nul(b).ok()).map(CStr::to_bytes) != Some(name) {
            return Ok(None);
        }
        if let Some(vs) = versym {
            let at = img.ptr(Some(vs), 2, "DT_VERSYM")?.checked_add(2 * i);
            let at = at.filter(|&a| img.segment(a, 2).is_some()).ok_or(bad("DT_VERSYM"))?;
            // SAFETY: checked to be in a mapped segment.
            if unsafe { read::<u16>(at) } & 0x8000 != 0 {
                return Ok(None); // a hidden (older) version of the symbol
            }
        }
        let value = u64::from_ne_bytes([v0, v1, v2, v3, v4, v5, v6, v7]);
        Ok(usize::try_from(value).ok().and_then(|v| img.base.checked_add(v)))
    };
    if let Some(gnu) = gnu {
        let table = img.ptr(Some(gnu), 16, "DT_GNU_HASH")?;
        let (nbuckets, symoffset, bloom_size) = (u32_at(table)?, u32_at(table + 4)?, u32_at(table + 8)?);
        if nbuckets == 0 {
            return Ok(None);
        }
        let buckets = table + 16 + 8 * bloom_size as usize;
        let chains = buckets + 4 * nbuckets as usize;
        let h = gnu_hash(name);
        let first = u32_at(buckets + 4 * (h % nbuckets) as usize)? as usize;
        if first == 0 || first < symoffset as usize {
            return Ok(None);
        }
        // A chain ends with a hash whose low bit is set (bounded in case the table is corrupt).
        for i in first..first + (1 << 20) {
            let h2 = u32_at(chains + 4 * (i - symoffset as usize))?;
            if h | 1 == h2 | 1 {
                if let Some(a) = matches(i)? {
                    return Ok(Some(a));
                }
            }
            if h2 & 1 != 0 {
                break;
            }
        }
        return Ok(None);
    }
    if let Some(sysv) = sysv {
        let table = img.ptr(Some(sysv), 8, "DT_HASH")?;
        let (nbucket, nchain) = (u32_at(table)?, u32_at(table + 4)?);
        if nbucket == 0 {
            return Ok(None);
        }
        let chain = table + 8 + 4 * nbucket as usize;
        let mut i = u32_at(table + 8 + 4 * (sysv_hash(name) % nbucket) as usize)? as usize;
        for _ in 0..nchain {
            if i == 0 {
                break;
            }
            if let Some(a) = matches(i)? {
                return Ok(Some(a));
            }
            i = u32_at(chain + 4 * i)? as usize;
        }
    }
    Ok(None)
}

/// Performs `writes` (sorted by slot, deduplicated), one page at a time.
fn write_slots(img: &Image<'_>, writes: &[(usize, usize)]) -> Result<usize, GotError> {
    // SAFETY: sysconf has no preconditions.
    let page_size = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) });
    let page_size = page_size.ok().filter(|p| p.is_power_of_two()).unwrap_or(4096);
    let page_of = |w: &(usize, usize)| w.0 & !(page_size - 1);
    let mut pages: Vec<usize> = writes.iter().map(page_of).collect();
    pages.dedup();
    let mut done = 0;
    for (&page, prot) in pages.iter().zip(maps_prots(&pages)) {
        let mut group = writes.iter().filter(|w| page_of(w) == page).peekable();
        let slot = group.peek().map_or(page, |w| w.0);
        let prot = prot.or_else(|| img.expected_prot(page, slot, page_size));
        let prot = prot.ok_or(GotError::BadDynamic("GOT page not mapped"))?;
        let (unprotect, rw) = (prot & libc::PROT_WRITE == 0, prot | libc::PROT_READ | libc::PROT_WRITE);
        // SAFETY: `page` is the aligned page of a slot in a segment that the loader lock
        // keeps mapped; adding write access takes no access away from other threads.
        if unprotect && unsafe { libc::mprotect(page as *mut c_void, page_size, rw) } != 0 {
            return Err(GotError::Protect {
                addr: page,
                errno: super::errno(),
            });
        }
        for &(slot, value) in group {
            // SAFETY: the slot is aligned, mapped and now writable. The atomic store keeps
            // threads calling through this slot from seeing a torn value.
            let old = unsafe { &*(slot as *const AtomicUsize) }.swap(value, Ordering::AcqRel);
            done += usize::from(old != value);
        }
        // SAFETY: puts back this page's previous protection, on the same range.
        if unprotect && unsafe { libc::mprotect(page as *mut c_void, page_size, prot) } != 0 {
            return Err(GotError::Restore {
                addr: page,
                errno: super::errno(),
            });
        }
    }
    Ok(done)
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
mod tests;
