//! macOS's naked function: the `dlopen` hook, which must not be a Rust frame of its own
//! because dyld finds the caller from its return address. Its machine code is written out per
//! architecture, with call-frame information so the unwinder walks through it;
//! `hooks/dlopen.rs` instantiates it.

/// Defines `$name`, the shim's `dlopen` (bound in place of libSystem's by an `__interpose`
/// tuple): a naked function that calls `$note(file, mode)` with the arguments saved and then
/// jumps to the address in `$real` (an `AtomicPtr` static), leaving the caller's return address
/// in place (dyld resolves `@loader_path` and `@rpath` from it); before `$real` is set it jumps
/// to `$slow`. Call-frame information lets the unwinder walk from `$note` to the host.
macro_rules! dlopen_trampoline {
    ($name:ident, note = $note:path, real = $real:path, slow = $slow:path) => {
        /// The replacement of `dlopen` (see `platform::dlopen_trampoline!`).
        ///
        /// # Safety
        /// Called by C code with dlopen's contract.
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        pub unsafe extern "C" fn $name(file: *const libc::c_char, mode: libc::c_int) -> *mut std::ffi::c_void {
            core::arch::naked_asm!(
                ".cfi_startproc",
                "push rdi",
                ".cfi_adjust_cfa_offset 8",
                "push rsi",
                ".cfi_adjust_cfa_offset 8",
                "sub rsp, 8",
                ".cfi_adjust_cfa_offset 8",
                "call {note}",
                "add rsp, 8",
                ".cfi_adjust_cfa_offset -8",
                "pop rsi",
                ".cfi_adjust_cfa_offset -8",
                "pop rdi",
                ".cfi_adjust_cfa_offset -8",
                "mov rax, qword ptr [rip + {real}]",
                "test rax, rax",
                "jz 2f",
                "jmp rax",
                "2:",
                "jmp {slow}",
                ".cfi_endproc",
                note = sym $note,
                real = sym $real,
                slow = sym $slow,
            )
        }

        /// The replacement of `dlopen` on arm64: as on x86_64.
        ///
        /// # Safety
        /// Called by C code with dlopen's contract.
        #[cfg(target_arch = "aarch64")]
        #[unsafe(naked)]
        pub unsafe extern "C" fn $name(file: *const libc::c_char, mode: libc::c_int) -> *mut std::ffi::c_void {
            core::arch::naked_asm!(
                ".cfi_startproc",
                "stp x29, x30, [sp, #-32]!",
                ".cfi_def_cfa_offset 32",
                ".cfi_offset x29, -32",
                ".cfi_offset x30, -24",
                "mov x29, sp",
                "stp x0, x1, [sp, #16]",
                "bl {note}",
                "ldp x0, x1, [sp, #16]",
                "ldp x29, x30, [sp], #32",
                ".cfi_def_cfa_offset 0",
                ".cfi_restore x29",
                ".cfi_restore x30",
                "adrp x16, {real}@PAGE",
                "ldr x16, [x16, {real}@PAGEOFF]",
                "cbz x16, 2f",
                "br x16",
                "2:",
                "b {slow}",
                ".cfi_endproc",
                note = sym $note,
                real = sym $real,
                slow = sym $slow,
            )
        }

        core::arch::global_asm!(
            ".section __DATA,__interpose,regular,no_dead_strip",
            ".p2align 3",
            ".quad {hook}",
            ".quad _dlopen",
            ".text",
            hook = sym $name,
        );
    };
}
pub(crate) use dlopen_trampoline;
