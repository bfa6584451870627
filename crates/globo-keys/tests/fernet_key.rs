//! The Fernet key held in Secrets Manager, against a real moto server: creation refuses to
//! replace a key, readers see AWSCURRENT + AWSPENDING, and rotation stopped after every step
//! leaves every file readable and completes when run again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use globo_crypto::{CryptoError, Key, RotationStep, decrypt_file_to_memory, encrypt_file};
use globo_emulator::Emulator;
use globo_keys::{AWS_PENDING, AWS_PREVIOUS, KeysError, SecretsManagerKeyStore};
use globo_secrets::{AwsProvider, SecretValue, VersionSelector, aws_config_loader};
use secrecy::ExposeSecret;

async fn provider(endpoint: &str) -> AwsProvider {
    let config = globo_testkit::emulator_config(aws_config_loader().await, endpoint).await;
    AwsProvider::from_sdk_config(&config).unwrap()
}

async fn stage_key(provider: &AwsProvider, name: &str, stage: &str) -> Option<Key> {
    match provider.get_version(name, &VersionSelector::Stage(stage.into())).await {
        Ok(SecretValue::Text(text)) => Some(Key::from_secret(&text).unwrap()),
        Ok(_) => panic!("binary"),
        Err(e) if e.is_not_found() => None,
        Err(e) => panic!("{e}"),
    }
}

fn files(dir: &Path, key: &Key) -> Vec<PathBuf> {
    (1..=2)
        .map(|i| {
            let plain = dir.join(format!("config{i}.json"));
            std::fs::write(&plain, format!("{{\"n\": {i}}}")).unwrap();
            let out = dir.join(format!("config{i}.enc"));
            encrypt_file(key, &plain, &out).unwrap();
            out
        })
        .collect()
}

/// A running emulator holding the key `FERNET_KEY` (`old`), and two files encrypted with it.
/// The emulator and the folder (`_moto`, `_dir`) are held until the test ends.
struct Rotation {
    _moto: Emulator,
    provider: AwsProvider,
    _dir: tempfile::TempDir,
    old: Key,
    store: SecretsManagerKeyStore,
    paths: Vec<PathBuf>,
}

async fn rotation() -> Option<Rotation> {
    let moto = globo_testkit::moto()?;
    let provider = provider(&moto.endpoint_url()).await;
    let dir = tempfile::tempdir().unwrap();
    let old = Key::generate().unwrap();
    let store = SecretsManagerKeyStore::new(provider.clone(), "FERNET_KEY").unwrap();
    store.create(&old).await.unwrap();
    let paths = files(dir.path(), &old);
    Some(Rotation { _moto: moto, provider, _dir: dir, old, store, paths })
}

#[tokio::test]
async fn init_refuses_to_replace_a_key_and_bad_content_is_not_echoed() {
    let Some(moto) = globo_testkit::moto() else { return };
    let provider = provider(&moto.endpoint_url()).await;
    let store = SecretsManagerKeyStore::new(provider.clone(), "FERNET_KEY").unwrap();
    let key = Key::generate().unwrap();
    store.create(&key).await.unwrap();
    let error = store.create(&Key::generate().unwrap()).await.unwrap_err();
    assert!(matches!(error, KeysError::AlreadyExists { .. }), "{error:?}");
    // Issue 12: the library says what to do (rotate), the CLI adds its command.
    assert!(error.to_string().contains("rotate it instead"), "{error}");
    assert!(!error.to_string().contains("app config"), "{error}");
    let loaded = store.load_keys().await.unwrap();
    assert!(loaded.current.same_as(&key) && !loaded.rotation_in_progress());
    assert!(!format!("{store:?}").contains(key.to_base64().expose_secret()));

    provider
        .client()
        .create_secret()
        .name("NOT_A_KEY")
        .secret_string("hunter2")
        .send()
        .await
        .unwrap();
    let store = SecretsManagerKeyStore::new(provider.clone(), "NOT_A_KEY").unwrap();
    let error = store.load_keys().await.unwrap_err();
    assert!(matches!(error, KeysError::NotAFernetKey { .. }), "{error:?}");
    assert!(!error.to_string().contains("hunter2"));

    let missing = SecretsManagerKeyStore::new(provider, "NO_SUCH_KEY").unwrap();
    assert!(missing.load_keys().await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn rotation_moves_the_stages_and_keeps_the_old_key_as_previous() {
    let Some(Rotation { _moto, provider, _dir, old, mut store, paths }) = rotation().await else {
        return;
    };

    let report = globo_crypto::rotate_with_store(&mut store, &paths, |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    assert!(!report.resumed);
    assert_eq!(report.reencrypted, paths);
    assert!(report.retired_key.is_none());

    let new = stage_key(&provider, "FERNET_KEY", "AWSCURRENT").await.unwrap();
    assert!(!new.same_as(&old));
    assert!(stage_key(&provider, "FERNET_KEY", AWS_PREVIOUS).await.unwrap().same_as(&old));
    assert!(stage_key(&provider, "FERNET_KEY", AWS_PENDING).await.is_none());
    for path in &paths {
        decrypt_file_to_memory(&new, path).unwrap();
        assert!(matches!(decrypt_file_to_memory(&old, path), Err(CryptoError::Decryption)));
    }
}

#[tokio::test]
async fn stopped_after_every_step_stays_readable_and_completes_on_rerun() {
    let Some(moto) = globo_testkit::moto() else { return };
    let provider = provider(&moto.endpoint_url()).await;
    let steps = ["next-key", "file-1", "file-2", "installed", "done"];
    for (n, stop_at) in steps.iter().enumerate() {
        let name = format!("FERNET_KEY_{n}");
        let dir = tempfile::tempdir().unwrap();
        let old = Key::generate().unwrap();
        let mut store = SecretsManagerKeyStore::new(provider.clone(), &name).unwrap();
        store.create(&old).await.unwrap();
        let paths = files(dir.path(), &old);

        let mut seen = Vec::new();
        let result = globo_crypto::rotate_with_store(&mut store, &paths, |step: &RotationStep| {
            seen.push(step.name());
            if step.name() == *stop_at { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .await;
        assert!(
            matches!(result, Err(CryptoError::RotationInterrupted { ref step }) if step == stop_at),
            "{stop_at}: {result:?}"
        );
        assert!(!seen.contains(&"retired".to_owned()), "{seen:?}");

        // Readers (AWSCURRENT + AWSPENDING) decrypt every file at this instant.
        let ring = store.load_keys().await.unwrap().keyring();
        for path in &paths {
            decrypt_file_to_memory(&ring, path).unwrap_or_else(|e| panic!("{stop_at}: {e}"));
        }

        // Rerunning completes it, with the same new key if one was staged (after `done` the
        // rotation is already complete: a rerun would be a new rotation).
        let staged = stage_key(&provider, &name, AWS_PENDING).await;
        if *stop_at != "done" {
            let report =
                globo_crypto::rotate_with_store(&mut store, &paths, |_| ControlFlow::Continue(()))
                    .await
                    .unwrap();
            assert!(report.resumed, "{stop_at}");
        }
        let current = stage_key(&provider, &name, "AWSCURRENT").await.unwrap();
        if let Some(staged) = staged {
            assert!(staged.same_as(&current), "{stop_at}: a second new key was made");
        }
        assert!(!current.same_as(&old), "{stop_at}");
        assert!(stage_key(&provider, &name, AWS_PENDING).await.is_none(), "{stop_at}");
        assert!(stage_key(&provider, &name, AWS_PREVIOUS).await.unwrap().same_as(&old));
        let loaded = store.load_keys().await.unwrap();
        assert!(!loaded.rotation_in_progress());
        for path in &paths {
            decrypt_file_to_memory(&current, path).unwrap_or_else(|e| panic!("{stop_at}: {e}"));
        }
    }
}

#[tokio::test]
async fn a_pending_version_replaced_by_someone_else_stops_promotion() {
    let Some(Rotation { _moto, provider, _dir, old, mut store, paths }) = rotation().await else {
        return;
    };
    let intruder = Key::generate().unwrap();
    let client = provider.client().clone();
    let result = globo_crypto::rotate_with_store(&mut store, &paths, |step: &RotationStep| {
        if step.name() == "file-2" {
            // A concurrent rotation stages its own key (simulated synchronously).
            let client = client.clone();
            let value = intruder.to_base64().expose_secret().to_owned();
            std::thread::spawn(move || {
                let runtime =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async {
                    client
                        .put_secret_value()
                        .secret_id("FERNET_KEY")
                        .secret_string(value)
                        .version_stages(AWS_PENDING)
                        .send()
                        .await
                        .unwrap();
                });
            })
            .join()
            .unwrap();
        }
        ControlFlow::Continue(())
    })
    .await;
    let error = result.unwrap_err();
    assert!(matches!(error, CryptoError::KeyStore { .. }), "{error:?}");
    let chain = format!("{error}: {}", std::error::Error::source(&error).unwrap());
    assert!(chain.contains("another rotation"), "{chain}");
    // Nothing was promoted: AWSCURRENT still holds the old key.
    assert!(stage_key(&provider, "FERNET_KEY", "AWSCURRENT").await.unwrap().same_as(&old));
}
