//! The one-call key source (`KeySource::resolve`, `BlockingKeySource::resolve`): the mode
//! decides between the key file and the Secrets Manager secret as `app config` decides it, local
//! mode never reads `.env`, and prod mode is checked against a real moto server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ops::ControlFlow;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use globo_crypto::{CryptoError, Key, KeyFile, RotationStep, decrypt_file_to_memory, encrypt_file};
use globo_keys::{
    BlockingKeySource, KeyLocation, KeySource, KeySourceConfig, KeyWarning, KeysError,
};
use globo_secrets::{Environment, Mode, SecretsError};

/// `.env` for the emulator at `endpoint`, with `APP_MODE=mode`.
#[cfg(feature = "aws")]
fn emulator_dotenv(endpoint: &str, mode: &str) -> String {
    format!(
        "APP_MODE={mode}\nAWS_ENDPOINT_URL={endpoint}\nAWS_REGION=us-east-1\n\
         AWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY=testing\n"
    )
}

fn config(dir: &Path, mode: Option<Mode>, env_file: PathBuf) -> KeySourceConfig {
    let config = KeySourceConfig::new().key_file(dir.join("secret.key")).env_file(env_file);
    match mode {
        Some(mode) => config.mode(mode),
        None => config,
    }
}

fn encrypted(dir: &Path, key: &Key, name: &str) -> PathBuf {
    let plain = dir.join(format!("{name}.json"));
    std::fs::write(&plain, b"{\"n\": 1}").unwrap();
    let out = dir.join(format!("{name}.enc"));
    encrypt_file(key, &plain, &out).unwrap();
    out
}

#[tokio::test]
async fn local_mode_never_reads_the_env_file() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where .env should be: reading it fails, so any read would show.
    let unreadable = dir.path().join("dotenv-folder");
    std::fs::create_dir(&unreadable).unwrap();
    let empty = Environment::from_pairs(Vec::<(String, String)>::new());

    // Local by the caller, or by APP_MODE in the environment: .env is not read.
    let local = config(dir.path(), Some(Mode::Local), unreadable.clone());
    let source = KeySource::resolve(&local, &empty).await.unwrap();
    assert!(matches!(&source, KeySource::File(path) if path == &dir.path().join("secret.key")));
    let by_env = Environment::from_pairs([("APP_MODE", "local")]);
    let undecided = config(dir.path(), None, unreadable.clone());
    let source = KeySource::resolve(&undecided, &by_env).await.unwrap();
    assert!(matches!(source, KeySource::File(_)), "{source:?}");
    let blocking = BlockingKeySource::resolve(&undecided, &by_env).unwrap();
    assert!(matches!(blocking.source(), KeySource::File(_)));

    // Undecided, it is read (and here fails): the mode may come from it.
    let error = KeySource::resolve(&undecided, &empty).await.unwrap_err();
    assert!(
        matches!(error, KeysError::Secrets(SecretsError::EnvFileUnreadable { .. })),
        "{error:?}"
    );
    // A missing .env means local.
    let missing = config(dir.path(), None, dir.path().join("no-such.env"));
    let source = KeySource::resolve(&missing, &empty).await.unwrap();
    assert!(matches!(source, KeySource::File(_)), "{source:?}");
}

#[test]
fn local_mode_warns_as_data_creates_once_and_reads_through_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let empty = Environment::from_pairs(Vec::<(String, String)>::new());
    let mut source =
        BlockingKeySource::resolve(&config(d, Some(Mode::Local), d.join(".env")), &empty).unwrap();
    let key = Key::generate().unwrap();
    source.create(&key).unwrap();
    let error = source.create(&Key::generate().unwrap()).unwrap_err();
    assert!(matches!(error, KeysError::Crypto(CryptoError::KeyFileExists { .. })), "{error:?}");

    let key_file = d.join("secret.key");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loaded = source.load().unwrap();
    assert!(loaded.keyring.primary().same_as(&key));
    assert_eq!(
        loaded.warnings,
        [KeyWarning::LoosePermissions { path: key_file.clone(), bits: 0o044 }]
    );
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Writing: the keys, loaded under the key file's lock, with the load's warnings.
    let mut warned = Vec::new();
    let same = source
        .write(|w| warned.push(w.clone()), |keys| Ok::<_, KeysError>(keys.primary().same_as(&key)));
    assert!(same.unwrap() && warned.is_empty());

    // Stopped after re-encrypting the file: a pending rotation, reported as data.
    let file = encrypted(d, &key, "config");
    let stop = |step: &RotationStep| {
        if step.name() == "file-1" { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    };
    assert!(source.rotate(std::slice::from_ref(&file), stop).is_err());
    let loaded = source.load().unwrap();
    let next = KeyFile::load(&d.join("secret.key.next")).unwrap();
    assert_eq!(
        loaded.warnings,
        [KeyWarning::RotationInProgress { pending: KeyLocation::File(d.join("secret.key.next")) }]
    );
    let mut warned = Vec::new();
    let plain = source.read(|w| warned.push(w.clone()), |keys| decrypt_file_to_memory(keys, &file));
    assert_eq!(plain.unwrap().as_slice(), b"{\"n\": 1}");
    assert_eq!(warned, loaded.warnings);

    let report = source.rotate(std::slice::from_ref(&file), |_| ControlFlow::Continue(())).unwrap();
    assert!(report.resumed);
    let loaded = source.load().unwrap();
    assert!(loaded.warnings.is_empty() && loaded.keyring.primary().same_as(next.key()));
}

#[cfg(feature = "aws")]
#[tokio::test]
async fn app_mode_from_the_env_file_chooses_the_secret_and_its_settings() {
    let Some(moto) = globo_testkit::moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env_file = d.join(".env");
    std::fs::write(&env_file, emulator_dotenv(&moto.endpoint_url(), "prod")).unwrap();
    let empty = Environment::from_pairs(Vec::<(String, String)>::new());

    let source = KeySource::resolve(&config(d, None, env_file.clone()), &empty).await.unwrap();
    let KeySource::SecretsManager(store) = &source else { panic!("{source:?}") };
    assert_eq!(store.name(), "FERNET_KEY");
    assert!(source.describe().contains(&moto.endpoint_url()), "{}", source.describe());
    let key = Key::generate().unwrap();
    source.create(&key).await.unwrap();
    let error = source.create(&Key::generate().unwrap()).await.unwrap_err();
    assert!(matches!(error, KeysError::AlreadyExists { .. }), "{error:?}");
    let loaded = source.load().await.unwrap();
    assert!(loaded.keyring.primary().same_as(&key) && loaded.warnings.is_empty());
    let same = source.write(|_| {}, |keys| Ok::<_, KeysError>(keys.primary().same_as(&key)));
    assert!(same.await.unwrap());
    assert!(!d.join("secret.key").exists(), "prod mode wrote a key file");

    // The secret's name from the environment when the caller gives none; the caller's wins.
    let named = Environment::from_pairs([(globo_keys::KEY_SECRET_VAR, "OTHER_KEY")]);
    let source = KeySource::resolve(&config(d, None, env_file.clone()), &named).await.unwrap();
    assert!(matches!(&source, KeySource::SecretsManager(s) if s.name() == "OTHER_KEY"));
    let explicit = config(d, None, env_file.clone()).key_secret("THIRD_KEY");
    let source = KeySource::resolve(&explicit, &named).await.unwrap();
    assert!(matches!(&source, KeySource::SecretsManager(s) if s.name() == "THIRD_KEY"));

    // The caller's mode wins over .env's APP_MODE; so does the environment's.
    let local = config(d, Some(Mode::Local), env_file.clone());
    let source = KeySource::resolve(&local, &empty).await.unwrap();
    assert!(matches!(source, KeySource::File(_)));
    let local = Environment::from_pairs([("APP_MODE", "local")]);
    let source = KeySource::resolve(&config(d, None, env_file.clone()), &local).await.unwrap();
    assert!(matches!(source, KeySource::File(_)));
    // APP_MODE=local in .env: the key file.
    std::fs::write(&env_file, emulator_dotenv(&moto.endpoint_url(), "local")).unwrap();
    let source = KeySource::resolve(&config(d, None, env_file), &empty).await.unwrap();
    assert!(matches!(source, KeySource::File(_)));
}

#[cfg(feature = "aws")]
#[test]
fn prod_mode_blocking_rotates_warns_and_reads_with_the_keys_current_now() {
    let Some(moto) = globo_testkit::moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env_file = d.join(".env");
    std::fs::write(&env_file, emulator_dotenv(&moto.endpoint_url(), "local")).unwrap();
    let empty = Environment::from_pairs(Vec::<(String, String)>::new());
    // Prod by the caller, over .env's APP_MODE=local.
    let mut source =
        BlockingKeySource::resolve(&config(d, Some(Mode::Prod), env_file), &empty).unwrap();
    assert!(matches!(source.source(), KeySource::SecretsManager(_)));
    let old = Key::generate().unwrap();
    source.create(&old).unwrap();
    let file = encrypted(d, &old, "config");

    let stop = |step: &RotationStep| {
        if step.name() == "file-1" { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    };
    assert!(source.rotate(std::slice::from_ref(&file), stop).is_err());
    let loaded = source.load().unwrap();
    let pending = KeyLocation::Secret { name: "FERNET_KEY".into(), stage: "AWSPENDING".into() };
    assert_eq!(loaded.warnings, [KeyWarning::RotationInProgress { pending }]);
    assert!(!loaded.warnings[0].to_string().contains("app config"));

    // Run again, the rotation completes.
    let report = source.rotate(std::slice::from_ref(&file), |_| ControlFlow::Continue(())).unwrap();
    assert!(report.resumed);
    let current = source.load().unwrap();
    assert!(current.warnings.is_empty() && !current.keyring.primary().same_as(&old));

    // A reader holding the keys of before a whole rotation (run by another process, here a
    // thread with its own source) fails once, and the retry uses the keys current now.
    let mut other =
        BlockingKeySource::resolve(&config(d, Some(Mode::Prod), d.join(".env")), &empty).unwrap();
    let mut runs = 0;
    let plain = source.read(
        |_| {},
        |keys| {
            runs += 1;
            if runs == 1 {
                std::thread::scope(|s| {
                    s.spawn(|| {
                        other.rotate(std::slice::from_ref(&file), |_| ControlFlow::Continue(()))
                    })
                    .join()
                    .unwrap()
                    .unwrap();
                });
            }
            decrypt_file_to_memory(keys, &file)
        },
    );
    assert_eq!(plain.unwrap().as_slice(), b"{\"n\": 1}");
    assert_eq!(runs, 2);
    let loaded = source.load().unwrap();
    assert!(!loaded.keyring.primary().same_as(current.keyring.primary()));
}

#[cfg(not(feature = "aws"))]
#[test]
fn prod_mode_without_the_aws_feature_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = Environment::from_pairs(Vec::<(String, String)>::new());
    let prod = config(dir.path(), Some(Mode::Prod), dir.path().join(".env"));
    let error = BlockingKeySource::resolve(&prod, &empty).unwrap_err();
    assert!(matches!(error, KeysError::BackendNotCompiled), "{error:?}");
}

/// Blocking on a future inside a tokio runtime panics (and a runtime dropped there too): in
/// prod mode the blocking source refuses with a typed error instead; local mode needs no
/// runtime and works.
#[cfg(feature = "aws")]
#[test]
fn the_blocking_source_refuses_to_block_inside_an_async_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env_file = d.join(".env");
    // No request is sent: resolving builds the client only.
    std::fs::write(&env_file, emulator_dotenv("http://127.0.0.1:9", "prod")).unwrap();
    let empty = Environment::from_pairs(Vec::<(String, String)>::new());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let prod = config(d, Some(Mode::Prod), env_file.clone());
    let result = runtime.block_on(async { BlockingKeySource::resolve(&prod, &empty) });
    let error = result.unwrap_err();
    assert!(matches!(error, KeysError::InsideAsyncRuntime), "{error:?}");
    assert!(error.to_string().contains("inside an async runtime"), "{error}");
    let local = config(d, Some(Mode::Local), env_file);
    let result = runtime.block_on(async { BlockingKeySource::resolve(&local, &empty) });
    assert!(matches!(result.unwrap().source(), KeySource::File(_)));
    // Resolved outside, then called and dropped inside one: an error, not a panic.
    let source = BlockingKeySource::resolve(&prod, &empty).unwrap();
    runtime.block_on(async move {
        let error = source.load().unwrap_err();
        assert!(matches!(error, KeysError::InsideAsyncRuntime), "{error:?}");
        drop(source);
    });
}
