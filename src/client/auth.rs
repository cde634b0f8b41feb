//! Startup and authentication: StartupMessage, then trust, cleartext, md5, SCRAM-SHA-256 and
//! SCRAM-SHA-256-PLUS (channel binding over TLS), then BackendKeyData and ParameterStatus up
//! to the first ReadyForQuery.

use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{self, ChannelBinding as ScramBinding, ScramSha256};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;

use crate::client::conninfo::{ChannelBinding, Secret};
use crate::client::db_error::DbError;
use crate::client::session::{message_name, Session};
use crate::client::tls;
use crate::error::Error;

/// What authentication needs to know.
pub(crate) struct Credentials<'a> {
    pub(crate) user: &'a str,
    pub(crate) password: Option<Secret>,
    pub(crate) channel_binding: ChannelBinding,
}

fn server_error(body: postgres_protocol::message::backend::ErrorResponseBody) -> Error {
    match DbError::parse(&mut body.fields()) {
        Ok(db) => Error::connect_db(db, "the server rejected the connection"),
        Err(e) => Error::protocol_io(e).into_connect(),
    }
}

fn next(session: &mut Session) -> Result<Message, Error> {
    match session.read_message().map_err(Error::into_connect)? {
        Message::ErrorResponse(body) => Err(server_error(body)),
        m => Ok(m),
    }
}

fn password<'a>(creds: &'a Credentials<'_>, method: &str) -> Result<&'a str, Error> {
    creds.password.as_ref().map(Secret::expose).ok_or_else(|| {
        Error::connect_permanent(format!(
            "the server requested {method} authentication, but no password was supplied \
             (set password in the connection string, PGPASSWORD, or a ~/.pgpass entry)"
        ))
    })
}

/// Sends the StartupMessage with `params` and authenticates; returns once the server sent
/// its first ReadyForQuery.
pub(crate) fn startup(
    session: &mut Session,
    params: &[(&str, &str)],
    creds: &Credentials<'_>,
) -> Result<(), Error> {
    frontend::startup_message(params.iter().copied(), &mut session.wbuf)
        .map_err(|e| Error::connect_permanent(format!("invalid startup parameter: {e}")))?;
    session.send().map_err(Error::into_connect)?;
    authenticate(session, creds)?;
    loop {
        match next(session)? {
            Message::BackendKeyData(body) => {
                session.set_backend_key(body.process_id(), body.secret_key());
            }
            Message::ReadyForQuery(_) => return Ok(()),
            other => {
                session.mark_broken();
                return Err(Error::connect_permanent(format!(
                    "unexpected {} from the server during startup",
                    message_name(&other)
                )));
            }
        }
    }
}

fn authenticate(session: &mut Session, creds: &Credentials<'_>) -> Result<(), Error> {
    let mut bound = false;
    match next(session)? {
        Message::AuthenticationOk => {}
        Message::AuthenticationCleartextPassword => {
            refuse_unbound(creds, "password")?;
            let pw = password(creds, "password")?;
            frontend::password_message(pw.as_bytes(), &mut session.wbuf)
                .map_err(|e| Error::connect_permanent(format!("invalid password: {e}")))?;
            session.send().map_err(Error::into_connect)?;
            expect_ok(session)?;
        }
        Message::AuthenticationMd5Password(body) => {
            refuse_unbound(creds, "md5")?;
            let pw = password(creds, "md5")?;
            let hash = md5_hash(creds.user.as_bytes(), pw.as_bytes(), body.salt());
            frontend::password_message(hash.as_bytes(), &mut session.wbuf)
                .map_err(|e| Error::connect_permanent(format!("invalid password: {e}")))?;
            session.send().map_err(Error::into_connect)?;
            expect_ok(session)?;
        }
        Message::AuthenticationSasl(body) => {
            let mut plain = false;
            let mut plus = false;
            let mut it = body.mechanisms();
            while let Some(m) = postgres::fallible_iterator::FallibleIterator::next(&mut it)
                .map_err(|e| Error::protocol_io(e).into_connect())?
            {
                plain |= m == sasl::SCRAM_SHA_256;
                plus |= m == sasl::SCRAM_SHA_256_PLUS;
            }
            bound = scram(session, creds, plain, plus)?;
        }
        Message::AuthenticationKerberosV5
        | Message::AuthenticationGss
        | Message::AuthenticationSspi
        | Message::AuthenticationScmCredential => {
            return Err(Error::connect_permanent(
                "the server requested GSSAPI/SSPI/Kerberos authentication, which pgpool does not support",
            ));
        }
        other => {
            session.mark_broken();
            return Err(Error::connect_permanent(format!(
                "unexpected {} from the server during authentication",
                message_name(&other)
            )));
        }
    }
    if creds.channel_binding == ChannelBinding::Require && !bound {
        return Err(Error::connect_permanent(
            "channel_binding=require, but the server authenticated the client without channel binding",
        ));
    }
    Ok(())
}

/// Under `channel_binding=require`, a password request that cannot bind the channel is
/// refused before the password is sent, as libpq does: the server asking may be anybody.
fn refuse_unbound(creds: &Credentials<'_>, method: &str) -> Result<(), Error> {
    if creds.channel_binding == ChannelBinding::Require {
        return Err(Error::connect_permanent(format!(
            "channel_binding=require, but the server requested {method} authentication, \
             which has no channel binding (the password was not sent)"
        )));
    }
    Ok(())
}

fn expect_ok(session: &mut Session) -> Result<(), Error> {
    match next(session)? {
        Message::AuthenticationOk => Ok(()),
        other => {
            session.mark_broken();
            Err(Error::connect_permanent(format!(
                "unexpected {} from the server after the password",
                message_name(&other)
            )))
        }
    }
}

/// The SCRAM exchange; returns whether channel binding was used.
fn scram(
    session: &mut Session,
    creds: &Credentials<'_>,
    plain: bool,
    plus: bool,
) -> Result<bool, Error> {
    let pw = password(creds, "SCRAM-SHA-256")?;
    let end_point = match session.stream() {
        crate::client::stream::Stream::Tls(tls_stream) => tls::server_end_point(tls_stream),
        _ => None,
    };
    let (mechanism, binding, bound) = match (creds.channel_binding, end_point) {
        (ChannelBinding::Disable, _) => (sasl::SCRAM_SHA_256, ScramBinding::unsupported(), false),
        (_, Some(data)) if plus => (
            sasl::SCRAM_SHA_256_PLUS,
            ScramBinding::tls_server_end_point(data),
            true,
        ),
        // TLS but the server does not offer PLUS: say we could have (guards against a
        // downgrade by a man in the middle).
        (_, Some(_)) => (sasl::SCRAM_SHA_256, ScramBinding::unrequested(), false),
        (_, None) => (sasl::SCRAM_SHA_256, ScramBinding::unsupported(), false),
    };
    if !bound && creds.channel_binding == ChannelBinding::Require {
        return Err(Error::connect_permanent(
            "channel_binding=require, but the server does not offer SCRAM-SHA-256-PLUS over TLS",
        ));
    }
    if !bound && !plain {
        return Err(Error::connect_permanent(
            "the server offers only SCRAM-SHA-256-PLUS, which needs TLS with channel binding",
        ));
    }
    let mut scram = ScramSha256::new(pw.as_bytes(), binding);
    frontend::sasl_initial_response(mechanism, scram.message(), &mut session.wbuf)
        .map_err(|e| Error::connect_permanent(format!("SCRAM: {e}")))?;
    session.send().map_err(Error::into_connect)?;
    let data = match next(session)? {
        Message::AuthenticationSaslContinue(body) => body.data().to_vec(),
        other => return Err(unexpected_sasl(session, &other)),
    };
    scram
        .update(&data)
        .map_err(|e| Error::connect_permanent(format!("SCRAM: invalid server message: {e}")))?;
    frontend::sasl_response(scram.message(), &mut session.wbuf)
        .map_err(|e| Error::connect_permanent(format!("SCRAM: {e}")))?;
    session.send().map_err(Error::into_connect)?;
    let data = match next(session)? {
        Message::AuthenticationSaslFinal(body) => body.data().to_vec(),
        other => return Err(unexpected_sasl(session, &other)),
    };
    scram.finish(&data).map_err(|e| {
        Error::connect_permanent(format!("SCRAM: the server's signature is invalid: {e}"))
    })?;
    expect_ok(session)?;
    Ok(bound)
}

fn unexpected_sasl(session: &mut Session, m: &Message) -> Error {
    session.mark_broken();
    Error::connect_permanent(format!(
        "unexpected {} from the server during SCRAM authentication",
        message_name(m)
    ))
}
