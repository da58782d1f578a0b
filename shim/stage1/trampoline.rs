//! The machine code of the exports (x86_64): each checks its slot in `SOCKMETER_STAGE2` and
//! jumps to the shim, or goes to [`s1_slow`] with its index in `r11`. `s1_slow` saves the
//! argument registers (and `rax`, which a variadic call uses), asks `s1_route` where to go,
//! and either jumps there with every register and the stack as the host left them (the host's
//! return address stays in place: `dlopen` and the unwinder see the host as the caller), or,
//! for a call that makes an fd, calls it and then `s1_mark`. Call-frame information lets the
//! unwinder walk through `s1_slow`.

/// Defines the export `$sym` (Rust name `$name`) of entry `$idx` (the table's, then the
/// exports outside it), with the fast path `$fast` (`fast_path` in
/// `lib.rs`): while the shim is not loaded, a call whose fd (the first argument) the table
/// says is not a socket jumps to libc from here (resolved already; else `s1_slow` resolves
/// it), `close` forgetting the number first; a call that makes an fd that is never a socket
/// (`open` and its kin) calls libc from here and marks the fd it returns (a negative result
/// is past the table: `cmp eax` is unsigned).
macro_rules! export {
    ($name:ident, $sym:expr, $idx:expr, $fast:expr) => {
        /// An export (see `trampoline.rs`).
        ///
        /// # Safety
        /// Called by C code with the contract of the libc function of this name.
        #[unsafe(naked)]
        #[export_name = $sym]
        pub unsafe extern "C" fn $name() {
            core::arch::naked_asm!(
                ".cfi_startproc",
                "mov r11, qword ptr [rip + {tab} + {off}]",
                "test r11, r11",
                "jz 2f",
                "jmp r11",
                "2:",
                ".if {fast} == 3",
                // A call that makes an fd that is never a socket: libc's, then the mark.
                "mov r11, qword ptr [rip + {real} + {off}]",
                "test r11, r11",
                "jz 3f",
                "sub rsp, 8",
                ".cfi_adjust_cfa_offset 8",
                "call r11",
                "add rsp, 8",
                ".cfi_adjust_cfa_offset -8",
                "cmp eax, {max}",
                "jae 4f",
                // The int result, zero-extended (the upper half of rax is not the callee's to
                // set).
                "mov r10d, eax",
                "lea r11, [rip + {fds}]",
                "mov byte ptr [r11 + r10], 1",
                "4:",
                "ret",
                ".endif",
                ".if {fast} == 1 || {fast} == 2",
                // The fd, zero-extended: a negative one is past the table.
                "mov r10d, edi",
                "cmp r10, {max}",
                "jae 3f",
                "lea r11, [rip + {fds}]",
                "cmp byte ptr [r11 + r10], 1",
                "jne 3f",
                ".if {fast} == 2",
                "mov byte ptr [r11 + r10], 0",
                ".endif",
                "mov r11, qword ptr [rip + {real} + {off}]",
                "test r11, r11",
                "jz 3f",
                "jmp r11",
                ".endif",
                "3:",
                "mov r11d, {idx}",
                "jmp {slow}",
                ".cfi_endproc",
                tab = sym $crate::SOCKMETER_STAGE2,
                real = sym $crate::REAL,
                fds = sym $crate::FDS,
                max = const $crate::MAX_FD,
                off = const ($idx) * 8,
                idx = const $idx,
                fast = const $fast,
                slow = sym $crate::trampoline::s1_slow,
            )
        }
    };
}
pub(crate) use export;

/// The slow path shared by every export (see the module's docs).
///
/// # Safety
/// Only jumped to by an export, with its index in `r11`.
#[unsafe(naked)]
pub unsafe extern "C" fn s1_slow() {
    core::arch::naked_asm!(
        ".cfi_startproc",
        "push rbp",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset rbp, -16",
        "mov rbp, rsp",
        ".cfi_def_cfa_register rbp",
        // Saved, from the stack pointer up: index, rax, r9, r8, rcx, rdx, rsi, rdi. The stack
        // is 16-byte aligned at each call below.
        "push rdi",
        "push rsi",
        "push rdx",
        "push rcx",
        "push r8",
        "push r9",
        "push rax",
        "push r11",
        "mov rdi, r11",
        "mov rsi, rsp",
        "call {route}",
        "test rdx, rdx",
        "jnz 3f",
        "mov r10, rax",
        "pop r11",
        "pop rax",
        "pop r9",
        "pop r8",
        "pop rcx",
        "pop rdx",
        "pop rsi",
        "pop rdi",
        ".cfi_remember_state",
        "pop rbp",
        ".cfi_def_cfa rsp, 8",
        ".cfi_restore rbp",
        "jmp r10",
        "3:",
        ".cfi_restore_state",
        "mov r10, rax",
        "mov rax, qword ptr [rsp + 8]",
        "mov r9, qword ptr [rsp + 16]",
        "mov r8, qword ptr [rsp + 24]",
        "mov rcx, qword ptr [rsp + 32]",
        "mov rdx, qword ptr [rsp + 40]",
        "mov rsi, qword ptr [rsp + 48]",
        "mov rdi, qword ptr [rsp + 56]",
        "call r10",
        "push rax",
        "push rax",
        "mov rdi, qword ptr [rsp + 16]",
        "mov rsi, rax",
        "lea rdx, [rsp + 16]",
        "call {mark}",
        "pop rax",
        "pop rax",
        "leave",
        ".cfi_def_cfa rsp, 8",
        "ret",
        ".cfi_endproc",
        route = sym crate::s1_route,
        mark = sym crate::s1_mark,
    )
}
