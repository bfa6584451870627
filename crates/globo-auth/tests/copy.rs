//! `copy_users` through the public API (issue 14): stores chosen by `StoreSpec`, the one
//! security event a run emits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/events.rs"]
mod support;

use globo_auth::{CopyReport, Profile, StoreSpec, copy_users};
use secrecy::SecretString;

#[test]
fn a_copy_emits_one_event_with_its_counts_and_locations() {
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str| {
        let spec = StoreSpec::parse(dir.path().join(name).to_str().unwrap()).unwrap();
        spec.open(None).unwrap().with_profile(Profile::TestOnlyInsecure)
    };
    let (from, to) = (open("from.json"), open("to.json"));
    from.register("alice", &SecretString::from("correct horse battery staple")).unwrap();
    from.register("bob", &SecretString::from("correct horse battery staple")).unwrap();
    to.register("bob", &SecretString::from("another long passphrase here")).unwrap();

    let mut report = None;
    let events = support::events(|| report = Some(copy_users(&from, &to).unwrap()));
    let report: CopyReport = report.unwrap();
    assert_eq!((report.created, report.unchanged), (1, 0));
    assert_eq!(report.conflicting, ["bob"]);
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert!(event["event"].as_str().unwrap().starts_with("sys_users_copied:"), "{event}");
    assert_eq!(event["created"], 1);
    assert_eq!(event["unchanged"], 0);
    assert_eq!(event["conflicting"], 1);
    assert_eq!(event["skipped"], 0);
    assert!(event["to"].as_str().unwrap().ends_with("to.json"), "{event}");
    // No record in the event.
    assert!(!event.to_string().contains("$argon2id$"), "{event}");
}
