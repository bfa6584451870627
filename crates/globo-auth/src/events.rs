//! Security events, named in the OWASP Logging Vocabulary, emitted as `tracing` events.
//!
//! Every event has the target [`TARGET`], a level (OWASP's for the event), and the fields
//! `event` (the vocabulary form, `authn_login_fail:alice`), `username` (as stored when the
//! user is known; a failed or refused login names it as given, so the event does not tell
//! whether the name exists), `source` (the caller's key: an address, or empty when the
//! caller gave none) and, for some, `attempts` or `version`. The message is OWASP's
//! description. No event ever carries a password, a hash or a pepper. Names and sources are
//! written escaped (`escape_debug`), so a name holding a line break cannot forge a log line.

/// The `tracing` target of every security event of this crate.
pub const TARGET: &str = "globo_auth::security";

/// One security event (OWASP Logging Vocabulary name in the comment).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event<'a> {
    /// `authn_login_success`: a password verified.
    LoginSuccess { username: &'a str, source: &'a str },
    /// `authn_login_successafterfail`: a password verified after `attempts` failures.
    LoginSuccessAfterFail { username: &'a str, source: &'a str, attempts: u32 },
    /// `authn_login_fail`: a wrong password or an unknown user (one event for both).
    LoginFail { username: &'a str, source: &'a str, attempts: u32 },
    /// `authn_login_lock`: the account (or the source) reached the lock limit.
    LoginLock { username: &'a str, source: &'a str, attempts: u32 },
    /// `excess_rate_limit_exceeded`: an attempt refused, before any hashing, while a delay or
    /// lock was in force.
    RateLimitExceeded { username: &'a str, source: &'a str },
    /// `authn_password_change`: a user changed their password, or an operator reset it.
    PasswordChange { username: &'a str, source: &'a str, by_operator: bool },
    /// `authn_password_change_fail`: a change refused (wrong current password or policy).
    PasswordChangeFail { username: &'a str, source: &'a str },
    /// `user_created`.
    UserCreated { username: &'a str, source: &'a str },
    /// `user_updated`: an operator unlocked the account, or its record was re-peppered.
    UserUpdated { username: &'a str, source: &'a str, what: &'static str },
    /// `user_deleted`.
    UserDeleted { username: &'a str, source: &'a str },
}

impl Event<'_> {
    /// Emits the event through `tracing`.
    pub(crate) fn emit(self) {
        use tracing::{info, warn};
        match self {
            Event::LoginSuccess { username, source } => info!(
                target: TARGET, event = %format_args!("authn_login_success:{}", username.escape_debug()),
                username = %username.escape_debug(), source = %source.escape_debug(), "user login successful"
            ),
            Event::LoginSuccessAfterFail { username, source, attempts } => info!(
                target: TARGET,
                event = %format_args!("authn_login_successafterfail:{},{}", username.escape_debug(), attempts),
                username = %username.escape_debug(), source = %source.escape_debug(), attempts, "user login successful after failed attempts"
            ),
            Event::LoginFail { username, source, attempts } => warn!(
                target: TARGET, event = %format_args!("authn_login_fail:{}", username.escape_debug()),
                username = %username.escape_debug(), source = %source.escape_debug(), attempts, "user login failed"
            ),
            Event::LoginLock { username, source, attempts } => warn!(
                target: TARGET, event = %format_args!("authn_login_lock:{},{}", username.escape_debug(), attempts),
                username = %username.escape_debug(), source = %source.escape_debug(), attempts, "user login locked after too many failed attempts"
            ),
            Event::RateLimitExceeded { username, source } => warn!(
                target: TARGET,
                event = %format_args!("excess_rate_limit_exceeded:{},{}", username.escape_debug(), source.escape_debug()),
                username = %username.escape_debug(), source = %source.escape_debug(), "login attempt refused: too many failed attempts"
            ),
            Event::PasswordChange { username, source, by_operator } => info!(
                target: TARGET, event = %format_args!("authn_password_change:{}", username.escape_debug()),
                username = %username.escape_debug(), source = %source.escape_debug(), by_operator, "user password changed"
            ),
            Event::PasswordChangeFail { username, source } => warn!(
                target: TARGET, event = %format_args!("authn_password_change_fail:{}", username.escape_debug()),
                username = %username.escape_debug(), source = %source.escape_debug(), "user password change failed"
            ),
            Event::UserCreated { username, source } => warn!(
                target: TARGET, event = %format_args!("user_created:{}", username.escape_debug()),
                username = %username.escape_debug(), source = %source.escape_debug(), "user created"
            ),
            Event::UserUpdated { username, source, what } => warn!(
                target: TARGET, event = %format_args!("user_updated:{}", username.escape_debug()),
                username = %username.escape_debug(), source = %source.escape_debug(), what, "user updated"
            ),
            Event::UserDeleted { username, source } => warn!(
                target: TARGET, event = %format_args!("user_deleted:{}", username.escape_debug()),
                username = %username.escape_debug(), source = %source.escape_debug(), "user deleted"
            ),
        }
    }
}
