//! A fresh PostgreSQL database per test, on the throwaway server `scripts/postgres` starts
//! (`scripts/test` starts it and sets `GLOBO_TEST_POSTGRES_URL`).

use std::fmt;
use std::str::FromStr as _;
use std::time::Duration;

/// The variable holding the test server's URL (with its password): `scripts/test` sets it.
pub const POSTGRES_URL_VARIABLE: &str = "GLOBO_TEST_POSTGRES_URL";

/// How long connecting to the test server may take before it counts as not answering.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A database of its own on the test server, created by [`postgres()`](crate::postgres()) and dropped (with
/// `DROP DATABASE ... WITH (FORCE)`, which ends its remaining sessions) when this is dropped.
/// Its `Debug` shows the location, never the password.
pub struct TestDatabase {
    name: String,
    /// The server's own URL (its `postgres` database), to drop this one from.
    admin: postgres::Config,
    config: postgres::Config,
    url: String,
    location: String,
}

impl TestDatabase {
    /// The database's name (`globo_t_` and 16 random hex digits).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A client configuration for this database (password included, connect timeout 10 s).
    pub fn config(&self) -> postgres::Config {
        self.config.clone()
    }

    /// The database's URL with the password, for a child process (an `app` under test): pass
    /// it through the child's environment or arguments, never print it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's URL without the password: what a store reports as its location.
    pub fn location(&self) -> &str {
        &self.location
    }
}

impl fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabase").field("location", &self.location).finish_non_exhaustive()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // The sync client runs a runtime of its own, which panics inside another one (a
        // `#[tokio::test]`): drop from a thread of its own.
        let admin = self.admin.clone();
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_identifier(&self.name));
        let outcome = std::thread::spawn(move || {
            let mut client = admin.connect(postgres::NoTls)?;
            client.batch_execute(&drop)
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            // The server going away first (the end of scripts/test) takes the database along.
            Ok(Err(error)) => eprintln!("globo-testkit: could not drop {}: {error}", self.location),
            Err(_) => eprintln!("globo-testkit: dropping {} panicked", self.location),
        }
    }
}

/// A fresh, empty database on the test server named by `GLOBO_TEST_POSTGRES_URL` (see
/// `scripts/postgres`), dropped with the returned value; or `None` after [`crate::missing`]
/// (a SKIPPED line locally, a panic with `CI=true`) when the variable is unset or the server
/// does not answer.
///
/// Each call makes a new database (`globo_t_<random hex>`), so tests running at once never
/// see each other's tables. Call it from synchronous code (the sync client cannot run inside
/// an async runtime); an async test can call it inside `spawn_blocking`.
pub fn postgres() -> Option<TestDatabase> {
    let fix = "start one with scripts/postgres start and export GLOBO_TEST_POSTGRES_URL \
               (scripts/test does both)";
    let Some(server_url) = std::env::var(POSTGRES_URL_VARIABLE).ok().filter(|u| !u.is_empty())
    else {
        crate::missing_because(
            &format!("the PostgreSQL test server ({POSTGRES_URL_VARIABLE})"),
            fix,
        );
        return None;
    };
    let server_location = without_password(&server_url);
    let mut admin = match postgres::Config::from_str(&server_url) {
        Ok(config) => config,
        Err(error) => {
            panic!("{POSTGRES_URL_VARIABLE} ({server_location}) is not a PostgreSQL URL: {error}")
        }
    };
    admin.connect_timeout(CONNECT_TIMEOUT);
    let name = format!("globo_t_{}", hex(&crate::random_bytes(8)));
    let create = format!("CREATE DATABASE {}", quote_identifier(&name));
    let created = {
        let admin = admin.clone();
        std::thread::spawn(move || {
            let mut client = admin.connect(postgres::NoTls)?;
            client.batch_execute(&create)
        })
        .join()
        .expect("creating the test database does not panic")
    };
    if let Err(error) = created {
        crate::missing_because(
            &format!("the PostgreSQL test server at {server_location} (it answered: {error})"),
            fix,
        );
        return None;
    }
    let mut config = admin.clone();
    config.dbname(&name);
    Some(TestDatabase {
        url: with_database(&server_url, &name),
        location: with_database(&server_location, &name),
        name,
        admin,
        config,
    })
}

/// `name` as a quoted SQL identifier (`"` doubled).
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `url` without the password of its user part (`postgres://user:pw@host/db` →
/// `postgres://user@host/db`).
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or(user_info, |(user, _)| user);
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// `url` with its database (the path) replaced by `database`, its query kept.
fn with_database(url: &str, database: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |at| &tail[at..]);
    format!("{scheme}://{authority}/{database}{query}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_loses_only_its_password() {
        assert_eq!(
            without_password("postgres://globo:s3cret@127.0.0.1:5432/postgres?x=1"),
            "postgres://globo@127.0.0.1:5432/postgres?x=1"
        );
        assert_eq!(without_password("postgresql://u@h/d"), "postgresql://u@h/d");
        assert_eq!(without_password("postgres://h:5432"), "postgres://h:5432");
        assert_eq!(
            with_database("postgres://u:p@h:1/postgres?x=1", "t"),
            "postgres://u:p@h:1/t?x=1"
        );
        assert_eq!(with_database("postgres://u@h", "t"), "postgres://u@h/t");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    }

    /// Two calls give two separate databases; each is gone once dropped.
    #[test]
    fn each_call_gets_a_fresh_database_dropped_after() {
        let Some(first) = postgres() else { return };
        let Some(second) = postgres() else { return };
        assert_ne!(first.name(), second.name());
        let url = std::env::var(POSTGRES_URL_VARIABLE).expect("set, since postgres() answered");
        let password = postgres::Config::from_str(&url)
            .ok()
            .and_then(|c| c.get_password().map(|p| String::from_utf8_lossy(p).into_owned()))
            .expect("the test server's URL has a password");
        for db in [&first, &second] {
            assert!(!db.location().contains(&password), "location shows the password");
            assert!(!format!("{db:?}").contains(&password), "Debug shows the password");
            assert!(db.url().contains(&password), "url() keeps the password for children");
        }
        let mut client = first.config().connect(postgres::NoTls).expect("connect to the first");
        client.batch_execute("CREATE TABLE t (x INT)").expect("create a table");
        let mut other = second.config().connect(postgres::NoTls).expect("connect to the second");
        let seen: i64 = other
            .query_one("SELECT count(*) FROM pg_tables WHERE tablename = 't'", &[])
            .expect("query")
            .get(0);
        assert_eq!(seen, 0, "the second database sees the first's table");
        let name = first.name().to_owned();
        // An open session does not keep the database alive (WITH (FORCE)).
        drop(first);
        drop(client);
        let exists: i64 = other
            .query_one("SELECT count(*) FROM pg_database WHERE datname = $1", &[&name])
            .expect("query")
            .get(0);
        assert_eq!(exists, 0, "the dropped database is still there");
    }
}
