//! The raw stage: a connection string into the `(key, value)` pairs it sets, as libpq's
//! `PQconninfoParse` returns them (no environment, no defaults, no value checks).

use crate::error::Error;

/// Every keyword libpq accepts, in libpq's order (`PQconninfoOptions` in fe-connect.c), with
/// the environment variable that supplies it when the string does not.
pub(super) const KEYWORDS: &[(&str, Option<&str>)] = &[
    ("service", Some("PGSERVICE")),
    ("user", Some("PGUSER")),
    ("password", Some("PGPASSWORD")),
    ("passfile", Some("PGPASSFILE")),
    ("channel_binding", Some("PGCHANNELBINDING")),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    ("dbname", Some("PGDATABASE")),
    ("host", Some("PGHOST")),
    ("hostaddr", Some("PGHOSTADDR")),
    ("port", Some("PGPORT")),
    ("client_encoding", Some("PGCLIENTENCODING")),
    ("options", Some("PGOPTIONS")),
    ("application_name", Some("PGAPPNAME")),
    ("fallback_application_name", None),
    ("keepalives", None),
    ("keepalives_idle", None),
    ("keepalives_interval", None),
    ("keepalives_count", None),
    ("tcp_user_timeout", None),
    ("sslmode", Some("PGSSLMODE")),
    ("sslnegotiation", Some("PGSSLNEGOTIATION")),
    ("sslcompression", Some("PGSSLCOMPRESSION")),
    ("sslcert", Some("PGSSLCERT")),
    ("sslkey", Some("PGSSLKEY")),
    ("sslcertmode", Some("PGSSLCERTMODE")),
    ("sslpassword", None),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("sslcrl", Some("PGSSLCRL")),
    ("sslcrldir", Some("PGSSLCRLDIR")),
    ("sslsni", Some("PGSSLSNI")),
    ("requirepeer", Some("PGREQUIREPEER")),
    ("require_auth", Some("PGREQUIREAUTH")),
    ("ssl_min_protocol_version", Some("PGSSLMINPROTOCOLVERSION")),
    ("ssl_max_protocol_version", Some("PGSSLMAXPROTOCOLVERSION")),
    ("gssencmode", Some("PGGSSENCMODE")),
    ("krbsrvname", Some("PGKRBSRVNAME")),
    ("gsslib", Some("PGGSSLIB")),
    ("gssdelegation", Some("PGGSSDELEGATION")),
    ("replication", None),
    ("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    ("load_balance_hosts", Some("PGLOADBALANCEHOSTS")),
];

/// Keys whose values are secrets: never echoed in an error.
fn is_secret_key(key: &str) -> bool {
    matches!(key, "password" | "sslpassword")
}

/// The values set so far, one slot per entry of [`KEYWORDS`].
struct Slots(Vec<Option<String>>);

impl Slots {
    fn new() -> Slots {
        Slots(vec![None; KEYWORDS.len()])
    }

    /// libpq's `conninfo_storeval`: `requiressl` is the old spelling of `sslmode`; an unknown
    /// key is an error naming it; a later value replaces an earlier one.
    fn store(&mut self, key: &str, value: String) -> Result<(), Error> {
        let (key, value) = if key == "requiressl" {
            let mode = if value.starts_with('1') {
                "require"
            } else {
                "prefer"
            };
            ("sslmode", mode.to_owned())
        } else {
            (key, value)
        };
        match KEYWORDS.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                self.0[i] = Some(value);
                Ok(())
            }
            None => Err(unknown_key(key)),
        }
    }

    fn into_pairs(self) -> Vec<(String, String)> {
        KEYWORDS
            .iter()
            .zip(self.0)
            .filter_map(|((k, _), v)| v.map(|v| ((*k).to_owned(), v)))
            .collect()
    }
}

fn syntax(message: String) -> Error {
    Error::config("conninfo", message)
}

fn unknown_key(key: &str) -> Error {
    syntax(format!("invalid connection option \"{key}\""))
}

/// C's `isspace` in the C locale.
pub(super) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// The length of the `postgresql://` or `postgres://` prefix, 0 when there is none.
fn uri_prefix_length(s: &str) -> usize {
    ["postgresql://", "postgres://"]
        .iter()
        .find(|p| s.starts_with(*p))
        .map_or(0, |p| p.len())
}

/// See [`ConnConfig::parse_pairs`](super::ConnConfig::parse_pairs).
pub(super) fn parse_pairs(conninfo: &str) -> Result<Vec<(String, String)>, Error> {
    // A C string ends at its first NUL: libpq never sees what follows.
    let conninfo = conninfo.split('\0').next().unwrap_or("");
    let mut slots = Slots::new();
    let prefix = uri_prefix_length(conninfo);
    if prefix != 0 {
        parse_uri(conninfo, prefix, &mut slots)?;
    } else {
        parse_key_values(conninfo, &mut slots)?;
    }
    Ok(slots.into_pairs())
}

fn bytes_to_string(bytes: Vec<u8>) -> String {
    // Only ASCII bytes are ever removed from valid UTF-8 input, so this never replaces
    // anything; the lossy form just avoids a panic path.
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// One `key = value` pair as libpq's `conninfo_parse` reads it, found by [`next_pair`]:
/// the key, where it starts, the value (unquoted, escapes resolved) and where it ends (after
/// a closing quote, or before the whitespace that ended a bare value).
pub(crate) struct Pair<'a> {
    pub(crate) key: &'a str,
    pub(crate) key_start: usize,
    pub(crate) value: Vec<u8>,
    pub(crate) value_end: usize,
}

/// Why [`next_pair`] could not read a pair.
pub(crate) enum PairError<'a> {
    /// A key (this one) not followed by `=`.
    MissingEquals(&'a str),
    /// A quoted value without its closing quote.
    Unterminated,
}

/// Reads the next `key = value` pair of `s` from byte `*i` (leading whitespace skipped), and
/// moves `*i` past it: libpq's syntax, where a value is either bare (ends at whitespace, `\`
/// escapes the next byte) or `'quoted'` (`\'` and `\\`). `Ok(None)` at the end. The one
/// scanner behind the libpq parser and the cutting of pool keys (`options`).
pub(crate) fn next_pair<'a>(s: &'a str, i: &mut usize) -> Result<Option<Pair<'a>>, PairError<'a>> {
    let b = s.as_bytes();
    while *i < b.len() && is_c_space(b[*i]) {
        *i += 1;
    }
    if *i >= b.len() {
        return Ok(None);
    }
    let key_start = *i;
    while *i < b.len() && b[*i] != b'=' && !is_c_space(b[*i]) {
        *i += 1;
    }
    let key = &s[key_start..*i];
    while *i < b.len() && is_c_space(b[*i]) {
        *i += 1;
    }
    if *i >= b.len() || b[*i] != b'=' {
        return Err(PairError::MissingEquals(key));
    }
    *i += 1;
    while *i < b.len() && is_c_space(b[*i]) {
        *i += 1;
    }
    let mut value = Vec::new();
    let quoted = *i < b.len() && b[*i] == b'\'';
    if quoted {
        *i += 1;
    }
    loop {
        if *i >= b.len() {
            if quoted {
                return Err(PairError::Unterminated);
            }
            break;
        }
        match b[*i] {
            b'\\' => {
                *i += 1;
                if *i < b.len() {
                    value.push(b[*i]);
                    *i += 1;
                }
            }
            b'\'' if quoted => {
                *i += 1;
                break;
            }
            c if !quoted && is_c_space(c) => break,
            c => {
                value.push(c);
                *i += 1;
            }
        }
    }
    let value_end = *i;
    if !quoted && *i < b.len() {
        *i += 1; // the whitespace that ended the value
    }
    Ok(Some(Pair {
        key,
        key_start,
        value,
        value_end,
    }))
}

/// libpq's `conninfo_parse`: `key = value` pairs separated by whitespace (see [`next_pair`]).
fn parse_key_values(s: &str, slots: &mut Slots) -> Result<(), Error> {
    let mut i = 0;
    // The key just stored, so that an error right after a password does not echo part of it
    // (an unquoted password with a space in it).
    let mut after_secret = false;
    loop {
        let pair =
            match next_pair(s, &mut i) {
                Ok(Some(pair)) => pair,
                Ok(None) => return Ok(()),
                Err(PairError::MissingEquals(_)) if after_secret => return Err(syntax(
                    "missing \"=\" after a word following a password in connection info string \
                     (quote a password that contains spaces)"
                        .to_owned(),
                )),
                Err(PairError::MissingEquals(key)) => {
                    return Err(syntax(format!(
                        "missing \"=\" after \"{key}\" in connection info string"
                    )))
                }
                Err(PairError::Unterminated) => {
                    return Err(syntax(
                        "unterminated quoted string in connection info string".to_owned(),
                    ))
                }
            };
        let key = pair.key;
        if after_secret && KEYWORDS.iter().all(|(k, _)| *k != key) && key != "requiressl" {
            return Err(syntax(
                "invalid connection option after a password (quote a password that contains \
                 spaces)"
                    .to_owned(),
            ));
        }
        slots.store(key, bytes_to_string(pair.value))?;
        after_secret = is_secret_key(key);
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// libpq's `conninfo_uri_decode`: `%xy` into the byte 0xXY (`%00` is refused). `what` names
/// the URI component for the error; `secret` keeps its text out of the error.
/// libpq's `%xy` decoding (`%00` refused); the error is the problem, for a message.
pub(crate) fn percent_decode(s: &str) -> Result<String, &'static str> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let hi = b.get(i + 1).copied().and_then(hex_digit);
        let lo = b.get(i + 2).copied().and_then(hex_digit);
        match (hi, lo) {
            (Some(hi), Some(lo)) => {
                let c = (hi << 4) | lo;
                if c == 0 {
                    return Err("forbidden value %00 in percent-encoded value");
                }
                out.push(c);
                i += 3;
            }
            _ => return Err("invalid percent-encoded token"),
        }
    }
    String::from_utf8(out).map_err(|_| "percent-decoding gives invalid UTF-8")
}

fn uri_decode(s: &str, what: &str, secret: bool) -> Result<String, Error> {
    percent_decode(s).map_err(|problem| {
        if secret {
            syntax(format!("{problem} in the URI's {what}"))
        } else {
            syntax(format!("{problem} in the URI's {what}: \"{s}\""))
        }
    })
}

fn store_decoded(slots: &mut Slots, key: &'static str, raw: &str) -> Result<(), Error> {
    let value = uri_decode(raw, key, is_secret_key(key))?;
    slots.store(key, value)
}

/// libpq's `conninfo_uri_parse_options`:
/// `postgresql://[user[:password]@][host][:port][,...][/dbname][?key=value&...]`.
fn parse_uri(uri: &str, prefix: usize, slots: &mut Slots) -> Result<(), Error> {
    let b = uri.as_bytes();
    let len = b.len();
    let start = prefix;
    let mut p = start;

    // Credentials: an '@' before any '/'.
    while p < len && b[p] != b'@' && b[p] != b'/' {
        p += 1;
    }
    if p < len && b[p] == b'@' {
        let credentials = &uri[start..p];
        let (user, password) = match credentials.find(':') {
            Some(colon) => (&credentials[..colon], Some(&credentials[colon + 1..])),
            None => (credentials, None),
        };
        if !user.is_empty() {
            store_decoded(slots, "user", user)?;
        }
        if let Some(password) = password.filter(|p| !p.is_empty()) {
            store_decoded(slots, "password", password)?;
        }
        p += 1;
    } else {
        p = start;
    }

    // host[:port] entries separated by commas.
    let mut hosts = String::new();
    let mut ports = String::new();
    let mut prevchar: Option<u8>;
    let is_host_end = |c: u8| matches!(c, b':' | b'/' | b'?' | b',');
    loop {
        let host;
        if p < len && b[p] == b'[' {
            p += 1;
            let host_start = p;
            while p < len && b[p] != b']' {
                p += 1;
            }
            if p >= len {
                return Err(syntax(
                    "end of string reached when looking for matching \"]\" in IPv6 host address \
                     in URI"
                        .to_owned(),
                ));
            }
            if p == host_start {
                return Err(syntax(
                    "IPv6 host address may not be empty in URI".to_owned(),
                ));
            }
            host = &uri[host_start..p];
            p += 1;
            if p < len && !is_host_end(b[p]) {
                let c = uri[p..].chars().next().unwrap_or('?');
                return Err(syntax(format!(
                    "unexpected character \"{c}\" at position {} in URI (expected \":\" or \"/\")",
                    p + 1
                )));
            }
        } else {
            let host_start = p;
            while p < len && !is_host_end(b[p]) {
                p += 1;
            }
            host = &uri[host_start..p];
        }
        prevchar = b.get(p).copied();
        hosts.push_str(host);
        if prevchar == Some(b':') {
            p += 1;
            let port_start = p;
            while p < len && !matches!(b[p], b'/' | b'?' | b',') {
                p += 1;
            }
            prevchar = b.get(p).copied();
            ports.push_str(&uri[port_start..p]);
        }
        if prevchar != Some(b',') {
            break;
        }
        p += 1;
        hosts.push(',');
        ports.push(',');
    }
    if !hosts.is_empty() {
        store_decoded(slots, "host", &hosts)?;
    }
    if !ports.is_empty() {
        store_decoded(slots, "port", &ports)?;
    }

    // "/dbname": an empty one is not stored (PGDATABASE still applies).
    if prevchar == Some(b'/') {
        p += 1;
        let db_start = p;
        while p < len && b[p] != b'?' {
            p += 1;
        }
        prevchar = b.get(p).copied();
        let dbname = &uri[db_start..p];
        if !dbname.is_empty() {
            store_decoded(slots, "dbname", dbname)?;
        }
    }

    if prevchar.is_some() {
        parse_uri_params(&uri[p + 1..], slots)?;
    }
    Ok(())
}

/// libpq's `conninfo_uri_parse_params`: `key=value` separated by `&`, both percent-decoded;
/// `ssl=true` means `sslmode=require` (as JDBC spells it).
fn parse_uri_params(params: &str, slots: &mut Slots) -> Result<(), Error> {
    let mut rest = params;
    while !rest.is_empty() {
        let b = rest.as_bytes();
        let mut i = 0;
        let mut eq = None;
        loop {
            if i < b.len() && b[i] == b'=' {
                if eq.is_some() {
                    let key = &rest[..eq.unwrap_or(0)];
                    return Err(syntax(format!(
                        "extra key/value separator \"=\" in URI query parameter: \"{key}\""
                    )));
                }
                eq = Some(i);
                i += 1;
            } else if i >= b.len() || b[i] == b'&' {
                break;
            } else {
                i += 1;
            }
        }
        let Some(eq) = eq else {
            let key = &rest[..i];
            return Err(syntax(format!(
                "missing key/value separator \"=\" in URI query parameter: \"{key}\""
            )));
        };
        let raw_key = &rest[..eq];
        let raw_value = &rest[eq + 1..i];
        rest = if i < b.len() { &rest[i + 1..] } else { "" };

        let key = uri_decode(raw_key, "query parameter name", false)?;
        let secret = is_secret_key(&key);
        let value = uri_decode(raw_value, &format!("\"{key}\" query parameter"), secret)?;
        let (key, value) = if key == "ssl" && value == "true" {
            ("sslmode".to_owned(), "require".to_owned())
        } else {
            (key, value)
        };
        slots.store(&key, value).map_err(|_| {
            syntax(format!(
                "invalid URI query parameter: \"{key}\" (invalid connection option \"{key}\")"
            ))
        })?;
    }
    Ok(())
}
