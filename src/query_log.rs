//! What a pool sees of the statements its sessions run: their times, for the `query_time`
//! histogram, and a log line for each (target `pgpool::query`): every statement at debug
//! level, those slower than `slow_query_threshold` at warn level.
//!
//! Log lines never carry parameter values; literals written into the text itself (strings,
//! numbers, dollar-quoted bodies) are replaced by `?` as well, since simple-protocol callers
//! put their values there.

use std::borrow::Cow;
use std::time::Duration;

use crate::clock::{stamp, Stamp};

use crate::config::Config;
use crate::histogram::{ms, Histogram, Recorder};

/// The log target of statement lines.
pub const TARGET: &str = "pgpool::query";

/// Shared by every session of one pool.
pub(crate) struct QueryLog {
    time: Option<Recorder>,
    slow: Option<Duration>,
    pool: String,
}

impl QueryLog {
    pub(crate) fn new(config: &Config) -> QueryLog {
        QueryLog {
            time: config.histograms.then(Recorder::new),
            slow: config.slow_query_threshold,
            pool: config.name.clone().unwrap_or_else(|| "default".to_owned()),
        }
    }

    /// The start of a statement, when anything will look at its time.
    #[inline]
    pub(crate) fn start(&self) -> Option<Stamp> {
        let wanted = self.time.is_some()
            || self.slow.is_some()
            || log::log_enabled!(target: TARGET, log::Level::Debug);
        wanted.then(stamp)
    }

    /// Records a statement that started at `start` and returned `rows` (None: it failed).
    #[inline]
    pub(crate) fn finish(&self, start: Stamp, sql: &str, params: usize, rows: Option<u64>) {
        let took = start.elapsed();
        if let Some(h) = &self.time {
            h.record(took);
        }
        let level = if self.slow.is_some_and(|s| took >= s) {
            log::Level::Warn
        } else {
            log::Level::Debug
        };
        if log::log_enabled!(target: TARGET, level) {
            let outcome = match rows {
                Some(n) => format!("rows={n}"),
                None => "failed".to_owned(),
            };
            let slow = if level == log::Level::Warn {
                "slow "
            } else {
                ""
            };
            log::log!(
                target: TARGET,
                level,
                "pool {}: {slow}query {} {outcome} params={params}: {}",
                self.pool,
                ms(took),
                redact(sql)
            );
        }
    }

    pub(crate) fn histogram(&self) -> Option<Histogram> {
        self.time.as_ref().map(Recorder::snapshot)
    }
}

/// `sql` with its literals replaced by `?`: single-quoted strings (`'…'`, `E'…'`, with
/// doubled quotes), dollar-quoted bodies (`$$…$$`, `$tag$…$tag$`) and numbers that are not
/// part of a name or a `$n` placeholder. Identifiers, keywords and quoted names stay.
///
/// ```
/// # use pgpool::query_log::redact;
/// assert_eq!(
///     redact("SELECT * FROM t WHERE pw = 'hunter2' AND id = 42 AND x = $1"),
///     "SELECT * FROM t WHERE pw = ? AND id = ? AND x = $1"
/// );
/// ```
pub fn redact(sql: &str) -> Cow<'_, str> {
    let b = sql.as_bytes();
    if !b
        .iter()
        .any(|&c| c == b'\'' || c == b'$' || c.is_ascii_digit())
    {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    // Start of the current run of text copied as is.
    let mut copied = 0;
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    while i < b.len() {
        let c = b[i];
        if c == b'"' {
            // A quoted identifier: copied as is.
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += 1;
            }
            i += 1;
        } else if c == b'\'' {
            // `E'…'` / `e'…'` prefixes are dropped with the literal; an `e` already taken
            // as part of a number (`2.e'…'`) is not one.
            let start =
                if i > copied && matches!(b[i - 1], b'E' | b'e') && (i < 2 || !word(b[i - 2])) {
                    i - 1
                } else {
                    i
                };
            let escapes = start != i;
            out.push_str(&sql[copied..start]);
            out.push('?');
            i += 1;
            while i < b.len() {
                if escapes && b[i] == b'\\' {
                    i += 2;
                    continue;
                }
                if b[i] == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            copied = i.min(b.len());
        } else if c == b'$' && (i == 0 || !word(b[i - 1])) {
            // `$1` stays; `$tag$ … $tag$` is a literal.
            let tag_end = b[i + 1..]
                .iter()
                .position(|&t| !(t.is_ascii_alphanumeric() || t == b'_'))
                .map(|p| i + 1 + p);
            match tag_end {
                Some(end)
                    if b[end] == b'$' && !b[i + 1..end].first().is_some_and(u8::is_ascii_digit) =>
                {
                    let tag = &sql[i..=end];
                    out.push_str(&sql[copied..i]);
                    out.push('?');
                    let body = end + 1;
                    i = match sql[body..].find(tag) {
                        Some(p) => body + p + tag.len(),
                        None => b.len(),
                    };
                    copied = i;
                }
                _ => {
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
        } else if c.is_ascii_digit() && (i == 0 || !word(b[i - 1]) && b[i - 1] != b'.') {
            out.push_str(&sql[copied..i]);
            out.push('?');
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                i += 1;
            }
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn literals_are_hidden_names_and_placeholders_stay() {
        for (sql, want) in [
            ("SELECT 1", "SELECT ?"),
            ("SELECT $1::int4 + 1", "SELECT $1::int4 + ?"),
            (
                "SELECT * FROM t2 WHERE a = 'x''y' AND b=3.5e3",
                "SELECT * FROM t2 WHERE a = ? AND b=?",
            ),
            ("SELECT E'a\\'b', 'c'", "SELECT ?, ?"),
            (
                "SELECT $$secret$$, $f$ x $ y $f$ FROM \"t 1\"",
                "SELECT ?, ? FROM \"t 1\"",
            ),
            (
                "UPDATE users SET pw = 'open sesame' WHERE id=$2",
                "UPDATE users SET pw = ? WHERE id=$2",
            ),
            ("SELECT col_1, x1 FROM v", "SELECT col_1, x1 FROM v"),
            ("SELECT 'unterminated", "SELECT ?"),
            // A number ending in `e` right before a quote: the `e` is not an escape prefix.
            ("2.e'~&{=,&HuzV 'mijscjfy'", "??mijscjfy?"),
            ("SELECT 1e'x'", "SELECT ??"),
            ("", ""),
        ] {
            assert_eq!(redact(sql), want, "{sql}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(sql in "[Ee'\"$\\\\0-9a-z._ é]{0,40}|\\PC{0,40}") {
            let out = redact(&sql);
            // Only `?` is ever added.
            proptest::prop_assert!(out.chars().all(|c| c == '?' || sql.contains(c)), "{out}");
        }

        #[test]
        fn never_panics_and_never_keeps_a_quoted_secret(prefix in "[ -~]{0,30}", secret in "[a-z]{8}") {
            let sql = format!("{prefix} '{secret}'");
            let out = redact(&sql);
            // The secret is gone unless the prefix opened a quote or comment of its own.
            if !prefix.contains(['\'', '"', '$']) {
                proptest::prop_assert!(!out.contains(&secret), "{out}");
            }
        }
    }
}
