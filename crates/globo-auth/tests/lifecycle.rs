//! The account lifecycle (delete, change_password, reset_password) and the security events
//! every store operation emits (issue 13).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use globo_auth::{
    AuthError, AuthErrorKind, Profile, SECURITY_EVENTS_TARGET, ThrottlePolicy, UserStore,
};
use secrecy::{ExposeSecret as _, SecretString};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Level, Metadata};

const TEST: Profile = Profile::TestOnlyInsecure;
const ALICE_PW: &str = "wonderland rabbit hole";
const BOB_PW: &str = "builder of many things";
const CAROL_PW: &str = "christmas songs at night";
/// New passwords: at least 15 characters (the single-factor minimum of NIST SP 800-63B-4).
const NEW_PW: &str = "a brand new passphrase";
/// On the common-passwords list, and long enough for any minimum.
const COMMON_PW: &str = "1q2w3e4r5t6y7u8i9o0p";

fn secret(s: &str) -> SecretString {
    SecretString::from(s)
}

fn temp_users() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    (dir, path)
}

fn users(path: &Path) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// The users file as the store writes it: pretty JSON (the lab's `indent=2` shape), a newline.
fn lab_format(users: &serde_json::Map<String, serde_json::Value>) -> Vec<u8> {
    let mut json = serde_json::to_vec_pretty(users).unwrap();
    json.push(b'\n');
    json
}

/// alice, bob and carol, registered in that order.
fn three_users(path: &Path) -> UserStore {
    let store = UserStore::new(path).with_profile(TEST);
    for (name, password) in [("alice", ALICE_PW), ("bob", BOB_PW), ("carol", CAROL_PW)] {
        store.register(name, &secret(password)).unwrap();
    }
    store
}

/// One captured event: its target, level and fields (`Debug` form; strings as they are).
#[derive(Debug, Clone)]
struct Captured {
    target: String,
    level: Level,
    fields: BTreeMap<String, String>,
}

impl Captured {
    fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("<missing>", String::as_str)
    }
}

/// A `tracing` subscriber that keeps every event.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

impl Capture {
    /// Runs `f` with this subscriber as the thread's default.
    fn during<T>(&self, f: impl FnOnce() -> T) -> T {
        tracing::subscriber::with_default(self.clone(), f)
    }

    /// The security events captured so far, and forgets them.
    fn take(&self) -> Vec<Captured> {
        let events = std::mem::take(&mut *self.0.lock().unwrap());
        events.into_iter().filter(|e| e.target == SECURITY_EVENTS_TARGET).collect()
    }

    /// The `event` fields of [`Capture::take`].
    fn names(&self) -> Vec<String> {
        self.take().into_iter().map(|e| e.field("event").to_owned()).collect()
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let metadata = event.metadata();
        self.0.lock().unwrap().push(Captured {
            target: metadata.target().to_owned(),
            level: *metadata.level(),
            fields,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn delete_removes_only_that_user_and_keeps_the_lab_format() {
    let (_dir, path) = temp_users();
    let store = three_users(&path);
    let mut expected = users(&path);
    let capture = Capture::default();
    let removed = capture.during(|| store.delete("bob")).unwrap();
    assert_eq!(removed, "bob");
    expected.shift_remove("bob");
    // The others keep their order and their records, and the file its shape.
    assert_eq!(fs::read(&path).unwrap(), lab_format(&expected));
    assert_eq!(store.usernames().unwrap(), ["alice", "carol"]);
    let events = capture.take();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].field("event"), "user_deleted:bob");
    assert_eq!(events[0].field("username"), "bob");
    assert_eq!(events[0].field("source"), "");
    assert_eq!(events[0].level, Level::WARN);
    assert!(matches!(store.verify("bob", &secret(BOB_PW)), Err(AuthError::InvalidCredentials)));
    store.verify("alice", &secret(ALICE_PW)).unwrap();
    // The last user leaves an empty object, still a users file.
    store.delete("alice").unwrap();
    store.delete("carol").unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "{}\n");
    assert!(store.usernames().unwrap().is_empty());

    // A lab name holding a line break is written escaped: it cannot forge a log line.
    let lab = serde_json::json!({"eve\nmallory": globo_auth::hash_password("lab password", TEST).unwrap()});
    fs::write(&path, lab.to_string()).unwrap();
    capture.during(|| store.delete("eve\nmallory")).unwrap();
    let events = capture.take();
    assert_eq!(events[0].field("event"), "user_deleted:eve\\u{a}mallory");
    assert_eq!(events[0].field("username"), "eve\\u{a}mallory");
}

/// A `tracing_subscriber` text log, as `app` writes it, into a buffer.
#[derive(Clone, Default)]
struct TextLog(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for TextLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl TextLog {
    fn during<T>(&self, f: impl FnOnce() -> T) -> T {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f)
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Review (P4f, point 2): a text log writes field values unquoted, so a name or source
/// holding a space, `=`, `"`, `,` or `:` could forge fields (`escape_debug` kept them).
/// Everything but `[A-Za-z0-9._@-]` and non-ASCII letters is written as `\u{..}`, in the
/// `event` string and in the fields alike.
#[test]
fn names_and_sources_cannot_forge_fields_or_lines() {
    let (_dir, path) = temp_users();
    let store = three_users(&path);
    let forged = "x source=198.51.100.1 by_operator=true";
    let source = "203.0.113.9\" attempts=0,a:b\nnext\\u{41}";
    let name = "x\\u{20}source\\u{3d}198.51.100.1\\u{20}by_operator\\u{3d}true";
    let escaped_source = "203.0.113.9\\u{22}\\u{20}attempts\\u{3d}0\\u{2c}a\\u{3a}b\\u{a}next\\u{5c}u\\u{7b}41\\u{7d}";
    // Stored names (a lab file may hold any): events name unknown names by a label only.
    let mut users: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let record = users["alice"].clone();
    users.insert(forged.to_owned(), record.clone());
    users.insert("Zoë_Ådne.李-x@y".to_owned(), record);
    fs::write(&path, serde_json::to_vec(&users).unwrap()).unwrap();
    let run = || {
        assert!(
            store
                .change_password(forged, &secret("not the password"), &secret(NEW_PW), Some(source))
                .is_err()
        );
        // Refused by the policy (too short): a failed reset of a stored user.
        assert!(store.reset_password(forged, &secret("short")).is_err());
        // Letters of any script stay readable.
        assert!(store.reset_password("Zoë_Ådne.李-x@y", &secret("short")).is_err());
    };
    let capture = Capture::default();
    capture.during(run);
    let events = capture.take();
    // The change's check of the current password is a failed login (throttling's event),
    // then the change's own failure, then the two resets'.
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[0].field("event"), format!("authn_login_fail:{name}"));
    assert_eq!(events[0].field("username"), name);
    assert_eq!(events[0].field("source"), escaped_source);
    assert_eq!(events[1].field("event"), format!("authn_password_change_fail:{name}"));
    assert_eq!(events[1].field("username"), name);
    assert_eq!(events[1].field("source"), escaped_source);
    assert_eq!(events[2].field("username"), name);
    assert_eq!(events[2].field("source"), "");
    assert_eq!(events[3].field("username"), "Zoë_Ådne.李-x@y");

    let log = TextLog::default();
    log.during(run);
    let text = log.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    // The failed login's line has its one real `attempts` field; the others have none.
    for (line, attempts) in lines[..3].iter().zip([1, 0, 0]) {
        assert_eq!(line.matches(" source=").count(), 1, "{line}");
        assert_eq!(line.matches("by_operator=").count(), 0, "{line}");
        assert_eq!(line.matches("attempts=").count(), attempts, "{line}");
        assert!(line.contains(&format!(" username={name} ")), "{line}");
    }
    assert!(lines[0].contains(&format!(" source={escaped_source} attempts=")), "{}", lines[0]);
    assert!(lines[1].ends_with(&format!(" source={escaped_source}")), "{}", lines[1]);
}

#[test]
fn operators_commands_refuse_an_unknown_user_and_change_nothing() {
    let (_dir, path) = temp_users();
    let store = three_users(&path);
    let before = fs::read(&path).unwrap();
    let capture = Capture::default();
    for result in capture
        .during(|| [store.delete("mallory"), store.reset_password("mallory", &secret(NEW_PW))])
    {
        let error = result.unwrap_err();
        assert!(
            matches!(&error, AuthError::NoSuchUser { username } if username == "mallory"),
            "{error:?}"
        );
        assert_eq!(error.to_string(), "no user 'mallory' in the store");
        assert_eq!(error.kind(), AuthErrorKind::NotFound);
    }
    assert_eq!(fs::read(&path).unwrap(), before);
    // A failed reset is a failed password change; a failed delete deletes nobody. The name
    // no user has is not logged as typed; with no throttling state folder yet, there is no
    // salt to label it by.
    assert_eq!(capture.names(), ["authn_password_change_fail:unknown"]);

    // No users file at all: the same answer, and no file is created.
    let (_dir, missing) = temp_users();
    let store = UserStore::new(&missing).with_profile(TEST);
    assert!(matches!(store.delete("alice"), Err(AuthError::NoSuchUser { .. })));
    assert!(matches!(
        store.reset_password("alice", &secret(NEW_PW)),
        Err(AuthError::NoSuchUser { .. })
    ));
    assert!(!missing.exists());
}

#[test]
fn operators_commands_find_a_lab_name_as_a_login_does() {
    let (_dir, path) = temp_users();
    let hash = |p: &str| globo_auth::hash_password(p, TEST).unwrap();
    // The lab stored "josé" in NFD; "jo" twice, differing only by an invisible character.
    let lab = serde_json::json!({
        "jose\u{301}": hash("first lab password"),
        "jo": hash("second lab password"),
        "jo\u{200B}": hash("third lab password"),
    });
    fs::write(&path, lab.to_string()).unwrap();
    let store = UserStore::new(&path).with_profile(TEST);
    // Found by its NFC spelling, reported as stored.
    assert_eq!(store.reset_password("jos\u{e9}", &secret(NEW_PW)).unwrap(), "jose\u{301}");
    store.verify("jose\u{301}", &secret(NEW_PW)).unwrap();
    // Two names share "jo\u{2060}"'s key and neither is it: nobody is picked, and the
    // error says why (review P4f, point 4: it said NoSuchUser, as for a missing name).
    let before = fs::read(&path).unwrap();
    for result in [
        store.delete("jo\u{2060}"),
        store.find("jo\u{2060}"),
        store.reset_password("jo\u{2060}", &secret(NEW_PW)),
    ] {
        let error = result.unwrap_err();
        assert!(
            matches!(&error, AuthError::AmbiguousUser { username, candidates: 2 } if username == "jo\u{2060}"),
            "{error:?}"
        );
        assert_eq!(error.kind(), AuthErrorKind::NotFound);
        assert_eq!(
            error.to_string(),
            "'jo\u{2060}' matches 2 stored users whose names differ only in Unicode form, width \
             or invisible characters; name one exactly as stored"
        );
    }
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(store.find("jo").unwrap(), "jo");
    assert_eq!(store.find("jos\u{e9}").unwrap(), "jose\u{301}");
    assert!(matches!(store.find("mallory"), Err(AuthError::NoSuchUser { .. })));
    // The exact spelling always designates its own user.
    assert_eq!(store.delete("jo\u{200B}").unwrap(), "jo\u{200B}");
    assert_eq!(store.delete("jos\u{e9}").unwrap(), "jose\u{301}");
    assert_eq!(store.usernames().unwrap(), ["jo"]);
}

#[test]
fn change_password_needs_the_current_password_and_fails_like_a_login() {
    let (_dir, path) = temp_users();
    let store = three_users(&path);
    let before = fs::read(&path).unwrap();
    let capture = Capture::default();
    // A wrong current password and an unknown user: the login failure, nothing written.
    for (name, current) in [("alice", "not alice's password"), ("mallory", ALICE_PW)] {
        let result =
            capture.during(|| store.change_password(name, &secret(current), &secret(NEW_PW), None));
        assert!(matches!(result, Err(AuthError::InvalidCredentials)), "{name}: {result:?}");
        assert_eq!(fs::read(&path).unwrap(), before);
        let events = capture.take();
        let fail = events.last().unwrap();
        // A name no user has is never logged as typed (it may be a password typed into the
        // name field): its `unknown:` label (12 hex digits of its salted id) instead.
        let logged = fail.field("username");
        if name == "alice" {
            assert_eq!(logged, "alice");
        } else {
            let label = logged.strip_prefix("unknown:").unwrap_or_else(|| panic!("{logged}"));
            assert!(label.len() == 12 && label.chars().all(|c| c.is_ascii_hexdigit()), "{logged}");
            assert!(!format!("{events:?}").contains(name), "{events:?}");
        }
        assert_eq!(fail.field("event"), format!("authn_password_change_fail:{logged}"));
        assert_eq!(fail.level, Level::WARN);
    }
    // The right one: changed, with the name as stored.
    let changed = capture.during(|| {
        store.change_password("alice", &secret(ALICE_PW), &secret(NEW_PW), Some("192.0.2.7"))
    });
    assert_eq!(changed.unwrap(), "alice");
    let events = capture.take();
    let names: Vec<&str> = events.iter().map(|e| e.field("event")).collect();
    // The wrong current password above was counted by throttling, as a failed login is.
    assert_eq!(names, ["authn_login_successafterfail:alice,1", "authn_password_change:alice"]);
    let change = &events[1];
    assert_eq!(change.field("by_operator"), "false");
    assert_eq!(change.field("source"), "192.0.2.7");
    assert_eq!(change.level, Level::INFO);
    store.verify("alice", &secret(NEW_PW)).unwrap();
    assert!(matches!(store.verify("alice", &secret(ALICE_PW)), Err(AuthError::InvalidCredentials)));
    // Only alice's record changed, in the lab's format.
    let mut expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&before).unwrap();
    expected["alice"] = users(&path)["alice"].clone();
    assert_eq!(fs::read(&path).unwrap(), lab_format(&expected));
    assert!(expected["alice"].as_str().unwrap().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
}

/// Review G, point 4: a password change refused by throttling logs
/// `authn_password_change_fail` under the same `account:<label>` as the refusal's
/// `excess_rate_limit_exceeded`, for a stored name too (no users file read to name it).
/// Before, it named the stored user: `alice`.
#[test]
fn a_password_change_refused_by_throttling_names_the_account_label() {
    let (_dir, path) = temp_users();
    three_users(&path);
    let policy = ThrottlePolicy::default().lock_after(1).unwrap();
    let store = UserStore::new(&path).with_profile(TEST).with_throttle(policy).unwrap();
    assert!(matches!(
        store.verify("alice", &secret("not alice's password")),
        Err(AuthError::InvalidCredentials)
    ));
    let before = fs::read(&path).unwrap();
    let capture = Capture::default();
    let result =
        capture.during(|| store.change_password("alice", &secret(ALICE_PW), &secret(NEW_PW), None));
    assert!(matches!(result, Err(AuthError::Throttled { .. })), "{result:?}");
    assert_eq!(fs::read(&path).unwrap(), before);
    let events = capture.take();
    assert_eq!(
        events.len(),
        2,
        "{:?}",
        events.iter().map(|e| e.field("event")).collect::<Vec<_>>()
    );
    let refused = events[0].field("username");
    let label = refused.strip_prefix("account:").unwrap_or_else(|| panic!("{refused}"));
    assert!(label.len() == 12 && label.chars().all(|c| c.is_ascii_hexdigit()), "{refused}");
    assert_eq!(events[1].field("username"), refused);
    assert_eq!(events[1].field("event"), format!("authn_password_change_fail:{refused}"));
}

#[test]
fn a_new_password_must_pass_the_new_password_rules_for_that_user() {
    let (_dir, path) = temp_users();
    let store = three_users(&path);
    let before = fs::read(&path).unwrap();
    let capture = Capture::default();
    type IsExpected = fn(&AuthError) -> bool;
    let refused: [(&str, IsExpected); 3] = [
        ("short", |e| matches!(e, AuthError::PasswordTooShort { .. })),
        (COMMON_PW, |e| matches!(e, AuthError::PasswordTooCommon)),
        (
            "my name is Alice, hello there",
            |e| matches!(e, AuthError::PasswordContainsUsername { username } if username == "alice"),
        ),
    ];
    for (new, is_expected) in refused {
        let change = capture
            .during(|| store.change_password("alice", &secret(ALICE_PW), &secret(new), None));
        let reset = capture.during(|| store.reset_password("alice", &secret(new)));
        for result in [change.map(drop), reset.map(drop)] {
            let error = result.unwrap_err();
            assert!(is_expected(&error), "{new:?}: {error:?}");
            assert_eq!(error.kind(), AuthErrorKind::InvalidInput);
        }
        assert_eq!(fs::read(&path).unwrap(), before, "{new:?} changed the file");
        let names = capture.names();
        assert_eq!(
            names,
            [
                "authn_login_success:alice",
                "authn_password_change_fail:alice",
                "authn_password_change_fail:alice"
            ]
        );
    }
}

#[test]
fn reset_password_needs_no_current_password_and_says_an_operator_did_it() {
    let (_dir, path) = temp_users();
    let store = three_users(&path);
    let before = users(&path);
    let capture = Capture::default();
    assert_eq!(capture.during(|| store.reset_password("bob", &secret(NEW_PW))).unwrap(), "bob");
    let events = capture.take();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].field("event"), "authn_password_change:bob");
    assert_eq!(events[0].field("by_operator"), "true");
    store.verify("bob", &secret(NEW_PW)).unwrap();
    assert!(matches!(store.verify("bob", &secret(BOB_PW)), Err(AuthError::InvalidCredentials)));
    let after = users(&path);
    assert_eq!(after["alice"], before["alice"]);
    assert_eq!(after["carol"], before["carol"]);
    assert_eq!(after.keys().collect::<Vec<_>>(), ["alice", "bob", "carol"]);
}

/// The record a change replaces is the one its own verification left: when that login
/// upgraded an obsolete hash, the change goes over the upgraded record (no false conflict).
#[test]
fn a_change_goes_over_the_hash_its_own_login_upgraded() {
    let (_dir, path) = temp_users();
    three_users(&path);
    let store = UserStore::new(&path).with_profile(Profile::OwaspMinimum);
    store.change_password("carol", &secret(CAROL_PW), &secret(NEW_PW), None).unwrap();
    let record = users(&path)["carol"].as_str().unwrap().to_owned();
    assert!(record.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{record}");
    store.verify("carol", &secret(NEW_PW)).unwrap();
}

#[test]
fn register_and_verify_emit_user_created_and_login_success_with_the_stored_name() {
    let (_dir, path) = temp_users();
    let store = UserStore::new(&path).with_profile(TEST);
    let capture = Capture::default();
    // A fullwidth, NFD name is stored width-mapped and in NFC.
    capture.during(|| store.register("\u{ff4a}ose\u{301}", &secret(NEW_PW))).unwrap();
    let events = capture.take();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].field("event"), "user_created:jos\u{e9}");
    assert_eq!(events[0].field("username"), "jos\u{e9}");
    capture.during(|| store.verify_from("jose\u{301}", &secret(NEW_PW), Some("10.1.2.3"))).unwrap();
    let events = capture.take();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].field("event"), "authn_login_success:jos\u{e9}");
    assert_eq!(events[0].field("source"), "10.1.2.3");
    assert_eq!(events[0].level, Level::INFO);
    // A refused registration creates nobody.
    let _ = capture.during(|| store.register("jos\u{e9}", &secret(NEW_PW)));
    assert!(capture.take().is_empty());
}

/// No event, whatever its outcome, holds a password, a hash, or any part of a hash's salt
/// or tag.
#[test]
fn no_event_holds_a_password_or_a_hash() {
    let (_dir, path) = temp_users();
    let capture = Capture::default();
    let store = capture.during(|| three_users(&path));
    let mut records: Vec<String> = users(&path).values().map(|v| v.to_string()).collect();
    capture.during(|| {
        let _ = store.verify("alice", &secret(ALICE_PW));
        let _ = store.verify("alice", &secret(BOB_PW));
        let _ = store.change_password("alice", &secret(BOB_PW), &secret(NEW_PW), Some("src"));
        let _ = store.change_password("alice", &secret(ALICE_PW), &secret(COMMON_PW), None);
        let _ = store.change_password("alice", &secret(ALICE_PW), &secret(NEW_PW), None);
        let _ = store.reset_password("bob", &secret(CAROL_PW));
        let _ = store.reset_password("bob", &secret("bob bob bob bob bob"));
        let _ = store.delete("carol");
    });
    records.extend(users(&path).values().map(|v| v.to_string()));
    let events = capture.take();
    assert!(events.len() >= 10, "{events:?}");
    let text = format!("{events:?}");
    for password in [ALICE_PW, BOB_PW, CAROL_PW, NEW_PW, COMMON_PW, "bob bob bob"] {
        assert!(!text.contains(password), "an event holds {password:?}: {text}");
    }
    for record in &records {
        for part in record.trim_matches('"').rsplit('$').take(2) {
            assert!(!text.contains(part), "an event holds {part:?} of {record}: {text}");
        }
    }
}

/// Review (P4f, point 3): every new record, from register, change and reset alike, is a hash
/// of the password's NFKC form (NIST SP 800-63B-4 §3.1.1.2), never of the raw input.
#[test]
fn register_change_and_reset_hash_the_nfkc_form() {
    let (_dir, path) = temp_users();
    let store = UserStore::new(&path).with_profile(TEST);
    // Fullwidth letters and a ligature: NFKC changes every one of these.
    let cases = [
        ("ｗｏｎｄｅｒｌａｎｄ rabbit hole", "wonderland rabbit hole"),
        ("ﬁrst new passphrase here", "first new passphrase here"),
        ("Ⅻ operators' passphrase", "XII operators' passphrase"),
    ];
    for (raw, nfkc) in cases {
        assert_eq!(globo_auth::normalize_password(&secret(raw)).expose_secret(), nfkc);
    }
    let record = || users(&path)["alice"].as_str().unwrap().to_owned();
    let is_nfkc_hash = |raw: &str, nfkc: &str| {
        let record = record();
        globo_auth::verify_password(nfkc.as_bytes(), &record).unwrap();
        assert!(globo_auth::verify_password(raw.as_bytes(), &record).is_err(), "{raw}");
    };
    store.register("alice", &secret(cases[0].0)).unwrap();
    is_nfkc_hash(cases[0].0, cases[0].1);
    store.change_password("alice", &secret(cases[0].1), &secret(cases[1].0), None).unwrap();
    is_nfkc_hash(cases[1].0, cases[1].1);
    store.reset_password("alice", &secret(cases[2].0)).unwrap();
    is_nfkc_hash(cases[2].0, cases[2].1);
}

/// Review (P4f, point 5): `delete_exact` deletes the name as stored or nobody. The file may
/// change between `find` (and the operator's confirmation) and the deletion: another user
/// whose name looks the same must not be deleted instead.
#[test]
fn delete_exact_deletes_that_stored_name_or_nobody() {
    let (_dir, path) = temp_users();
    let hash = |p: &str| globo_auth::hash_password(p, TEST).unwrap();
    fs::write(&path, serde_json::json!({"jose\u{301}": hash("first lab password")}).to_string())
        .unwrap();
    let store = UserStore::new(&path).with_profile(TEST);
    let stored = store.find("jos\u{e9}").unwrap();
    assert_eq!(stored, "jose\u{301}");
    // Meanwhile the NFD user is replaced by one stored in NFC.
    let changed = serde_json::json!({"jos\u{e9}": hash("second lab password"), "bob": hash("b")});
    fs::write(&path, changed.to_string()).unwrap();
    let before = fs::read(&path).unwrap();
    let capture = Capture::default();
    let result = capture.during(|| store.delete_exact(&stored));
    assert!(
        matches!(&result, Err(AuthError::ConcurrentChange { username }) if username == "jose\u{301}"),
        "{result:?}"
    );
    assert_eq!(result.unwrap_err().kind(), AuthErrorKind::Conflict);
    assert_eq!(fs::read(&path).unwrap(), before);
    assert!(capture.take().is_empty());
    // The name as stored is deleted, and only it.
    capture.during(|| store.delete_exact("jos\u{e9}")).unwrap();
    assert_eq!(store.usernames().unwrap(), ["bob"]);
    assert_eq!(capture.names(), ["user_deleted:jos\u{e9}"]);
}

/// Review (P4f, point 6): a reset that fails after the user was found names the user as
/// stored in its event, as a successful one does, not the spelling given.
#[test]
fn a_failed_reset_of_a_found_user_names_the_stored_user() {
    let (_dir, path) = temp_users();
    let hash = globo_auth::hash_password("first lab password", TEST).unwrap();
    fs::write(&path, serde_json::json!({"jose\u{301}": hash}).to_string()).unwrap();
    let store = UserStore::new(&path).with_profile(TEST);
    let capture = Capture::default();
    let result = capture.during(|| store.reset_password("jos\u{e9}", &secret(COMMON_PW)));
    assert!(matches!(result, Err(AuthError::PasswordTooCommon)), "{result:?}");
    let events = capture.take();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].field("event"), "authn_password_change_fail:jose\\u{301}");
    assert_eq!(events[0].field("username"), "jose\\u{301}");
}
