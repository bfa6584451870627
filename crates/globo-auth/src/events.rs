//! Security events, named in the OWASP Logging Vocabulary, emitted as `tracing` events.
//!
//! Every event has the target [`TARGET`], a level (OWASP's for the event), and the fields
//! `event` (the vocabulary form, `authn_login_fail:alice`), `username` (as stored when the
//! user is known; a failed or refused login, or failed change, of a name no stored user has
//! names it `unknown:<12 hex digits>`, never as typed, and an attempt refused by throttling
//! names its account `account:<12 hex digits>`, known or not: see [`Subject`]), `source` (the
//! caller's key: an address, or empty when the caller gave none) and, for some, `attempts` or
//! `version`. The message is OWASP's
//! description. No event ever carries a password, a hash or a pepper.
//!
//! Names and sources come from outside (a lab file, a login form), and a text log writes
//! field values unquoted (`username=alice source=...`): a name `x source=198.51.100.1`
//! would forge a field, a line break a whole line. So both are written through one
//! escape, [`Escaped`], in the `event` string and in their own fields alike: every
//! character but `A-Z a-z 0-9 . _ @ -` and non-ASCII letters becomes `\u{XX}` (its code
//! point in hex; a space is `\u{20}`, a backslash `\u{5c}`), so what is left can neither
//! end a field nor start one, in a text or a JSON log.

use std::fmt;

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
    LoginFail { username: &'a Subject, source: &'a str, attempts: u32 },
    /// `authn_login_lock`: the account (or the source) reached the lock limit.
    LoginLock { username: &'a Subject, source: &'a str, attempts: u32 },
    /// `excess_rate_limit_exceeded`: an attempt refused, before any hashing, while a delay or
    /// lock was in force.
    RateLimitExceeded { username: &'a Subject, source: &'a str },
    /// `authn_password_change`: a user changed their password, or an operator reset it.
    PasswordChange { username: &'a str, source: &'a str, by_operator: bool },
    /// `authn_password_change_fail`: a change refused (wrong current password or policy).
    PasswordChangeFail { username: &'a Subject, source: &'a str },
    /// `user_created`.
    UserCreated { username: &'a str, source: &'a str },
    /// `user_updated`: an operator unlocked the account (a name no user has, too: its
    /// record is cleared all the same).
    UserUpdated { username: &'a Subject, source: &'a str, what: &'static str },
    /// `authn_login_unlock`: an operator cleared a source's failures (not in the OWASP
    /// vocabulary, which has no unlock; named after `authn_login_lock`).
    SourceUnlocked { source: &'a str },
    /// `user_deleted`.
    UserDeleted { username: &'a str, source: &'a str },
    /// `sys_users_copied`: `copy_users` copied the users of the store `from` into `to` (their
    /// locations, never a password). One per run, in the `sys_` form of
    /// `sys_users_repeppered`; counts only, never a record.
    UsersCopied {
        from: &'a str,
        to: &'a str,
        created: usize,
        unchanged: usize,
        conflicting: usize,
        skipped: usize,
        ambiguous: usize,
    },
    /// `sys_users_repeppered`: a bulk run over the users file (`pepper_all`, `what`
    /// "peppered"; `rotate_pepper_all`, "rotated") put `changed` records under pepper
    /// `version`. OWASP's vocabulary has no event for bulk maintenance: this one follows its
    /// `sys_` form, one per run rather than one `user_updated` per record (a run may touch
    /// every user). Counts and the version id only, never a key.
    UsersRepeppered {
        what: &'static str,
        version: &'a str,
        changed: usize,
        unchanged: usize,
        skipped: usize,
    },
}

/// Whom a failure event names: a stored user by the name as stored, or a name no stored
/// user has as `unknown:<first 12 hex digits of its salted account id>`: the name as typed
/// may be a password typed into the name field, so it is never written, and the id is the
/// one its throttling record is kept under, so an operator can still tell attempts on one
/// name apart from attempts on many. Written unescaped (the label is hex), while a stored
/// name's `:` is always escaped, so a stored name cannot pass for a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subject {
    /// A stored user, by the name as stored.
    Stored(String),
    /// A name no stored user has (or one several share): its label, `None` when there is
    /// no throttling state folder to take the salt from (then `unknown` alone).
    Unknown(Option<String>),
    /// The account an attempt refused by throttling was for, known name or not:
    /// `account:<label>` (the same 12 hex digits an unknown name's `unknown:` label has).
    /// A refusal must stay cheap, so the users file is not read to tell whether a stored
    /// user has the name.
    Account(Option<String>),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stored(name) => Escaped(name).fmt(f),
            Self::Unknown(Some(label)) => write!(f, "unknown:{label}"),
            Self::Unknown(None) => f.write_str("unknown"),
            Self::Account(Some(label)) => write!(f, "account:{label}"),
            Self::Account(None) => f.write_str("account"),
        }
    }
}

/// Whether a subscriber wants security events at all (a failure event's subject costs a
/// read of the users file on paths that have not read it, only then).
pub(crate) fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::WARN)
}

/// A name or source as events write it: see the [module docs](self).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        for c in self.0.chars() {
            let kept = c.is_ascii_alphanumeric()
                || matches!(c, '.' | '_' | '@' | '-')
                || (!c.is_ascii() && c.is_alphabetic());
            if kept {
                f.write_char(c)?;
            } else {
                write!(f, "\\u{{{:x}}}", u32::from(c))?;
            }
        }
        Ok(())
    }
}

impl Event<'_> {
    /// Emits the event through `tracing`.
    pub(crate) fn emit(self) {
        use tracing::{info, warn};
        match self {
            Event::LoginSuccess { username, source } => info!(
                target: TARGET, event = %format_args!("authn_login_success:{}", Escaped(username)),
                username = %Escaped(username), source = %Escaped(source), "user login successful"
            ),
            Event::LoginSuccessAfterFail { username, source, attempts } => info!(
                target: TARGET,
                event = %format_args!("authn_login_successafterfail:{},{}", Escaped(username), attempts),
                username = %Escaped(username), source = %Escaped(source), attempts, "user login successful after failed attempts"
            ),
            Event::LoginFail { username, source, attempts } => warn!(
                target: TARGET, event = %format_args!("authn_login_fail:{username}"),
                username = %username, source = %Escaped(source), attempts, "user login failed"
            ),
            Event::LoginLock { username, source, attempts } => warn!(
                target: TARGET, event = %format_args!("authn_login_lock:{username},{attempts}"),
                username = %username, source = %Escaped(source), attempts, "user login locked after too many failed attempts"
            ),
            Event::RateLimitExceeded { username, source } => warn!(
                target: TARGET,
                event = %format_args!("excess_rate_limit_exceeded:{username},{}", Escaped(source)),
                username = %username, source = %Escaped(source), "login attempt refused: too many failed attempts"
            ),
            Event::PasswordChange { username, source, by_operator } => info!(
                target: TARGET, event = %format_args!("authn_password_change:{}", Escaped(username)),
                username = %Escaped(username), source = %Escaped(source), by_operator, "user password changed"
            ),
            Event::PasswordChangeFail { username, source } => warn!(
                target: TARGET, event = %format_args!("authn_password_change_fail:{username}"),
                username = %username, source = %Escaped(source), "user password change failed"
            ),
            Event::UserCreated { username, source } => warn!(
                target: TARGET, event = %format_args!("user_created:{}", Escaped(username)),
                username = %Escaped(username), source = %Escaped(source), "user created"
            ),
            Event::UserUpdated { username, source, what } => warn!(
                target: TARGET, event = %format_args!("user_updated:{username}"),
                username = %username, source = %Escaped(source), what, "user updated"
            ),
            Event::SourceUnlocked { source } => warn!(
                target: TARGET, event = %format_args!("authn_login_unlock:{}", Escaped(source)),
                username = "", source = %Escaped(source), "login source unlocked"
            ),
            Event::UsersRepeppered { what, version, changed, unchanged, skipped } => warn!(
                target: TARGET,
                event = %format_args!("sys_users_repeppered:{what},{}", Escaped(version)),
                what, version = %Escaped(version), changed, unchanged, skipped,
                "users file re-peppered"
            ),
            Event::UsersCopied {
                from,
                to,
                created,
                unchanged,
                conflicting,
                skipped,
                ambiguous,
            } => warn!(
                target: TARGET,
                event = %format_args!("sys_users_copied:{},{}", Escaped(from), Escaped(to)),
                from = %Escaped(from), to = %Escaped(to), created, unchanged, conflicting, skipped,
                ambiguous,
                "users copied between stores"
            ),
            Event::UserDeleted { username, source } => warn!(
                target: TARGET, event = %format_args!("user_deleted:{}", Escaped(username)),
                username = %Escaped(username), source = %Escaped(source), "user deleted"
            ),
        }
    }
}
