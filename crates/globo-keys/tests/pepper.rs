//! The password pepper's home: `.env` (or the environment) in local mode, a Secrets Manager
//! secret (moto) in prod mode; create never replaces, rotate and retire are re-runnable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use globo_keys::KeysError;
use globo_keys::pepper::{PepperSource, PepperSourceConfig};
use globo_secrets::{Environment, Mode};
use secrecy::ExposeSecret as _;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn local(env_file: &Path, env: &Environment) -> PepperSource {
    let config = PepperSourceConfig::new().mode(Mode::Local).env_file(env_file);
    PepperSource::resolve(&config, env).unwrap()
}

fn versions(peppers: &globo_auth::Peppers) -> Vec<String> {
    peppers.versions().map(str::to_owned).collect()
}

#[test]
fn local_create_rotate_retire_edit_only_the_pepper_line_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env");
    let others = "# settings\nAPP_MODE=local\r\nDB_PASSWORD='s3cret # not a comment'\n\nZ=last";
    std::fs::write(&env_file, others).unwrap();
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let env = Environment::empty();
    let source = local(&env_file, &env);
    assert!(source.load().unwrap().is_none());

    let created = source.create().unwrap();
    let v1 = versions(&created);
    assert_eq!(v1.len(), 1);
    let text = std::fs::read_to_string(&env_file).unwrap();
    let line = format!("PASSWORD_PEPPER='{}'\n", created.to_secret().expose_secret());
    assert_eq!(text, format!("{others}\n{line}"));
    assert_eq!(std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(
        source.load().unwrap().unwrap().to_secret().expose_secret(),
        created.to_secret().expose_secret()
    );
    // Never replaced.
    let err = source.create().unwrap_err();
    assert!(matches!(err, KeysError::PepperExists { .. }), "{err}");
    assert!(err.to_string().contains("variable 'PASSWORD_PEPPER'"), "{err}");
    assert_eq!(std::fs::read_to_string(&env_file).unwrap(), text);

    // Rotation: a new current version, the old one kept; run again, nothing is added.
    let rotated = source.rotate().unwrap();
    let v2 = rotated.current_version().to_owned();
    assert_eq!(versions(&rotated), [v2.clone(), v1[0].clone()]);
    let again = source.rotate().unwrap();
    assert_eq!(again.to_secret().expose_secret(), rotated.to_secret().expose_secret());
    let loaded = source.load().unwrap().unwrap();
    assert_eq!(loaded.to_secret().expose_secret(), rotated.to_secret().expose_secret());
    let retired = source.retire_unused(None, &BTreeMap::new()).unwrap();
    assert_eq!(versions(&retired), [v2.as_str()]);
    assert_eq!(versions(&source.retire_unused(None, &BTreeMap::new()).unwrap()), [v2.as_str()]);
    let text = std::fs::read_to_string(&env_file).unwrap();
    let line = format!("PASSWORD_PEPPER='{}'\n", retired.to_secret().expose_secret());
    assert_eq!(text, format!("{others}\n{line}"));
    // The next rotation adds a new version in front.
    let third = source.rotate().unwrap();
    assert_eq!(versions(&third)[1..], [v2]);
}

#[test]
fn local_steps_without_a_pepper_or_with_a_bad_one_say_so_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env");
    let env = Environment::empty();
    let source = local(&env_file, &env);
    for err in
        [source.rotate().unwrap_err(), source.retire_unused(None, &BTreeMap::new()).unwrap_err()]
    {
        assert!(matches!(err, KeysError::PepperMissing { .. }), "{err}");
    }
    assert!(!env_file.exists());
    // A malformed value: named by location and reason, never repeated.
    std::fs::write(&env_file, "PASSWORD_PEPPER=c2hvcnQ=\n").unwrap();
    for err in [source.load().unwrap_err(), source.rotate().unwrap_err()] {
        let report = globo_keys::Report::new(&err).to_string();
        assert!(matches!(err, KeysError::InvalidPepper { .. }), "{err}");
        assert!(report.contains("shorter than 32 bytes"), "{report}");
        assert!(!report.contains("c2hvcnQ"), "{report}");
    }
    // A value over several lines cannot be replaced safely: refused, the file kept.
    let multi = format!("PASSWORD_PEPPER=\"{KEY}\n\"\nA=1\n");
    std::fs::write(&env_file, &multi).unwrap();
    let err = source.rotate().unwrap_err();
    assert!(matches!(err, KeysError::PepperNotWritable { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&env_file).unwrap(), multi);
}

#[test]
fn a_pepper_in_the_environment_wins_and_is_never_written_over() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env");
    let other_key = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    std::fs::write(&env_file, format!("PEPPER2={other_key}\n")).unwrap();
    let env = Environment::from_pairs([("GLOBO_PEPPER_SECRET", "PEPPER2"), ("PEPPER2", KEY)]);
    let source = local(&env_file, &env);
    let id = source.load().unwrap().unwrap().current_version().to_owned();
    assert_eq!(id, globo_auth::Peppers::parse(&KEY.into()).unwrap().current_version());
    assert!(matches!(source.create().unwrap_err(), KeysError::PepperExists { .. }));
    let err = source.rotate().unwrap_err();
    assert!(matches!(err, KeysError::PepperNotWritable { .. }), "{err}");
    assert!(err.to_string().contains("process environment"), "{err}");
    // Retiring with one version has nothing to write, so it answers.
    assert_eq!(versions(&source.retire_unused(None, &BTreeMap::new()).unwrap()), [id]);
    assert_eq!(std::fs::read_to_string(&env_file).unwrap(), format!("PEPPER2={other_key}\n"));
    // The name from the configuration wins over GLOBO_PEPPER_SECRET.
    let config = PepperSourceConfig::new().mode(Mode::Local).env_file(&env_file).secret("OTHER");
    let other = PepperSource::resolve(&config, &env).unwrap();
    assert!(other.load().unwrap().is_none());
}

/// `--env-file <(cmd)`: a pipe read once decides the mode (none given) and gives the pepper;
/// reading it again finds nothing (before, `load` read it a second time and failed).
#[test]
fn a_piped_env_file_is_read_once_for_the_mode_and_the_pepper() {
    use std::io::Write as _;
    use std::os::fd::AsRawFd as _;
    let (reader, mut writer) = std::io::pipe().unwrap();
    writer.write_all(format!("APP_MODE=local\nPASSWORD_PEPPER={KEY}\n").as_bytes()).unwrap();
    drop(writer);
    let path = format!("/dev/fd/{}", reader.as_raw_fd());
    let config = PepperSourceConfig::new().env_file(&path);
    let source = PepperSource::resolve(&config, &Environment::empty()).unwrap();
    assert_eq!(versions(&source.load().unwrap().unwrap()).len(), 1);
    drop(reader);
}

#[cfg(feature = "aws")]
#[test]
fn prod_mode_keeps_the_pepper_in_secrets_manager() {
    let Some(moto) = globo_testkit::moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env");
    std::fs::write(
        &env_file,
        format!(
            "APP_MODE=prod\nAWS_ENDPOINT_URL={}\nAWS_REGION=us-east-1\n\
             AWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY=testing\n",
            moto.endpoint_url()
        ),
    )
    .unwrap();
    let before = std::fs::read(&env_file).unwrap();
    let env = Environment::from_pairs([("AWS_EC2_METADATA_DISABLED", "true")]);
    let config = PepperSourceConfig::new().env_file(&env_file);
    let source = PepperSource::resolve(&config, &env).unwrap();
    assert!(source.describe().starts_with("secret 'PASSWORD_PEPPER' in AWS Secrets Manager"));
    assert!(source.load().unwrap().is_none());
    assert!(matches!(source.rotate().unwrap_err(), KeysError::PepperMissing { .. }));

    let created = source.create().unwrap();
    let v1 = created.current_version().to_owned();
    let err = source.create().unwrap_err();
    assert!(matches!(err, KeysError::PepperExists { .. }), "{err}");
    let rotated = source.rotate().unwrap();
    let v2 = rotated.current_version().to_owned();
    assert_eq!(versions(&rotated), [v2.clone(), v1.clone()]);
    assert_eq!(
        source.rotate().unwrap().to_secret().expose_secret(),
        rotated.to_secret().expose_secret()
    );
    // Another process sees the same pepper.
    let other = PepperSource::resolve(&config, &env).unwrap();
    let seen = other.load().unwrap().unwrap();
    assert_eq!(seen.to_secret().expose_secret(), rotated.to_secret().expose_secret());
    assert_eq!(versions(&source.retire_unused(None, &BTreeMap::new()).unwrap()), [v2.as_str()]);
    assert_eq!(versions(&other.load().unwrap().unwrap()), [v2.as_str()]);
    // A whole rotation of a users file against the secret: records moved, the old
    // version retired.
    let users = dir.path().join("users.json");
    let store =
        || globo_auth::UserStore::new(&users).with_profile(globo_auth::Profile::TestOnlyInsecure);
    let peppered = store().with_peppers(other.load().unwrap().unwrap());
    peppered.register("alice", &"a long enough passphrase".into()).unwrap();
    let rotation = source.rotate_users(store()).unwrap();
    assert_eq!(rotation.retired, [v2.as_str()]);
    assert_eq!(rotation.moved.changed, 1);
    let now = other.load().unwrap().unwrap();
    assert_eq!(versions(&now), [rotation.version.as_str()]);
    store().with_peppers(now).verify("alice", &"a long enough passphrase".into()).unwrap();
    // The secret holds it with the pepper description; .env is untouched.
    let stages = globo_testkit::block_on(async {
        let sdk = globo_testkit::emulator_config(
            globo_secrets::aws_config_loader().await,
            &moto.endpoint_url(),
        )
        .await;
        let client = aws_sdk_secretsmanager::Client::new(&sdk);
        client.describe_secret().secret_id("PASSWORD_PEPPER").send().await.unwrap()
    });
    assert_eq!(stages.description(), Some(globo_keys::pepper::PEPPER_SECRET_DESCRIPTION));
    assert_eq!(std::fs::read(&env_file).unwrap(), before);
}

/// Issue 13 review, point 2: a whole rotation under the users file's lock, over `.env`:
/// records moved, the old version retired; a record under a version the pepper does not hold
/// stops it before anything moves, naming the user.
#[test]
fn local_rotate_users_moves_every_record_then_retires_the_old_version() {
    use globo_auth::{Profile, UserStore};
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env");
    let users = dir.path().join("users.json");
    let env = Environment::empty();
    let source = local(&env_file, &env);
    let store = || UserStore::new(&users).with_profile(Profile::TestOnlyInsecure);
    let old = source.create().unwrap();
    store()
        .with_peppers(old.clone())
        .register("alice", &"a long enough passphrase".into())
        .unwrap();
    store().register("bob", &"another long passphrase".into()).unwrap_err(); // PepperRequired
    let rotation = source.rotate_users(store()).unwrap();
    assert_eq!(rotation.retired, [old.current_version()]);
    assert!(rotation.still_in_use.is_empty());
    assert_eq!((rotation.moved.changed, rotation.moved.unchanged), (1, 0));
    let now = source.load().unwrap().unwrap();
    assert_eq!(versions(&now), [rotation.version.as_str()]);
    let record = std::fs::read_to_string(&users).unwrap();
    assert!(record.contains(&format!(",keyid={}$", rotation.version)), "{record}");
    // A record under a foreign version: named, nothing moved, nothing retired.
    // (Made in a file of its own: a store whose pepper lacks the version the file's records
    // name writes nothing into it, PepperStale.)
    let foreign = globo_auth::Peppers::generate().unwrap();
    let elsewhere = dir.path().join("elsewhere.json");
    UserStore::new(&elsewhere)
        .with_profile(Profile::TestOnlyInsecure)
        .with_peppers(foreign.clone())
        .register("carol", &"a third long passphrase".into())
        .unwrap();
    let theirs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&elsewhere).unwrap()).unwrap();
    let mut file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&users).unwrap()).unwrap();
    file["carol"] = theirs["carol"].clone();
    std::fs::write(&users, file.to_string()).unwrap();
    let before = std::fs::read(&users).unwrap();
    let err = source.rotate_users(store()).unwrap_err();
    assert!(
        matches!(&err, KeysError::PepperRecordsUnmovable { users, .. } if users == &["carol"]),
        "{err}"
    );
    assert!(err.to_string().contains(foreign.current_version()), "{err}");
    assert_eq!(std::fs::read(&users).unwrap(), before);
    // The version added by that run stays current; a run without carol completes it.
    let added = source.load().unwrap().unwrap();
    assert_eq!(added.versions().count(), 2);
    let mut file: serde_json::Value = serde_json::from_slice(&before).unwrap();
    file.as_object_mut().unwrap().remove("carol");
    std::fs::write(&users, file.to_string()).unwrap();
    let rotation = source.rotate_users(store()).unwrap();
    assert_eq!(rotation.version, added.current_version());
    assert_eq!(versions(&source.load().unwrap().unwrap()), [rotation.version]);
}

/// Review F, point 7: a version kept only because an unusable entry names it does not make
/// a rotation "in progress": the next rotation adds a new version. Before, the secret held
/// two versions after the first rotation, so the second added none and returned the same
/// version (`added` did not exist; `version` was unchanged).
#[test]
fn a_version_kept_for_an_unusable_entry_does_not_stop_the_next_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let env = Environment::empty();
    let source = local(&dir.path().join(".env"), &env);
    let users = dir.path().join("users.json");
    let store =
        || globo_auth::UserStore::new(&users).with_profile(globo_auth::Profile::TestOnlyInsecure);
    let v1 = source.create().unwrap().current_version().to_owned();
    store()
        .with_peppers(source.load().unwrap().unwrap())
        .register("alice", &"a long enough passphrase".into())
        .unwrap();
    let mut file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&users).unwrap()).unwrap();
    file["mallory"] = format!("$argon2id$v=19$m=8,t=1,p=1,keyid={v1}$unusable").into();
    std::fs::write(&users, file.to_string()).unwrap();

    let first = source.rotate_users(store()).unwrap();
    assert!(first.added);
    assert_eq!(first.moved.changed, 1);
    assert_eq!(first.still_in_use.get(&v1).unwrap(), &["mallory"]);
    assert_eq!(versions(&source.load().unwrap().unwrap()), [first.version.clone(), v1.clone()]);

    let second = source.rotate_users(store()).unwrap();
    assert!(second.added, "{second:?}");
    assert_ne!(second.version, first.version);
    assert_eq!(second.moved.changed, 1);
    // Alice moved on; the first new version is retired, the one mallory names kept.
    assert_eq!(second.retired, std::slice::from_ref(&first.version));
    assert_eq!(versions(&source.load().unwrap().unwrap()), [second.version.clone(), v1]);
    // A rotation interrupted after adding its version (records not moved yet) resumes.
    let resumed = source.rotate().unwrap();
    assert_eq!(resumed.current_version(), second.version);
}
