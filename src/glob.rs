//! Shell-style globs for `--attribute` / `SOCKMETER_ATTRIBUTE`: `*` (any run of characters,
//! `/` included), `?` (one character) and `[abc]` / `[a-z]` / `[!a]` classes. A pattern with no
//! `/` is matched against the file name only; one with a `/` against the whole path.

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
    use super::matches;

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
