//! Linux's naked functions: the hooks that must not be a Rust frame of their own, because the
//! callee reads the caller's frame (`dlopen` finds the caller from its return address) or the
//! arguments have no fixed length (the `execl` family). Their machine code is written out per
//! architecture (x86_64, aarch64), with call-frame information so the unwinder walks through
//! them; `hooks/dlopen.rs` and `hooks/execlist.rs` instantiate them.

/// Defines `$name`, the shim's `dlopen` (exported as `dlopen`): a naked function that, unless
/// the mode has [`DLOPEN_ISOLATED`], calls `$note(file, mode)` with the arguments saved and
/// then jumps to the address in `$real` (an `AtomicPtr` static), leaving the caller's return
/// address in place; an isolated open, or one before `$real` is set, jumps to `$slow`
/// instead. Call-frame information lets the unwinder walk from `$note` to the host.
macro_rules! dlopen_trampoline {
    ($name:ident, note = $note:path, real = $real:path, slow = $slow:path) => {
        /// The exported `dlopen` (see `platform::dlopen_trampoline!`).
        ///
        /// # Safety
        /// Called by C code with dlopen's contract.
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[export_name = "dlopen"]
        pub unsafe extern "C" fn $name(file: *const libc::c_char, mode: libc::c_int) -> *mut std::ffi::c_void {
            core::arch::naked_asm!(
                ".cfi_startproc",
                "test esi, {deep}",
                "jnz 2f",
                // note(file, mode), keeping the arguments (and a 16-byte aligned stack at the call).
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
                deep = const $crate::platform::DLOPEN_ISOLATED,
                note = sym $note,
                real = sym $real,
                slow = sym $slow,
            )
        }

        /// The exported `dlopen` on aarch64: as on x86_64.
        ///
        /// # Safety
        /// Called by C code with dlopen's contract.
        #[cfg(target_arch = "aarch64")]
        #[unsafe(naked)]
        #[export_name = "dlopen"]
        pub unsafe extern "C" fn $name(file: *const libc::c_char, mode: libc::c_int) -> *mut std::ffi::c_void {
            core::arch::naked_asm!(
                ".cfi_startproc",
                "tst w1, #{deep}",
                "b.ne 2f",
                // note(file, mode), keeping the arguments and the link register.
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
                "adrp x16, {real}",
                "ldr x16, [x16, :lo12:{real}]",
                "cbz x16, 2f",
                "br x16",
                "2:",
                "b {slow}",
                ".cfi_endproc",
                deep = const $crate::platform::DLOPEN_ISOLATED,
                note = sym $note,
                real = sym $real,
                slow = sym $slow,
            )
        }
    };
}
pub(crate) use dlopen_trampoline;

/// Defines `$name`, exported as `$symbol`: a naked function for a member of the `execl`
/// family (`execl(path, arg0, ..., NULL)` and kin), whose argument list has no fixed length.
/// It stores the argument registers after the first in its frame and calls
/// `$collect(kind, first, regs, nregs, stack)`: `regs` points at the `nregs` stored register
/// words, `stack` at the caller's stack arguments that follow them (the C calling convention
/// of Linux on x86_64 and aarch64 passes a variadic pointer argument as it would a fixed one);
/// it returns what `$collect` returns. Call-frame information lets the unwinder walk through.
macro_rules! exec_list_trampoline {
    ($name:ident, $symbol:literal, kind = $kind:expr, collect = $collect:path) => {
        /// An exported member of the `execl` family (see `platform::exec_list_trampoline!`).
        ///
        /// # Safety
        /// Called by C code with the contract of the function it is exported as.
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[export_name = $symbol]
        pub unsafe extern "C" fn $name(path: *const libc::c_char) -> libc::c_int {
            core::arch::naked_asm!(
                ".cfi_startproc",
                "push rbp",
                ".cfi_adjust_cfa_offset 8",
                ".cfi_offset rbp, -16",
                "mov rbp, rsp",
                ".cfi_def_cfa_register rbp",
                // The five argument registers after `path` (16-byte aligned stack at the call).
                "sub rsp, 48",
                "mov qword ptr [rsp], rsi",
                "mov qword ptr [rsp + 8], rdx",
                "mov qword ptr [rsp + 16], rcx",
                "mov qword ptr [rsp + 24], r8",
                "mov qword ptr [rsp + 32], r9",
                "mov rsi, rdi",
                "mov edi, {kind}",
                "mov rdx, rsp",
                "mov ecx, 5",
                // The caller's stack arguments: above our saved rbp and the return address.
                "lea r8, [rbp + 16]",
                "call {collect}",
                "leave",
                ".cfi_def_cfa rsp, 8",
                "ret",
                ".cfi_endproc",
                kind = const $kind,
                collect = sym $collect,
            )
        }

        /// As on x86_64: the seven argument registers after `path`, then the stack.
        ///
        /// # Safety
        /// Called by C code with the contract of the function it is exported as.
        #[cfg(target_arch = "aarch64")]
        #[unsafe(naked)]
        #[export_name = $symbol]
        pub unsafe extern "C" fn $name(path: *const libc::c_char) -> libc::c_int {
            core::arch::naked_asm!(
                ".cfi_startproc",
                "stp x29, x30, [sp, #-80]!",
                ".cfi_def_cfa_offset 80",
                ".cfi_offset x29, -80",
                ".cfi_offset x30, -72",
                "mov x29, sp",
                "stp x1, x2, [sp, #16]",
                "stp x3, x4, [sp, #32]",
                "stp x5, x6, [sp, #48]",
                "str x7, [sp, #64]",
                "mov x1, x0",
                "mov w0, #{kind}",
                "add x2, sp, #16",
                "mov x3, #7",
                "add x4, sp, #80",
                "bl {collect}",
                "ldp x29, x30, [sp], #80",
                ".cfi_def_cfa_offset 0",
                ".cfi_restore x29",
                ".cfi_restore x30",
                "ret",
                ".cfi_endproc",
                kind = const $kind,
                collect = sym $collect,
            )
        }
    };
}
pub(crate) use exec_list_trampoline;
