//! Choosing a store from one string (a command-line option, a setting): a path, `sqlite://PATH`
//! or a PostgreSQL URL.

use std::fmt;
use std::path::PathBuf;

use secrecy::SecretString;

use crate::{AuthError, UserStore};

/// Which store to open, parsed from one string by [`StoreSpec::parse`]:
///
/// | text | store |
/// | --- | --- |
/// | a path (`users.json`, `/srv/users.json`) | [`Json`](StoreSpec::Json): the lab's users file |
/// | `sqlite:///abs/path.db`, `sqlite://relative.db` | [`Sqlite`](StoreSpec::Sqlite) (feature `sqlite`) |
/// | `postgres://user:pw@host:port/db`, `postgresql://...` | `Postgres` (feature `postgres`) |
///
/// A PostgreSQL URL follows libpq's connection URIs. Instead of holding the password, it may
/// name a secret that holds it: `postgres://globo@db/users?password_secret=NAME` (the
/// parameter is removed before the URL is parsed; a URL with both a password and
/// `password_secret` is refused). The caller reads that secret (say, through globo-secrets)
/// and passes it to [`open`](StoreSpec::open).
///
/// [`Display`](fmt::Display) and [`Debug`] show the store's location, never a password:
/// the path, `sqlite://PATH`, or the URL without its password.
///
/// ```
/// use globo_auth::StoreSpec;
///
/// # fn main() -> Result<(), globo_auth::AuthError> {
/// assert_eq!(StoreSpec::parse("users.json")?, StoreSpec::Json("users.json".into()));
/// assert_eq!(StoreSpec::parse("sqlite:///srv/users.db")?, StoreSpec::Sqlite("/srv/users.db".into()));
/// assert!(StoreSpec::parse("mysql://db/users").is_err());
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum StoreSpec {
    /// The JSON users file at this path.
    Json(PathBuf),
    /// The SQLite database at this path.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres {
        /// The connection settings (with the URL's password, if it had one); boxed, it is
        /// large.
        config: Box<postgres::Config>,
        /// The URL without its password or `password_secret`, for messages.
        location: String,
        /// The secret that holds the password (`password_secret=NAME`), when named.
        password_secret: Option<String>,
    },
}

impl PartialEq for StoreSpec {
    /// Equal when they are the same kind of store at the same location (a PostgreSQL
    /// password is not compared).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Json(a), Self::Json(b)) | (Self::Sqlite(a), Self::Sqlite(b)) => a == b,
            #[cfg(feature = "postgres")]
            (
                Self::Postgres { location: a, password_secret: x, .. },
                Self::Postgres { location: b, password_secret: y, .. },
            ) => a == b && x == y,
            _ => false,
        }
    }
}

impl StoreSpec {
    /// Parses `text` (see [`StoreSpec`]). Refused with [`AuthError::InvalidStoreSpec`]:
    /// empty text, a `scheme://` other than `sqlite`, `postgres` and `postgresql`,
    /// `sqlite://` without a path, a PostgreSQL URL that does not parse or holds both a
    /// password and `password_secret`, or one this build has no backend for.
    pub fn parse(text: &str) -> Result<Self, AuthError> {
        if text.is_empty() {
            return Err(invalid(
                "(empty)",
                "the store is empty: give a path, sqlite://PATH or a postgres:// URL",
            ));
        }
        let is_postgres = split_scheme(text).is_some_and(|(scheme, _)| {
            matches!(scheme.to_ascii_lowercase().as_str(), "postgres" | "postgresql")
        });
        if !is_postgres && looks_like_keyword_dsn(text) {
            // Not quoted: it may hold a password.
            return Err(invalid(
                "(a keyword=value connection string, not shown)",
                "keyword=value connection strings are not supported: use a \
                 postgres://USER@HOST:PORT/DB URL (with ?password_secret=NAME to keep the \
                 password out of it)",
            ));
        }
        let Some((scheme, rest)) = split_scheme(text) else {
            let lower = text.to_ascii_lowercase();
            if ["postgres:", "postgresql:", "sqlite:"].iter().any(|p| lower.starts_with(p)) {
                // A URL missing a slash (`postgres:/user:pw@db`), never a file name: not
                // quoted, it may hold a password (review R2).
                return Err(invalid(
                    "(not shown)",
                    "this looks like a store URL without its '//': write postgres://USER@HOST:PORT/DB \
                     or sqlite://PATH (a path to a users file cannot start with a URL scheme)",
                ));
            }
            if text.contains("://") {
                return Err(invalid(
                    "(not shown)",
                    "a path cannot contain '://' and this is no known URL: use a path \
                     (a JSON users file), sqlite://PATH or postgres://...",
                ));
            }
            return Ok(Self::Json(PathBuf::from(text)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {
                if rest.is_empty() {
                    return Err(invalid(
                        text,
                        "sqlite:// needs a path (sqlite:///abs/users.db or sqlite://users.db)",
                    ));
                }
                Ok(Self::Sqlite(PathBuf::from(rest)))
            }
            "postgres" | "postgresql" => postgres_spec(scheme, rest),
            _ => Err(AuthError::InvalidStoreSpec {
                store: format!("{}://...", scheme.escape_debug()),
                reason: format!(
                    "unknown scheme '{}': use a path (a JSON users file), sqlite://PATH or postgres://...",
                    scheme.escape_debug()
                ),
            }),
        }
    }

    /// The store for messages: the path, `sqlite://PATH`, or the URL without its password.
    pub fn location(&self) -> String {
        match self {
            Self::Json(path) => path.display().to_string(),
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            #[cfg(feature = "postgres")]
            Self::Postgres { location, .. } => location.clone(),
        }
    }

    /// The secret that holds the PostgreSQL password, when the URL names one.
    pub fn password_secret(&self) -> Option<&str> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres { password_secret, .. } => password_secret.as_deref(),
            _ => None,
        }
    }

    /// Opens the store: [`UserStore::new`], `UserStore::sqlite` or `UserStore::postgres`
    /// (creating and migrating a database's schema; connecting to PostgreSQL). `password`
    /// is the value of the [`password_secret`](Self::password_secret), which must be given
    /// exactly when the URL names one ([`AuthError::InvalidStoreSpec`] otherwise). A
    /// `sqlite://` store in a build without the feature `sqlite` is refused the same way.
    pub fn open(self, password: Option<SecretString>) -> Result<UserStore, AuthError> {
        self.open_with(password, false)
    }

    /// As [`open`](Self::open), for a store to read from (the source of a copy): a JSON
    /// users file or SQLite database that does not exist is refused with
    /// [`AuthError::StoreNotFound`] instead of being taken as empty, and nothing is created.
    /// (A PostgreSQL database must exist to be connected to.)
    pub fn open_existing(self, password: Option<SecretString>) -> Result<UserStore, AuthError> {
        self.open_with(password, true)
    }

    fn open_with(
        self,
        password: Option<SecretString>,
        existing: bool,
    ) -> Result<UserStore, AuthError> {
        let location = self.location();
        if password.is_some() && self.password_secret().is_none() {
            return Err(invalid(
                &location,
                "a password was given but the store names no password_secret",
            ));
        }
        match self {
            Self::Json(path) => {
                if existing
                    && std::fs::symlink_metadata(&path)
                        .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
                {
                    return Err(AuthError::StoreNotFound { store: location });
                }
                Ok(UserStore::new(path))
            }
            #[cfg(feature = "sqlite")]
            Self::Sqlite(path) if existing => UserStore::sqlite_existing(path),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(path) => UserStore::sqlite(path),
            #[cfg(not(feature = "sqlite"))]
            Self::Sqlite(_) => {
                Err(invalid(&location, "this build has no SQLite support (feature `sqlite`)"))
            }
            #[cfg(feature = "postgres")]
            Self::Postgres { mut config, location, password_secret } => {
                if let Some(name) = password_secret {
                    let Some(password) = password else {
                        return Err(AuthError::InvalidStoreSpec {
                            store: location,
                            reason: format!(
                                "the URL names the password secret '{}' but its value was not supplied",
                                name.escape_debug()
                            ),
                        });
                    };
                    use secrecy::ExposeSecret as _;
                    config.password(password.expose_secret().as_bytes());
                }
                if existing {
                    UserStore::postgres_existing(*config, location)
                } else {
                    UserStore::postgres(*config, location)
                }
            }
        }
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.location())
    }
}

impl fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Self::Json(_) => "Json",
            Self::Sqlite(_) => "Sqlite",
            #[cfg(feature = "postgres")]
            Self::Postgres { .. } => "Postgres",
        };
        let mut debug = f.debug_struct("StoreSpec");
        debug.field("kind", &kind).field("location", &self.location());
        if let Some(name) = self.password_secret() {
            debug.field("password_secret", &name);
        }
        debug.finish()
    }
}

fn invalid(store: &str, reason: &str) -> AuthError {
    AuthError::InvalidStoreSpec { store: store.to_owned(), reason: reason.to_owned() }
}

/// Whether `text` looks like a libpq keyword/value connection string (`host=db user=globo
/// password=...`): `password` followed by `=` in any case, or whitespace-separated text with
/// a `keyword=` (spaces around `=` allowed, as libpq does). Taken as a path, it would name a
/// file after the password.
fn looks_like_keyword_dsn(text: &str) -> bool {
    let bytes = text.as_bytes();
    let keyword_before = |equals: usize| {
        let before = text[..equals].trim_end();
        let start =
            before.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |at| at + 1);
        let keyword = &before[start..];
        let separated = start == 0 || before[..start].ends_with(char::is_whitespace);
        (!keyword.is_empty() && separated).then_some(keyword)
    };
    let mut keywords = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'=')
        .filter_map(|(at, _)| keyword_before(at));
    let whitespace = text.contains(char::is_whitespace);
    text.to_ascii_lowercase()
        .split('=')
        .rev()
        .skip(1)
        .any(|before| before.trim_end().ends_with("password"))
        || (whitespace && keywords.next().is_some())
}

/// `(scheme, rest)` for `scheme://rest`, where the scheme is RFC 3986's `ALPHA *( ALPHA /
/// DIGIT / "+" / "-" / "." )`; `None` for anything else (a path).
fn split_scheme(text: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// The URL's percent-decoded bytes (`%XX`; anything else as is).
#[cfg(feature = "postgres")]
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// A PostgreSQL URL. The credentials are read as libpq and tokio-postgres read them: up to the
/// FIRST `@`; text where that reading could differ from a human's (a second `@`, a `/` or `?`
/// before the `@`) is refused without being quoted. The password (userinfo or `password=`)
/// and `password_secret=` are taken out, the rest is parsed, and the location is built from
/// the parsed settings, then checked: it must parse back to the same settings, without a
/// password.
#[cfg(feature = "postgres")]
fn postgres_spec(scheme: &str, rest: &str) -> Result<StoreSpec, AuthError> {
    use std::str::FromStr as _;
    use zeroize::Zeroizing;

    // The URL parser knows the schemes in lower case only.
    let scheme = scheme.to_ascii_lowercase();
    let scheme = scheme.as_str();
    let unshown = || format!("{scheme}://(not shown)");
    let (credentials, tail) = match rest.split_once('@') {
        Some((credentials, tail)) => (Some(credentials), tail),
        None => (None, rest),
    };
    if tail.contains('@') || credentials.is_some_and(|c| c.contains(['/', '?', '#'])) {
        return Err(invalid(
            &unshown(),
            "the URL is ambiguous (a second '@', or a '/' or '?' before the '@'): \
             percent-encode '@', '/', '?', ':' in the user name and password (%40, %2F, %3F, %3A) \
             so that one '@' separates them from the host",
        ));
    }
    let mut password: Option<Zeroizing<Vec<u8>>> = None;
    let user = credentials.map(|credentials| match credentials.split_once(':') {
        Some((user, secret)) => {
            password = Some(Zeroizing::new(percent_decode(secret)));
            user
        }
        None => credentials,
    });
    let (before_query, query) = match tail.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (tail, None),
    };
    let mut password_secret = None;
    let mut kept = Vec::new();
    for parameter in query.into_iter().flat_map(|q| q.split('&')) {
        let (key, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        let key = String::from_utf8_lossy(&percent_decode(key)).to_ascii_lowercase();
        if key == "password_secret" {
            password_secret = Some(String::from_utf8_lossy(&percent_decode(value)).into_owned());
        } else if key == "password" {
            password = Some(Zeroizing::new(percent_decode(value)));
        } else if key.contains("password") {
            // Kept, its value would be in the location and every message.
            return Err(AuthError::InvalidStoreSpec {
                store: unshown(),
                reason: format!(
                    "the URL parameter '{}' is not supported (only password and password_secret)",
                    key.escape_debug()
                ),
            });
        } else {
            kept.push(parameter);
        }
    }
    let mut stripped = format!("{scheme}://");
    if let Some(user) = user {
        stripped.push_str(user);
        stripped.push('@');
    }
    stripped.push_str(before_query);
    if !kept.is_empty() {
        stripped.push('?');
        stripped.push_str(&kept.join("&"));
    }
    // By construction `stripped` holds no password; quoted only when the password's text is
    // not in it either (belt and braces: a message is forever).
    let shown = match password.as_deref() {
        Some(secret) if !secret.is_empty() && contains_bytes(stripped.as_bytes(), secret) => {
            unshown()
        }
        _ => stripped.clone(),
    };
    if password.is_some() && password_secret.is_some() {
        return Err(invalid(
            &shown,
            "the URL holds both a password and password_secret: keep one (password_secret keeps the password out of the URL)",
        ));
    }
    if password_secret.as_deref() == Some("") {
        return Err(invalid(&shown, "password_secret names no secret"));
    }
    let mut config = postgres::Config::from_str(&stripped).map_err(|_| {
        // Without an `@` (`postgres://user:pw/db`) the password stands where a host or port
        // would, in the text: then neither the text nor the parser's words are shown
        // (review R2); with one, the text shown holds no password.
        let store = if credentials.is_some() { shown.clone() } else { unshown() };
        invalid(
            &store,
            "not a PostgreSQL URL globo can use: write postgres://USER@HOST:PORT/DB, with \
             special characters in the user name or password percent-encoded",
        )
    })?;
    let location = location_of(scheme, &config);
    let faithful = config.get_password().is_none()
        && postgres::Config::from_str(&location).is_ok_and(|again| {
            again.get_password().is_none() && location_of(scheme, &again) == location
        });
    if !faithful {
        return Err(invalid(
            &unshown(),
            "globo cannot show this URL without its password: write it as \
             postgres://USER@HOST:PORT/DB with the password percent-encoded, or use password_secret",
        ));
    }
    if let Some(password) = password {
        config.password(password.as_slice());
    }
    Ok(StoreSpec::Postgres { config: Box::new(config), location, password_secret })
}

#[cfg(feature = "postgres")]
fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// `text` with everything but RFC 3986's unreserved characters percent-encoded.
#[cfg(feature = "postgres")]
fn percent_encode(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The URL of `config`'s settings, without its password: what messages show.
#[cfg(feature = "postgres")]
fn location_of(scheme: &str, config: &postgres::Config) -> String {
    use postgres::config::{
        ChannelBinding, Host, LoadBalanceHosts, SslMode, SslNegotiation, TargetSessionAttrs,
    };

    let mut url = format!("{scheme}://");
    if let Some(user) = config.get_user() {
        url.push_str(&percent_encode(user));
        url.push('@');
    }
    let host_text = |host: &Host| match host {
        Host::Tcp(name) if name.parse::<std::net::Ipv6Addr>().is_ok() => format!("[{name}]"),
        Host::Tcp(name) => percent_encode(name),
        Host::Unix(path) => percent_encode(&path.to_string_lossy()),
    };
    let (hosts, ports) = (config.get_hosts(), config.get_ports());
    let mut parameters: Vec<String> = Vec::new();
    if hosts.len() == ports.len() {
        let authority: Vec<String> = hosts
            .iter()
            .zip(ports)
            .map(|(host, port)| format!("{}:{port}", host_text(host)))
            .collect();
        url.push_str(&authority.join(","));
    } else {
        parameters.extend(hosts.iter().map(|host| {
            let name = match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.to_string_lossy().into_owned(),
            };
            format!("host={}", percent_encode(&name))
        }));
        if !ports.is_empty() {
            let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
            parameters.push(format!("port={}", ports.join(",")));
        }
    }
    if let Some(dbname) = config.get_dbname() {
        url.push('/');
        url.push_str(&percent_encode(dbname));
    }
    let addresses: Vec<String> = config.get_hostaddrs().iter().map(ToString::to_string).collect();
    if !addresses.is_empty() {
        parameters.push(format!("hostaddr={}", addresses.join(",")));
    }
    for (key, value) in
        [("options", config.get_options()), ("application_name", config.get_application_name())]
    {
        if let Some(value) = value {
            parameters.push(format!("{key}={}", percent_encode(value)));
        }
    }
    match config.get_ssl_mode() {
        SslMode::Disable => parameters.push("sslmode=disable".into()),
        SslMode::Require => parameters.push("sslmode=require".into()),
        _ => {}
    }
    if config.get_ssl_negotiation() == SslNegotiation::Direct {
        parameters.push("sslnegotiation=direct".into());
    }
    for (key, value) in [
        ("connect_timeout", config.get_connect_timeout().copied()),
        ("tcp_user_timeout", config.get_tcp_user_timeout().copied()),
        ("keepalives_interval", config.get_keepalives_interval()),
    ] {
        if let Some(value) = value {
            parameters.push(format!("{key}={}", value.as_secs()));
        }
    }
    if !config.get_keepalives() {
        parameters.push("keepalives=0".into());
    }
    if config.get_keepalives_idle() != postgres::Config::new().get_keepalives_idle() {
        parameters.push(format!("keepalives_idle={}", config.get_keepalives_idle().as_secs()));
    }
    if let Some(retries) = config.get_keepalives_retries() {
        parameters.push(format!("keepalives_retries={retries}"));
    }
    match config.get_target_session_attrs() {
        TargetSessionAttrs::ReadWrite => parameters.push("target_session_attrs=read-write".into()),
        TargetSessionAttrs::ReadOnly => parameters.push("target_session_attrs=read-only".into()),
        _ => {}
    }
    match config.get_channel_binding() {
        ChannelBinding::Disable => parameters.push("channel_binding=disable".into()),
        ChannelBinding::Require => parameters.push("channel_binding=require".into()),
        _ => {}
    }
    if config.get_load_balance_hosts() == LoadBalanceHosts::Random {
        parameters.push("load_balance_hosts=random".into());
    }
    if !parameters.is_empty() {
        url.push('?');
        url.push_str(&parameters.join("&"));
    }
    url
}

#[cfg(not(feature = "postgres"))]
fn postgres_spec(scheme: &str, rest: &str) -> Result<StoreSpec, AuthError> {
    let _ = rest;
    Err(invalid(
        &format!("{scheme}://..."),
        "this build has no PostgreSQL support (feature `postgres`)",
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn reason(text: &str) -> String {
        match StoreSpec::parse(text) {
            Err(AuthError::InvalidStoreSpec { reason, .. }) => reason,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn a_plain_path_is_a_json_users_file() {
        for path in
            ["users.json", "/srv/globo/users.json", "./a b/users.json", "C:users.json", "mysql:db"]
        {
            assert_eq!(StoreSpec::parse(path).unwrap(), StoreSpec::Json(path.into()), "{path}");
        }
        let spec = StoreSpec::parse("users.json").unwrap();
        assert_eq!(spec.to_string(), "users.json");
        assert_eq!(spec.password_secret(), None);
    }

    #[test]
    fn sqlite_urls_name_an_absolute_or_relative_path() {
        assert_eq!(
            StoreSpec::parse("sqlite:///srv/users.db").unwrap(),
            StoreSpec::Sqlite("/srv/users.db".into())
        );
        assert_eq!(
            StoreSpec::parse("sqlite://users.db").unwrap(),
            StoreSpec::Sqlite("users.db".into())
        );
        assert_eq!(
            StoreSpec::parse("SQLite://data/users.db").unwrap(),
            StoreSpec::Sqlite("data/users.db".into())
        );
        assert_eq!(
            StoreSpec::parse("sqlite:///srv/users.db").unwrap().to_string(),
            "sqlite:///srv/users.db"
        );
        assert!(reason("sqlite://").contains("needs a path"));
    }

    #[test]
    fn empty_text_and_unknown_schemes_are_refused() {
        assert!(reason("").contains("empty"));
        for text in ["mysql://u:hunter2@db/users", "file:///srv/users.json", "redis://x"] {
            let error = StoreSpec::parse(text).unwrap_err();
            let message = error.to_string();
            assert!(message.contains("unknown scheme"), "{message}");
            assert!(message.contains("sqlite://PATH"), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
            assert!(error.is_operational());
        }
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_urls_keep_their_password_out_of_every_message() {
        let spec =
            StoreSpec::parse("postgres://globo:hunter2@127.0.0.1:5433/users?connect_timeout=5")
                .unwrap();
        let StoreSpec::Postgres { config, location, password_secret } = &spec else { panic!() };
        assert_eq!(location, "postgres://globo@127.0.0.1:5433/users?connect_timeout=5");
        assert_eq!(config.get_password(), Some(&b"hunter2"[..]));
        assert_eq!(config.get_user(), Some("globo"));
        assert_eq!(config.get_dbname(), Some("users"));
        assert_eq!(config.get_ports(), [5433]);
        assert_eq!(*password_secret, None);
        assert_eq!(spec.to_string(), "postgres://globo@127.0.0.1:5433/users?connect_timeout=5");
        for shown in [spec.to_string(), format!("{spec:?}"), format!("{spec:#?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        // Percent-encoded, and as a query parameter.
        let spec = StoreSpec::parse("postgresql://globo:hun%40ter2@db/users").unwrap();
        let StoreSpec::Postgres { config, location, .. } = &spec else { panic!() };
        assert_eq!(config.get_password(), Some(&b"hun@ter2"[..]));
        assert_eq!(location, "postgresql://globo@db:5432/users");
        let spec =
            StoreSpec::parse("postgres://globo@db/users?password=hunter2&sslmode=disable").unwrap();
        let StoreSpec::Postgres { config, location, .. } = &spec else { panic!() };
        assert_eq!(config.get_password(), Some(&b"hunter2"[..]));
        assert_eq!(location, "postgres://globo@db:5432/users?sslmode=disable");
        assert!(!format!("{spec:?}").contains("hunter2"));
        // Any case, percent-encoded key; other parameters named like a password are refused.
        let spec = StoreSpec::parse("postgres://globo@db/users?PassWord=hunter2").unwrap();
        assert_eq!(spec.to_string(), "postgres://globo@db:5432/users");
        let spec = StoreSpec::parse("postgres://globo@db/users?pass%77ord=hunter2").unwrap();
        assert_eq!(spec.to_string(), "postgres://globo@db:5432/users");
        let error = StoreSpec::parse("postgres://globo@db/users?sslpassword=hunter2").unwrap_err();
        assert!(error.to_string().contains("'sslpassword' is not supported"), "{error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        // A URL the parser refuses: the message quotes no password.
        let error = StoreSpec::parse("postgres://globo:hunter2@db:notaport/users").unwrap_err();
        assert!(matches!(error, AuthError::InvalidStoreSpec { .. }), "{error:?}");
        let report = crate::Report::new(&error).to_string();
        assert!(!report.contains("hunter2"), "{report}");
        assert!(report.contains("postgres://globo@db:notaport/users"), "{report}");
    }

    /// Hostile PostgreSQL URLs: whatever the parser makes of them, no part of the password
    /// is in the location, `Display`, `Debug`, the parse error, or the error of a failed
    /// connection (to a closed port on 127.0.0.1).
    #[cfg(feature = "postgres")]
    #[test]
    fn no_password_shows_whatever_the_url_holds() {
        let cases: &[(&str, &[&str])] = &[
            ("postgres://probe:se/cr?et@127.0.0.1:1/postgres", &["se/cr", "cr?et", "se%2F"]),
            ("postgres://u:p@ss/word@127.0.0.1:1/db", &["ss/word", "ss%2Fword"]),
            ("postgres://u:S3KRIT%40x@127.0.0.1:1/db", &["S3KRIT"]),
            ("postgres://u:S3KRIT@x@127.0.0.1:1/db", &["S3KRIT"]),
            ("postgres://u:S3KRIT@@127.0.0.1:1/db", &["S3KRIT"]),
            ("postgres://u%40a:S3KRIT@127.0.0.1:1/db", &["S3KRIT"]),
            ("postgres://u:S3K%52IT@127.0.0.1:1/db", &["S3KRIT", "S3K%52IT"]),
            ("postgres://:S3KRIT@127.0.0.1:1/db", &["S3KRIT"]),
            ("postgres://u:S3KRIT@[::1]:1/db", &["S3KRIT"]),
            ("postgres://u:S3KRIT@[::1/db", &["S3KRIT"]),
            ("postgres://u:S3KRIT@127.0.0.1:notaport/db", &["S3KRIT"]),
            ("postgres://u:S3KRIT#x@127.0.0.1:1/db", &["S3KRIT"]),
            ("POSTGRES://u:S3KRIT@127.0.0.1:1/db", &["S3KRIT"]),
            ("postgresql://u:S3KRIT@127.0.0.1:1,127.0.0.1:2/db?connect_timeout=3", &["S3KRIT"]),
            ("postgres://u:S3KRIT@/db?host=%2Fnonexistent%2Fsock&port=1", &["S3KRIT"]),
            ("postgres://u:S3KRIT@127.0.0.1:1/db?host=127.0.0.1&port=1", &["S3KRIT"]),
            ("postgres://u@127.0.0.1:1/db?PASSWORD=S3KRIT", &["S3KRIT"]),
            ("postgres://u@127.0.0.1:1/db?application_name=a&PassWord=S3KRIT", &["S3KRIT"]),
            ("postgres://u@127.0.0.1:1/db?pass%77ord=S3KRIT", &["S3KRIT"]),
            ("postgres://127.0.0.1:1/db?password=S3KRIT", &["S3KRIT"]),
            ("postgres://u@127.0.0.1:1/db?application_name=x&password=S3KRIT@y", &["S3KRIT"]),
            ("postgres://127.0.0.1:1/db?password=S3:KRIT@h", &["S3:KRIT", "KRIT"]),
            ("postgres://u:S3KRIT@127.0.0.1:1/db?sslpassword=S3KRIT", &["S3KRIT"]),
            // Review R2: no `@` (the password where a host or port would be), and a missing
            // slash (once taken as a JSON path named after the password).
            ("postgres://globo:S3KRIT/users", &["S3KRIT"]),
            ("postgres://globo:S3KRIT", &["S3KRIT"]),
            ("postgres:/globo:S3KRIT@db/users", &["S3KRIT"]),
            ("postgresql:globo:S3KRIT@db/users", &["S3KRIT"]),
            ("Postgres:/globo:S3KRIT@db/users", &["S3KRIT"]),
        ];
        for (url, secrets) in cases {
            let mut shown = Vec::new();
            match StoreSpec::parse(url) {
                Ok(spec) => {
                    shown.extend([spec.location(), spec.to_string(), format!("{spec:?}")]);
                    match spec.open(None) {
                        Ok(_) => panic!("{url}: connected to a closed port"),
                        Err(error) => {
                            shown.push(crate::Report::new(&error).to_string());
                            shown.push(format!("{error:?}"));
                        }
                    }
                }
                Err(error) => {
                    shown.push(crate::Report::new(&error).to_string());
                    shown.push(format!("{error:?}"));
                }
            }
            for text in &shown {
                for secret in *secrets {
                    assert!(!text.contains(secret), "{url} shows {secret:?}: {text}");
                }
            }
        }
    }

    /// The credentials end at the first '@', as libpq and tokio-postgres read them; text
    /// where a human could read them otherwise is refused; the location is the parsed
    /// settings.
    #[cfg(feature = "postgres")]
    #[test]
    fn the_location_is_built_from_the_parsed_settings() {
        for ambiguous in [
            "postgres://probe:se/cr?et@127.0.0.1:1/postgres",
            "postgres://u:p@ss/word@h/db",
            "postgres://db/users?application_name=a@b",
        ] {
            let message = StoreSpec::parse(ambiguous).unwrap_err().to_string();
            assert!(message.contains("ambiguous") && message.contains("%40"), "{message}");
        }
        let spec = StoreSpec::parse("postgres://u%40a:p%40ss@[::1]:6543/my%2Fdb").unwrap();
        let StoreSpec::Postgres { config, location, .. } = &spec else { panic!() };
        assert_eq!(config.get_user(), Some("u@a"));
        assert_eq!(config.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(config.get_dbname(), Some("my/db"));
        assert_eq!(location, "postgres://u%40a@[::1]:6543/my%2Fdb");
        let spec = StoreSpec::parse(
            "POSTGRESQL://g@a:1,b/d?host=%2Frun%2Fpg&sslmode=disable&application_name=x%20y",
        )
        .unwrap();
        assert_eq!(
            spec.location(),
            "postgresql://g@/d?host=a&host=b&host=%2Frun%2Fpg&port=1,5432\
             &application_name=x%20y&sslmode=disable"
        );
    }

    #[test]
    fn keyword_value_connection_strings_are_refused_unquoted() {
        for text in [
            "host=db user=globo password=hunter2 dbname=users",
            "password=hunter2",
            "PassWord = hunter2",
            "host = db port=5432 user=globo",
            "sqlite://x.db password=hunter2",
            "dbname=users\tuser=globo",
        ] {
            let error = StoreSpec::parse(text).unwrap_err();
            let message = crate::Report::new(&error).to_string();
            assert!(message.contains("keyword=value"), "{text}: {message}");
            assert!(message.contains("postgres://"), "{text}: {message}");
            assert!(!message.contains("hunter2") && !message.contains("globo"), "{message}");
            assert!(!message.contains("db"), "{text}: {message}");
        }
        for text in ["./a b://c", "C:/dir://users.json"] {
            let message = StoreSpec::parse(text).unwrap_err().to_string();
            assert!(message.contains("cannot contain '://'"), "{message}");
        }
        for path in ["my users.json", "a=b.json", "users-2024.json"] {
            assert_eq!(StoreSpec::parse(path).unwrap(), StoreSpec::Json(path.into()), "{path}");
        }
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn a_url_may_name_the_secret_holding_its_password() {
        let spec = StoreSpec::parse(
            "postgres://globo@db:5432/users?password_secret=GLOBO_DB_PASSWORD&application_name=x",
        )
        .unwrap();
        let StoreSpec::Postgres { config, location, password_secret } = &spec else { panic!() };
        assert_eq!(password_secret.as_deref(), Some("GLOBO_DB_PASSWORD"));
        assert_eq!(spec.password_secret(), Some("GLOBO_DB_PASSWORD"));
        assert_eq!(config.get_password(), None);
        assert_eq!(location, "postgres://globo@db:5432/users?application_name=x");
        assert!(format!("{spec:?}").contains("GLOBO_DB_PASSWORD"));

        for both in [
            "postgres://globo:hunter2@db/users?password_secret=DB",
            "postgres://globo@db/users?password=hunter2&password_secret=DB",
        ] {
            let error = StoreSpec::parse(both).unwrap_err();
            let message = error.to_string();
            assert!(message.contains("both a password and password_secret"), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
        assert!(reason("postgres://globo@db/users?password_secret=").contains("names no secret"));
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn open_wants_the_named_secret_and_nothing_else() {
        let spec =
            StoreSpec::parse("postgres://globo@127.0.0.1:1/users?password_secret=DB").unwrap();
        let error = spec.open(None).unwrap_err();
        assert!(error.to_string().contains("'DB' but its value was not supplied"), "{error}");
        let error = StoreSpec::parse("users.json")
            .unwrap()
            .open(Some(SecretString::from("hunter2")))
            .unwrap_err();
        assert!(error.to_string().contains("names no password_secret"), "{error}");
        assert!(!error.to_string().contains("hunter2"));
    }

    /// Issue 14 review: `app users copy --from typo.json` copied nothing and succeeded, and
    /// `--from sqlite://nope.db` created nope.db.
    #[test]
    fn a_store_to_read_from_must_exist_and_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("typo.json");
        let error = StoreSpec::Json(json.clone()).open_existing(None).unwrap_err();
        assert!(
            matches!(&error, AuthError::StoreNotFound { store } if *store == json.display().to_string()),
            "{error:?}"
        );
        assert_eq!(error.to_string(), format!("users store '{}' does not exist", json.display()));
        assert!(error.is_operational());
        assert!(!json.exists());
        std::fs::write(&json, "{}").unwrap();
        assert!(StoreSpec::Json(json).open_existing(None).unwrap().usernames().unwrap().is_empty());

        #[cfg(feature = "sqlite")]
        {
            let db = dir.path().join("nope.db");
            let error = StoreSpec::Sqlite(db.clone()).open_existing(None).unwrap_err();
            assert!(
                matches!(&error, AuthError::StoreNotFound { store } if *store == format!("sqlite://{}", db.display())),
                "{error:?}"
            );
            assert!(!db.exists(), "opening a store to read from created it");
            StoreSpec::Sqlite(db.clone()).open(None).unwrap();
            assert!(db.exists());
            StoreSpec::Sqlite(db).open_existing(None).unwrap();
        }
    }

    #[test]
    fn open_makes_the_json_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let store = StoreSpec::parse(path.to_str().unwrap()).unwrap().open(None).unwrap();
        assert_eq!(store.path(), path);
    }
}
