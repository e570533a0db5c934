//! Where the store connects: [`Options`], the connect options built from them, and the URL as it
//! may be shown (without its password).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use stint_store::Error;

/// Longest wait for one new connection, so an address that drops packets fails `open` instead of
/// hanging it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of a PostgreSQL store.
#[derive(Clone)]
pub struct Options {
    /// The server, as `postgres://user:password@host:port/database?…`.
    pub url: String,
    /// Most connections the pool opens: the most jobs running at once.
    pub max_connections: u32,
    /// The schema holding Stint's tables; the user's default `search_path` when `None`. It is
    /// created when missing, and every connection of the pool uses it.
    pub schema: Option<String>,
}

impl Options {
    /// Defaults for a server: 16 connections, the default schema.
    pub fn new(url: impl Into<String>) -> Options {
        Options { url: url.into(), max_connections: 16, schema: None }
    }

    /// The URL without its password, for messages and logs.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .field("schema", &self.schema)
            .finish()
    }
}

/// The connect options of every connection the store opens: the URL's, with the schema first in
/// the `search_path` when one is set, bitmap scans off, and no TLS to a server on this machine
/// unless the URL or `PGSSLMODE` asks for it.
///
/// The queue index hands out the next runs in order, and a dequeue reads only as many entries as
/// it takes, however long the queue. But a queue fills faster than autovacuum re-analyzes: the
/// planner, believing a queue holds a handful of runs, prefers a bitmap scan of every queued run
/// followed by a sort, which costs a full read of the backlog per dequeue (9 ms against 0.2 ms
/// with 7,500 queued runs). Stint's statements are lookups and ordered walks of an index, which
/// never need a bitmap scan, so none is planned.
///
/// TLS protects nothing on the loopback interface, and there it costs more than its CPU: sqlx
/// 0.9.0 leaves Nagle's algorithm on (upstream issue transact-rs/sqlx#4335, fixed after 0.9.0),
/// and a statement larger than one TLS record — a batch of dequeued or completed runs — then goes
/// out as several small segments, the last held back until the server's delayed ACK, 40 ms later.
/// That capped a worker's drain at about 900 runs/s, against 4,500 without TLS.
pub(crate) fn connect_options(options: &Options) -> Result<PgConnectOptions, Error> {
    let mut connect: PgConnectOptions = options
        .url
        .parse()
        .map_err(|e| Error::Unavailable(format!("bad PostgreSQL URL {}: {e}", options.redacted_url())))?;
    if connect.get_application_name().is_none() {
        connect = connect.application_name("stint");
    }
    connect = connect.options([("enable_bitmapscan", "off")]);
    if is_loopback(connect.get_host()) && !asks_for_ssl_mode(&options.url) {
        connect = connect.ssl_mode(PgSslMode::Disable);
    }
    if let Some(schema) = &options.schema {
        connect = connect.options([("search_path", quote_identifier(schema)?)]);
    }
    Ok(connect)
}

/// Whether `host` names this machine over TCP.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether the URL or the environment chooses an `sslmode`.
fn asks_for_ssl_mode(url: &str) -> bool {
    let in_url = url
        .split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|pair| pair.to_ascii_lowercase().starts_with("sslmode=")));
    in_url || std::env::var_os("PGSSLMODE").is_some()
}

/// Opens one connection outside the pool.
pub(crate) async fn connect_one(connect: &PgConnectOptions, options: &Options) -> Result<PgConnection, Error> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(connect)).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(cannot_connect(options, &error)),
        Err(_) => Err(Error::Unavailable(format!(
            "cannot connect to PostgreSQL at {}: no answer within {CONNECT_TIMEOUT:?}",
            options.redacted_url()
        ))),
    }
}

/// The error of a connection that could not be made, naming the server.
pub(crate) fn cannot_connect(options: &Options, error: &sqlx::Error) -> Error {
    Error::Unavailable(format!("cannot connect to PostgreSQL at {}: {error}", options.redacted_url()))
}

/// `name` as a quoted SQL identifier.
pub(crate) fn quote_identifier(name: &str) -> Result<String, Error> {
    if name.is_empty() || name.contains('\0') {
        return Err(Error::Unavailable(format!("'{name}' is not a usable schema name")));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// `url` with the password of its user info and of a `password=` parameter replaced by `***`.
/// Text that is not a URL is not shown at all, since it may hold a password anywhere.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return "(a URL that does not start with postgres://)".to_string();
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..].find(['/', '?', '#']).map_or(url.len(), |i| authority_start + i);
    let authority = &url[authority_start..authority_end];
    let authority = match authority.rfind('@') {
        Some(at) => match authority[..at].find(':') {
            Some(colon) => format!("{}:***{}", &authority[..colon], &authority[at..]),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let rest = &url[authority_end..];
    let rest = match rest.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => rest.to_string(),
    };
    format!("{}{authority}{rest}", &url[..authority_start])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_passwords_only() {
        let cases = [
            ("postgres://u:secret@h:5432/db", "postgres://u:***@h:5432/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h", "postgres://h"),
            ("postgresql://u:p%40ss@h/db?sslmode=require", "postgresql://u:***@h/db?sslmode=require"),
            ("postgres://u@h/db?password=secret&x=1", "postgres://u@h/db?password=***&x=1"),
            ("host=h password=secret", "(a URL that does not start with postgres://)"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn tls_is_left_off_on_this_machine_unless_asked_for() {
        let mode = |url: &str| connect_options(&Options::new(url)).unwrap().get_ssl_mode();
        if std::env::var_os("PGSSLMODE").is_none() {
            assert!(matches!(mode("postgres://u@127.0.0.1:5432/db"), PgSslMode::Disable));
            assert!(matches!(mode("postgres://u@localhost/db"), PgSslMode::Disable));
            assert!(matches!(mode("postgres://u@[::1]/db"), PgSslMode::Disable));
            assert!(matches!(mode("postgres://u@db.example.com/db"), PgSslMode::Prefer));
        }
        assert!(matches!(mode("postgres://u@127.0.0.1/db?sslmode=require"), PgSslMode::Require));
        assert!(matches!(mode("postgres://u@127.0.0.1/db?application_name=x&SSLMODE=prefer"), PgSslMode::Prefer));
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("stint").unwrap(), "\"stint\"");
        assert_eq!(quote_identifier("a\"b").unwrap(), "\"a\"\"b\"");
        assert!(quote_identifier("").is_err());
    }

    #[test]
    fn debug_does_not_show_the_password() {
        let shown = format!("{:?}", Options::new("postgres://u:secret@h/db"));
        assert!(!shown.contains("secret"), "{shown}");
    }
}
