//! Page protections as the kernel has them: what `mprotect` must restore after the GOT
//! rewriting (`elf_got.rs`) made a page writable. Read from `/proc/self/maps` with raw system
//! calls (it runs under the loader's lock, where no hooked libc I/O may run): the
//! `PROCMAP_QUERY` ioctl where the kernel has it, else the text.

use std::ffi::c_int;

/// Protections of `pages` (ascending) per /proc/self/maps, opened with raw syscalls.
pub(super) fn maps_prots(pages: &[usize]) -> Vec<Option<c_int>> {
    let mut prots = vec![None; pages.len()];
    let (path, flags) = (b"/proc/self/maps\0", libc::O_RDONLY | libc::O_CLOEXEC);
    // SAFETY: `path` is NUL-terminated and outlives the call.
    let fd = unsafe { libc::syscall(libc::SYS_openat, libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 {
        return prots;
    }
    if !query_prots(fd, pages, &mut prots) {
        text_prots(fd, pages, &mut prots);
    }
    // SAFETY: `fd` was opened above and is closed exactly once.
    unsafe { libc::syscall(libc::SYS_close, fd) };
    prots
}

/// PROCMAP_QUERY ioctl (Linux 6.11+), ~1 µs a page. False if the kernel lacks it.
fn query_prots(fd: libc::c_long, pages: &[usize], prots: &mut [Option<c_int>]) -> bool {
    const PROCMAP_QUERY: libc::c_ulong = 0xc068_6611; // _IOWR('f', 17, struct procmap_query)
    for (&page, prot) in pages.iter().zip(prots.iter_mut()) {
        // struct procmap_query as 13 u64s: [0] size, [2] query_addr, [5] vma_flags (out).
        // Name and build-id buffer sizes are 0, so the kernel touches nothing but `q`.
        let mut q = [0u64; 13];
        (q[0], q[2]) = (std::mem::size_of_val(&q) as u64, page as u64);
        // SAFETY: `q` is a correctly sized, writable procmap_query for the call.
        let r = unsafe { libc::syscall(libc::SYS_ioctl, fd, PROCMAP_QUERY, q.as_mut_ptr()) };
        match (r, super::errno()) {
            (0, _) => *prot = Some((q[5] & 7) as c_int), // VMA_READABLE.. = PROT_READ..
            (_, libc::ENOENT) => {}
            _ => return false,
        }
    }
    true
}

/// Text fallback. Rendering the whole file costs ~100+ µs, so stop once the
/// address-ordered listing has passed the last page.
pub(super) fn text_prots(fd: libc::c_long, pages: &[usize], prots: &mut [Option<c_int>]) {
    let last = pages.last().copied().unwrap_or(0);
    let (mut buf, mut chunk) = (Vec::with_capacity(8192), [0u8; 4096]);
    loop {
        // SAFETY: the kernel writes at most `chunk.len()` bytes into `chunk`.
        let n = unsafe { libc::syscall(libc::SYS_read, fd, chunk.as_mut_ptr(), chunk.len()) };
        match usize::try_from(n) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(_) if super::errno() == libc::EINTR => continue,
            Err(_) => return,
        }
        let mut used = 0;
        while let Some(nl) = buf.get(used..).and_then(|b| b.iter().position(|&c| c == b'\n')) {
            let line = buf.get(used..used + nl).unwrap_or_default();
            used += nl + 1;
            let Some((start, end, prot)) = parse_maps_line(line) else {
                continue;
            };
            for (page, p) in pages.iter().zip(prots.iter_mut()) {
                if start <= *page && *page < end {
                    *p = Some(prot);
                }
            }
            if end > last {
                return;
            }
        }
        buf.drain(..used);
    }
}

/// `start-end perms ...` -> (start, end, PROT_* bits).
fn parse_maps_line(line: &[u8]) -> Option<(usize, usize, c_int)> {
    let mut fields = line.split(|&b| b == b' ');
    let (start, end) = std::str::from_utf8(fields.next()?).ok()?.split_once('-')?;
    let perms = fields.next()?;
    let bit = |i: usize, c: u8, p: c_int| if perms.get(i) == Some(&c) { p } else { 0 };
    let prot = bit(0, b'r', libc::PROT_READ) | bit(1, b'w', libc::PROT_WRITE);
    let start = usize::from_str_radix(start, 16).ok()?;
    Some((
        start,
        usize::from_str_radix(end, 16).ok()?,
        prot | bit(2, b'x', libc::PROT_EXEC),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn procmap_query_agrees_with_text() {
        let mut pages: Vec<usize> = super::super::elf_got::loaded_objects()
            .iter()
            .map(|o| o.dynamic as usize & !4095)
            .collect();
        pages.sort_unstable();
        let file = std::fs::File::open("/proc/self/maps").expect("maps");
        let (mut text, mut query) = (vec![None; pages.len()], vec![None; pages.len()]);
        text_prots(file.as_raw_fd().into(), &pages, &mut text);
        assert!(text.iter().all(Option::is_some), "{pages:x?} {text:?}");
        if query_prots(file.as_raw_fd().into(), &pages, &mut query) {
            assert_eq!(query, text);
        }
    }
}
