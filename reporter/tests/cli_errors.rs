//! Integration tests of the `sockmeter` command's errors and preflight, with a STAND-IN FOR
//! THE SHIM (see `common/mod.rs`): usage errors, unstartable commands, an unwritable
//! `--json`, `shim-path`, and a statically linked program.

mod common;

use std::ffi::OsStr;
use std::process::Command;

use common::*;

#[test]
fn an_unwritable_json_path_fails_before_running() {
    let s = Scratch::new();
    let marker = s.path().join("ran");
    let script = format!("touch '{}'", marker.display());
    for bad in [s.path().join("missing/r.json"), s.path().to_path_buf()] {
        let o = sockmeter(s.path())
            .arg("run")
            .arg("--json")
            .arg(&bad)
            .args(["--", "sh", "-c", &script])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("cannot write the JSON report to"), "{}", stderr(&o));
        assert!(!marker.exists(), "the command must not have run");
    }
}

#[test]
fn usage_errors_and_unstartable_commands() {
    let s = Scratch::new();
    let run = |args: &[&str]| sockmeter(s.path()).args(args).output().unwrap();
    for bad in [
        &["run", "--bogus", "--", "true"][..],
        &["run", "--interval", "soon", "--", "true"],
        &["run"],
        &["run", "--attribute", "a:b", "--", "true"],
    ] {
        let o = run(bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("error:"), "{}", stderr(&o));
    }
    let o = run(&["run", "--", "no-such-command-sockmeter-test"]);
    assert_eq!(o.status.code(), Some(127));
    assert!(
        stderr(&o).contains("no-such-command-sockmeter-test: command not found"),
        "{}",
        stderr(&o)
    );
    let not_exec = s.path().join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\nexit 0\n").unwrap();
    let o = run(&["run", "--", not_exec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    let o = sockmeter(s.path())
        .env("SOCKMETER_INTERVAL", "x")
        .env("SOCKMETER_UNIX", "perhaps")
        .args(["run", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "a malformed variable is an error: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("SOCKMETER_UNIX=\"perhaps\""), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("SOCKMETER_INTERVAL=\"x\": expected milliseconds from 10 to 3600000"),
        "a variable `run` sets for the command is checked too, with the same rule: {}",
        stderr(&o)
    );
    // The same rule whatever the subcommand.
    let o = sockmeter(s.path())
        .env("SOCKMETER_INTERVAL", "abc")
        .arg("shim-path")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "sockmeter: error: malformed environment: SOCKMETER_INTERVAL=\"abc\": expected milliseconds from 10 to 3600000\n"
    );
    // CLI consistency: a plain range error for a negative interval, and what a shell says
    // for a directory.
    let o = run(&["run", "--interval", "-5", "--", "true"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o)
            .starts_with("error: invalid value '-5' for '--interval <MS>': expected milliseconds from 10 to 3600000"),
        "{}",
        stderr(&o)
    );
    let o = run(&["run", "--", "/tmp"]);
    assert_eq!(o.status.code(), Some(126));
    assert_eq!(stderr(&o), "sockmeter: /tmp: is a directory\n");
    let o = run(&["run", "--attribute", "lib[curl", "--", "true"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("opens a class that no `]` closes"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn shim_path_prints_the_shim_or_says_why_not() {
    let s = Scratch::new();
    let o = sockmeter(s.path()).arg("shim-path").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let shim = s.path().join("standin_shim.so").canonicalize().unwrap();
    assert_eq!(o.stdout, format!("{}\n", shim.display()).into_bytes());
    let o = Command::new(BIN)
        .env("SOCKMETER_SHIM", "/nonexistent/libsockmeter_shim.so")
        .arg("shim-path")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "sockmeter: error: malformed environment: SOCKMETER_SHIM=\"/nonexistent/libsockmeter_shim.so\": does not name a file (it should be the path of libsockmeter_shim.so)\n"
    );
    let o = Command::new(BIN)
        .env("SOCKMETER_SHIM", "/nonexistent/x.so")
        .args(["run", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "no shim, nothing runs");
}

#[test]
fn a_static_program_is_named_before_it_runs() {
    let s = Scratch::new();
    let src = s.path().join("st.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\nint main(void) { puts(\"static ran\"); return 5; }\n",
    )
    .unwrap();
    let prog = s.path().join("static-prog");
    // `cc -static` needs libc6-dev's libc.a, which .ci/run installs: a failure is a failure.
    let built = Command::new("cc")
        .arg("-static")
        .arg("-o")
        .arg(&prog)
        .arg(&src)
        .output();
    assert!(
        built.as_ref().is_ok_and(|o| o.status.success()),
        "`cc -static` failed ({built:?}): install gcc and libc6-dev"
    );
    let o = sockmeter(s.path())
        .args([OsStr::new("run"), OsStr::new("--"), prog.as_os_str()])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(5), "it still runs: {err}");
    assert_eq!(o.stdout, b"static ran\n");
    let first = err.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "sockmeter: {} is statically linked: the shim cannot be preloaded, its traffic will not be counted",
            prog.display()
        )
    );
}
