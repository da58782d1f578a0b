//! Shell-style globs for `--attribute` / `SOCKMETER_ATTRIBUTE`: `*` (any run of characters,
//! `/` included), `?` (one character) and `[abc]` / `[a-z]` / `[!a]` classes. A pattern with no
//! `/` is matched against the file name only; one with a `/` against the whole path. A leading
//! `!` (in `--attribute`) turns the glob into an exclusion; [`check`] says what is malformed.

/// Checks one `--attribute` glob (a leading `!` allowed): not empty, no `:` (the list separator
/// of `SOCKMETER_ATTRIBUTE`), no NUL byte, every `[` closed by a `]`, no backwards range such as
/// `[z-a]`. The error is one short sentence (without the glob itself, which may be long: the
/// caller shows it as it sees fit).
pub fn check(glob: &str) -> Result<(), String> {
    let body = glob.strip_prefix('!').unwrap_or(glob);
    if body.is_empty() {
        return Err("the glob is empty".into());
    }
    if glob.contains(':') {
        return Err(
            "it contains `:`, which separates globs in SOCKMETER_ATTRIBUTE; give each glob its own --attribute".into(),
        );
    }
    if glob.contains('\0') {
        return Err("the glob contains a NUL byte".into());
    }
    let p = body.as_bytes();
    let mut i = 0;
    while i < p.len() {
        if p[i] != b'[' {
            i += 1;
            continue;
        }
        let Some((_, len)) = class(&p[i..], 0) else {
            return Err(format!(
                "the `[` at byte {} opens a class that no `]` closes (`[[]` matches a `[` itself)",
                glob.len() - body.len() + i + 1
            ));
        };
        let mut j = i + 1;
        if matches!(p.get(j), Some(b'!') | Some(b'^')) {
            j += 1;
        }
        let mut first = true;
        while j < i + len - 1 {
            if p[j] == b']' && !first {
                break;
            }
            first = false;
            if p.get(j + 1) == Some(&b'-') && j + 2 < i + len - 1 {
                if p[j] > p[j + 2] {
                    return Err(format!(
                        "the range `{}-{}` is backwards (it matches nothing)",
                        p[j] as char,
                        p[j + 2] as char
                    ));
                }
                j += 3;
            } else {
                j += 1;
            }
        }
        i += len;
    }
    Ok(())
}

/// Whether `path` matches `pattern` (see the module docs).
pub fn matches(pattern: &str, path: &str) -> bool {
    let subject = if pattern.contains('/') {
        path
    } else {
        path.rsplit('/').next().unwrap_or(path)
    };
    match_bytes(pattern.as_bytes(), subject.as_bytes())
}

fn match_bytes(p: &[u8], s: &[u8]) -> bool {
    // Iterative matcher with single-star backtracking: linear in practice, no recursion.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                b'[' => {
                    if let Some((ok, next)) = class(&p[pi..], s[si]) {
                        if ok {
                            pi += next;
                            si += 1;
                            continue;
                        }
                    } else if s[si] == b'[' {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                }
                c if c == s[si] => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class at the start of `p`; returns (matched, class length), or
/// `None` when the `[` does not open a well-formed class.
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    while let Some(&b) = p.get(i) {
        if b == b']' && !first {
            return Some((found != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&e| e != b']') {
            let e = p[i + 2];
            found |= b <= c && c <= e;
            i += 3;
        } else {
            found |= b == c;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{check, matches};

    #[test]
    fn malformed_globs_are_named() {
        for ok in [
            "libcurl*",
            "!*/gstreamer-1.0/*",
            "lib[a-c]x",
            "[]]",
            "[!a]b",
            "a-b",
            "[[]x",
            "*.so.[0-9]",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        let err = |g: &str| check(g).unwrap_err();
        assert_eq!(err(""), "the glob is empty");
        assert_eq!(err("!"), "the glob is empty");
        assert!(err("a:b").contains("contains `:`"));
        assert_eq!(
            err("lib[abc"),
            "the `[` at byte 4 opens a class that no `]` closes (`[[]` matches a `[` itself)"
        );
        assert!(err("!x[").contains("at byte 3"), "{}", err("!x["));
        assert_eq!(err("lib[z-a]"), "the range `z-a` is backwards (it matches nothing)");
    }

    #[test]
    fn globs() {
        assert!(matches("*.so", "/opt/app/plugins/weather.so"));
        assert!(matches("libweather*", "/opt/libweather.so.1"));
        assert!(matches("/opt/app/plugins/*", "/opt/app/plugins/a/b.so"));
        assert!(!matches("/opt/app/plugins/*", "/usr/lib/libcurl.so.4"));
        assert!(matches("lib?url.so.[0-9]", "/usr/lib/libcurl.so.4"));
        assert!(!matches("lib[!c]url*", "/usr/lib/libcurl.so.4"));
        assert!(matches("*", "/x"));
        assert!(!matches("", "/x"));
        assert!(matches("a[", "/a["));
    }
}
