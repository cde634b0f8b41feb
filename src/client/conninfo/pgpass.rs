//! The password file (`~/.pgpass`), read as libpq's `passwordFromFile` reads it.
//!
//! Each line is `hostname:port:database:username:password`; `*` alone matches anything,
//! `\` escapes the next character (`\:` and `\\`), lines starting with `#` are comments. The
//! first matching line wins. The file is ignored, with a warning, unless it is a plain file
//! that neither group nor others can access.

use std::path::Path;

/// libpq's `pwdfMatchesString`: whether the next `:`-terminated field of `line` (from `at`)
/// matches `token`; the offset just past its `:` when it does.
fn match_field(line: &[u8], at: usize, token: &[u8]) -> Option<usize> {
    let mut i = at;
    if line.get(i) == Some(&b'*') && line.get(i + 1) == Some(&b':') {
        return Some(i + 2);
    }
    let mut t = 0;
    while i < line.len() {
        let mut escaped = false;
        if line[i] == b'\\' {
            i += 1;
            escaped = true;
        }
        let c = line.get(i).copied();
        if c == Some(b':') && t == token.len() && !escaped {
            return Some(i + 1);
        }
        if t == token.len() || c != Some(token[t]) {
            return None;
        }
        i += 1;
        t += 1;
    }
    None
}

/// The password field: up to the first unescaped `:`, escapes removed.
fn password_field(rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < rest.len() && rest[i] != b':' {
        if rest[i] == b'\\' && i + 1 < rest.len() {
            i += 1;
        }
        out.push(rest[i]);
        i += 1;
    }
    out
}

/// The password of the first line of `contents` matching all four fields.
pub(super) fn find(
    contents: &[u8],
    host: &str,
    port: &str,
    dbname: &str,
    user: &str,
) -> Option<String> {
    for line in contents.split(|b| *b == b'\n') {
        if line.first() == Some(&b'#') {
            continue;
        }
        let mut end = line.len();
        while end > 0 && matches!(line[end - 1], b'\r' | b'\n') {
            end -= 1;
        }
        let line = &line[..end];
        if line.is_empty() {
            continue;
        }
        let matched = [host, port, dbname, user]
            .iter()
            .try_fold(0, |at, token| match_field(line, at, token.as_bytes()));
        if let Some(at) = matched {
            // A password that is not UTF-8 cannot be sent as one: treat the line as unusable.
            return String::from_utf8(password_field(&line[at..])).ok();
        }
    }
    None
}

/// Reads `path` under libpq's rules: missing or unreadable means no password; not a plain
/// file, or group/world access, means a warning and no password.
pub(super) fn lookup(
    path: &Path,
    host: &str,
    port: &str,
    dbname: &str,
    user: &str,
) -> Option<String> {
    if dbname.is_empty() || user.is_empty() {
        return None;
    }
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        log::warn!(target: "pgpool", "password file \"{}\" is not a plain file; ignoring it", path.display());
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            log::warn!(
                target: "pgpool",
                "password file \"{}\" has group or world access; permissions should be u=rw \
                 (0600) or less; ignoring it",
                path.display()
            );
            return None;
        }
    }
    let contents = std::fs::read(path).ok()?;
    find(&contents, host, port, dbname, user)
}
