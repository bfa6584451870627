//! The password pepper's home: `.env` (or the environment) in local mode, a Secrets Manager
//! secret (moto) in prod mode; create never replaces, rotate and retire are re-runnable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
    assert_eq!(versions(&created), ["1"]);
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
    assert_eq!(versions(&rotated), ["2", "1"]);
    let again = source.rotate().unwrap();
    assert_eq!(again.to_secret().expose_secret(), rotated.to_secret().expose_secret());
    let loaded = source.load().unwrap().unwrap();
    assert_eq!(loaded.to_secret().expose_secret(), rotated.to_secret().expose_secret());
    let retired = source.retire_old().unwrap();
    assert_eq!(versions(&retired), ["2"]);
    assert_eq!(versions(&source.retire_old().unwrap()), ["2"]);
    let text = std::fs::read_to_string(&env_file).unwrap();
    let line = format!("PASSWORD_PEPPER='{}'\n", retired.to_secret().expose_secret());
    assert_eq!(text, format!("{others}\n{line}"));
    // The next rotation goes on from the highest number.
    assert_eq!(versions(&source.rotate().unwrap()), ["3", "2"]);
}

#[test]
fn local_steps_without_a_pepper_or_with_a_bad_one_say_so_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env");
    let env = Environment::empty();
    let source = local(&env_file, &env);
    for err in [source.rotate().unwrap_err(), source.retire_old().unwrap_err()] {
        assert!(matches!(err, KeysError::PepperMissing { .. }), "{err}");
    }
    assert!(!env_file.exists());
    // A malformed value: named by location and reason, never repeated.
    std::fs::write(&env_file, "PASSWORD_PEPPER=1:c2hvcnQ=\n").unwrap();
    for err in [source.load().unwrap_err(), source.rotate().unwrap_err()] {
        let report = globo_keys::Report::new(&err).to_string();
        assert!(matches!(err, KeysError::InvalidPepper { .. }), "{err}");
        assert!(report.contains("shorter than 32 bytes"), "{report}");
        assert!(!report.contains("c2hvcnQ"), "{report}");
    }
    // A value over several lines cannot be replaced safely: refused, the file kept.
    let multi = format!("PASSWORD_PEPPER=\"1:{KEY}\n\"\nA=1\n");
    std::fs::write(&env_file, &multi).unwrap();
    let err = source.rotate().unwrap_err();
    assert!(matches!(err, KeysError::PepperNotWritable { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&env_file).unwrap(), multi);
}

#[test]
fn a_pepper_in_the_environment_wins_and_is_never_written_over() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env");
    std::fs::write(&env_file, format!("PEPPER2=7:{KEY}\n")).unwrap();
    let env = Environment::from_pairs([
        ("GLOBO_PEPPER_SECRET", "PEPPER2"),
        ("PEPPER2", &format!("9:{KEY}") as &str),
    ]);
    let source = local(&env_file, &env);
    assert_eq!(versions(&source.load().unwrap().unwrap()), ["9"]);
    assert!(matches!(source.create().unwrap_err(), KeysError::PepperExists { .. }));
    let err = source.rotate().unwrap_err();
    assert!(matches!(err, KeysError::PepperNotWritable { .. }), "{err}");
    assert!(err.to_string().contains("process environment"), "{err}");
    // Retiring with one version has nothing to write, so it answers.
    assert_eq!(versions(&source.retire_old().unwrap()), ["9"]);
    assert_eq!(std::fs::read_to_string(&env_file).unwrap(), format!("PEPPER2=7:{KEY}\n"));
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
    writer.write_all(format!("APP_MODE=local\nPASSWORD_PEPPER=1:{KEY}\n").as_bytes()).unwrap();
    drop(writer);
    let path = format!("/dev/fd/{}", reader.as_raw_fd());
    let config = PepperSourceConfig::new().env_file(&path);
    let source = PepperSource::resolve(&config, &Environment::empty()).unwrap();
    assert_eq!(versions(&source.load().unwrap().unwrap()), ["1"]);
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
    assert_eq!(versions(&created), ["1"]);
    let err = source.create().unwrap_err();
    assert!(matches!(err, KeysError::PepperExists { .. }), "{err}");
    let rotated = source.rotate().unwrap();
    assert_eq!(versions(&rotated), ["2", "1"]);
    assert_eq!(
        source.rotate().unwrap().to_secret().expose_secret(),
        rotated.to_secret().expose_secret()
    );
    // Another process sees the same pepper.
    let other = PepperSource::resolve(&config, &env).unwrap();
    let seen = other.load().unwrap().unwrap();
    assert_eq!(seen.to_secret().expose_secret(), rotated.to_secret().expose_secret());
    assert_eq!(versions(&source.retire_old().unwrap()), ["2"]);
    assert_eq!(versions(&other.load().unwrap().unwrap()), ["2"]);
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
