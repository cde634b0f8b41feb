//! Types beyond PostgreSQL's built-in ones (enums, domains, composites, arrays and ranges of
//! user-defined types): looked up in `pg_type` once per session and kept.

use postgres::types::{Field, Kind, Type};

use crate::client::row::SimpleQueryMessage;
use crate::client::session::Session;
use crate::error::Error;

/// How deep a type may nest (an array of a domain over a composite …) before the lookup
/// gives up and treats it as a plain type.
const MAX_DEPTH: u32 = 8;

/// The `Type` for `oid`: built in, already known to this session, or looked up.
pub(crate) fn resolve(session: &mut Session, oid: u32) -> Result<Type, Error> {
    resolve_at(session, oid, 0)
}

fn rows(session: &mut Session, sql: &str) -> Result<Vec<Vec<Option<String>>>, Error> {
    Ok(session
        .simple_query(sql)?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.values),
            _ => None,
        })
        .collect())
}

fn resolve_at(session: &mut Session, oid: u32, depth: u32) -> Result<Type, Error> {
    if let Some(ty) = Type::from_oid(oid) {
        return Ok(ty);
    }
    if let Some(ty) = session.types.get(&oid) {
        return Ok(ty.clone());
    }
    let fallback = || Type::new(format!("oid{oid}"), oid, Kind::Simple, String::new());
    // OID 0 is no type ("unspecified": what the server reports for a parameter of an empty
    // statement whose type was not declared): nothing to look up.
    if oid == 0 || depth >= MAX_DEPTH {
        return Ok(fallback());
    }
    // Inside a failed transaction nothing can be looked up: the statement itself will fail.
    let found = match rows(
        session,
        &format!(
            "SELECT t.typname, t.typtype, t.typelem, coalesce(r.rngsubtype, 0), t.typbasetype, \
             n.nspname, t.typrelid FROM pg_catalog.pg_type t \
             LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid \
             JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = {oid}"
        ),
    ) {
        Ok(found) => found,
        Err(e) if e.sqlstate().is_some() && !session.is_broken() => return Ok(fallback()),
        Err(e) => return Err(e),
    };
    let Some(row) = found.into_iter().next() else {
        return Ok(fallback());
    };
    let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let num = |i: usize| text(i).parse::<u32>().unwrap_or(0);
    let (name, typtype, elem, range_sub, base, schema, relid) =
        (text(0), text(1), num(2), num(3), num(4), text(5), num(6));
    let kind = if typtype == "e" {
        let labels = rows(
            session,
            &format!(
                "SELECT enumlabel FROM pg_catalog.pg_enum WHERE enumtypid = {oid} \
                 ORDER BY enumsortorder"
            ),
        )?;
        Kind::Enum(
            labels
                .into_iter()
                .filter_map(|r| r.into_iter().next().flatten())
                .collect(),
        )
    } else if typtype == "p" {
        Kind::Pseudo
    } else if base != 0 {
        Kind::Domain(resolve_at(session, base, depth + 1)?)
    } else if elem != 0 {
        Kind::Array(resolve_at(session, elem, depth + 1)?)
    } else if relid != 0 {
        let attrs = rows(
            session,
            &format!(
                "SELECT attname, atttypid FROM pg_catalog.pg_attribute WHERE attrelid = {relid} \
                 AND NOT attisdropped AND attnum > 0 ORDER BY attnum"
            ),
        )?;
        let mut fields = Vec::with_capacity(attrs.len());
        for a in attrs {
            let name = a.first().cloned().flatten().unwrap_or_default();
            let oid = a
                .get(1)
                .cloned()
                .flatten()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            fields.push(Field::new(name, resolve_at(session, oid, depth + 1)?));
        }
        Kind::Composite(fields)
    } else if range_sub != 0 {
        Kind::Range(resolve_at(session, range_sub, depth + 1)?)
    } else {
        Kind::Simple
    };
    let ty = Type::new(name, oid, kind, schema);
    session.types.insert(oid, ty.clone());
    Ok(ty)
}
