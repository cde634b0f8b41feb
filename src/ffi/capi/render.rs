//! Column values (received in PostgreSQL's binary format) rendered as PostgreSQL's text
//! output, exactly for numeric, for the common built-in types and arrays of them.
//!
//! An unsupported type is an error naming it, never garbage.

use postgres::types::{Kind, Type};

use super::datetime;

/// Why a value cannot be rendered.
pub(crate) enum RenderError {
    /// The type is not one the library renders.
    Unsupported(String),
    /// The bytes do not match the type's binary format.
    Malformed(String),
}

type Rendered = Result<String, RenderError>;

fn malformed(ty: &Type) -> RenderError {
    RenderError::Malformed(format!("malformed binary value for type {}", ty.name()))
}

fn be<const N: usize>(raw: &[u8], at: usize, ty: &Type) -> Result<[u8; N], RenderError> {
    raw.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| malformed(ty))
}

fn exact<const N: usize>(raw: &[u8], ty: &Type) -> Result<[u8; N], RenderError> {
    if raw.len() != N {
        return Err(malformed(ty));
    }
    be::<N>(raw, 0, ty)
}

/// Renders one non-NULL value of type `ty`.
pub(crate) fn render(ty: &Type, raw: &[u8]) -> Rendered {
    match ty.kind() {
        Kind::Array(element) => return array(element, raw, ty),
        Kind::Domain(base) => return render(base, raw),
        Kind::Enum(_) => return text(raw, ty),
        _ => {}
    }
    match *ty {
        Type::BOOL => Ok(if exact::<1>(raw, ty)?[0] != 0 {
            "t"
        } else {
            "f"
        }
        .into()),
        Type::INT2 => Ok(i16::from_be_bytes(exact(raw, ty)?).to_string()),
        Type::INT4 => Ok(i32::from_be_bytes(exact(raw, ty)?).to_string()),
        Type::INT8 => Ok(i64::from_be_bytes(exact(raw, ty)?).to_string()),
        Type::OID => Ok(u32::from_be_bytes(exact(raw, ty)?).to_string()),
        Type::FLOAT4 => Ok(float(f64::from(f32::from_be_bytes(exact(raw, ty)?)), true)),
        Type::FLOAT8 => Ok(float(f64::from_be_bytes(exact(raw, ty)?), false)),
        Type::NUMERIC => numeric(raw, ty),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON => {
            text(raw, ty)
        }
        Type::CHAR => Ok(String::from_utf8_lossy(raw).into_owned()),
        Type::JSONB => match raw.split_first() {
            Some((1, rest)) => text(rest, ty),
            _ => Err(malformed(ty)),
        },
        Type::BYTEA => {
            let mut s = String::with_capacity(2 + raw.len() * 2);
            s.push_str("\\x");
            for b in raw {
                s.push_str(&format!("{b:02x}"));
            }
            Ok(s)
        }
        Type::UUID => {
            let b: [u8; 16] = exact(raw, ty)?;
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            Ok(format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            ))
        }
        Type::DATE => Ok(datetime::date(i32::from_be_bytes(exact(raw, ty)?))),
        Type::TIME => Ok(datetime::time(i64::from_be_bytes(exact(raw, ty)?))),
        Type::TIMETZ => {
            if raw.len() != 12 {
                return Err(malformed(ty));
            }
            let t = i64::from_be_bytes(be(raw, 0, ty)?);
            let zone = i32::from_be_bytes(be(raw, 8, ty)?);
            Ok(datetime::timetz(t, zone))
        }
        Type::TIMESTAMP => Ok(datetime::timestamp(
            i64::from_be_bytes(exact(raw, ty)?),
            false,
        )),
        Type::TIMESTAMPTZ => Ok(datetime::timestamp(
            i64::from_be_bytes(exact(raw, ty)?),
            true,
        )),
        Type::INTERVAL => {
            if raw.len() != 16 {
                return Err(malformed(ty));
            }
            let usecs = i64::from_be_bytes(be(raw, 0, ty)?);
            let days = i32::from_be_bytes(be(raw, 8, ty)?);
            let months = i32::from_be_bytes(be(raw, 12, ty)?);
            Ok(datetime::interval(usecs, days, months))
        }
        _ => Err(RenderError::Unsupported(format!(
            "values of type {} (oid {}) cannot be rendered as text by pgpool; cast the column \
             in SQL (e.g. `col::text`)",
            ty.name(),
            ty.oid()
        ))),
    }
}

fn text(raw: &[u8], ty: &Type) -> Rendered {
    String::from_utf8(raw.to_vec()).map_err(|_| malformed(ty))
}

/// PostgreSQL's shortest-exact float output (`extra_float_digits = 1`): scientific notation
/// when the decimal exponent is below -4 or at least the type's precision (15 or 6).
fn float(v: f64, single: bool) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let sci = if single {
        format!("{:e}", v as f32)
    } else {
        format!("{v:e}")
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let limit = if single { 6 } else { 15 };
    if exp < -4 || exp >= limit {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else if single {
        format!("{}", v as f32)
    } else {
        format!("{v}")
    }
}

/// NUMERIC's binary format: ndigits, weight, sign, dscale, then base-10000 digits.
fn numeric(raw: &[u8], ty: &Type) -> Rendered {
    let ndigits = u16::from_be_bytes(be(raw, 0, ty)?) as usize;
    let weight = i16::from_be_bytes(be(raw, 2, ty)?) as i64;
    let sign = u16::from_be_bytes(be(raw, 4, ty)?);
    let dscale = u16::from_be_bytes(be(raw, 6, ty)?) as usize;
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        0x0000 | 0x4000 => {}
        _ => return Err(malformed(ty)),
    }
    if raw.len() != 8 + 2 * ndigits {
        return Err(malformed(ty));
    }
    let digits: Vec<i64> = raw[8..]
        .chunks_exact(2)
        .map(|c| i64::from(u16::from_be_bytes([c[0], c[1]])))
        .collect();
    if digits.iter().any(|&d| d > 9999) {
        return Err(malformed(ty));
    }
    let digit = |i: i64| -> i64 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                s.push_str(&digit(i).to_string());
            } else {
                s.push_str(&format!("{:04}", digit(i)));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::with_capacity(dscale + 4);
        let mut i = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(i)));
            i += 1;
        }
        frac.truncate(dscale);
        s.push('.');
        s.push_str(&frac);
    }
    Ok(s)
}

fn quote_element(s: &str) -> String {
    let needs = s.is_empty()
        || s.eq_ignore_ascii_case("NULL")
        || s.chars()
            .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace());
    if !needs {
        return s.to_string();
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// The binary array format: ndim, has-nulls flag, element oid, (length, lower bound) per
/// dimension, then each element as a length (-1 for NULL) and its bytes.
fn array(element: &Type, raw: &[u8], ty: &Type) -> Rendered {
    let ndim = i32::from_be_bytes(be(raw, 0, ty)?);
    if !(0..=6).contains(&ndim) {
        return Err(malformed(ty));
    }
    let ndim = ndim as usize;
    let mut dims = Vec::with_capacity(ndim);
    for d in 0..ndim {
        let len = i32::from_be_bytes(be(raw, 12 + 8 * d, ty)?);
        let lower = i32::from_be_bytes(be(raw, 16 + 8 * d, ty)?);
        let len = usize::try_from(len).map_err(|_| malformed(ty))?;
        dims.push((len, lower));
    }
    if ndim == 0 {
        return Ok("{}".into());
    }
    let mut pos = 12 + 8 * ndim;
    let total: usize = dims.iter().map(|d| d.0).product();
    let mut elements = Vec::with_capacity(total);
    for _ in 0..total {
        let len = i32::from_be_bytes(be(raw, pos, ty)?);
        pos += 4;
        if len < 0 {
            elements.push("NULL".to_string());
            continue;
        }
        let bytes = raw
            .get(pos..pos + len as usize)
            .ok_or_else(|| malformed(ty))?;
        pos += len as usize;
        elements.push(quote_element(&render(element, bytes)?));
    }
    let mut s = String::new();
    if dims.iter().any(|d| d.1 != 1) {
        for (len, lower) in &dims {
            s.push_str(&format!("[{}:{}]", lower, *lower as i64 + *len as i64 - 1));
        }
        s.push('=');
    }
    let mut next = elements.into_iter();
    nest(&dims, &mut next, &mut s);
    Ok(s)
}

fn nest(dims: &[(usize, i32)], elements: &mut impl Iterator<Item = String>, out: &mut String) {
    out.push('{');
    let Some(((len, _), inner)) = dims.split_first() else {
        out.push('}');
        return;
    };
    for i in 0..*len {
        if i > 0 {
            out.push(',');
        }
        if inner.is_empty() {
            out.push_str(&elements.next().unwrap_or_default());
        } else {
            nest(inner, elements, out);
        }
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_render_like_postgres() {
        assert_eq!(float(1.5, false), "1.5");
        assert_eq!(float(0.1, false), "0.1");
        assert_eq!(float(1e20, false), "1e+20");
        assert_eq!(float(1.25e-5, false), "1.25e-05");
        assert_eq!(float(123456.0, false), "123456");
        assert_eq!(float(f64::from(0.1f32), true), "0.1");
        assert_eq!(float(f64::from(1234567.0f32), true), "1.234567e+06");
    }

    #[test]
    fn numeric_renders_exactly() {
        // 12345.678 : ndigits 3, weight 1, dscale 3, digits 1 2345 6780
        let raw = [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c];
        assert_eq!(numeric(&raw, &Type::NUMERIC).ok().unwrap(), "12345.678");
        // -0.0001 : ndigits 1, weight -1, sign neg, dscale 4, digit 1
        let raw = [0, 1, 0xff, 0xff, 0x40, 0, 0, 4, 0, 1];
        assert_eq!(numeric(&raw, &Type::NUMERIC).ok().unwrap(), "-0.0001");
        // 0 with dscale 2
        let raw = [0, 0, 0, 0, 0, 0, 0, 2];
        assert_eq!(numeric(&raw, &Type::NUMERIC).ok().unwrap(), "0.00");
    }
}
