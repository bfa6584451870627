//! The local provider and the factory's mode resolution, with injected environments only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use globo_secrets::{
    EnvFile, Environment, LocalProvider, Mode, ModeOrigin, SecretValue, SecretsError,
    SecretsProvider, provider_for, read_env_file, resolve_mode,
};
use secrecy::ExposeSecret;

fn env_file(dir: &Path, content: &str) -> PathBuf {
    let path = dir.join(".env");
    globo_fs::write_atomic(&path, content.as_bytes()).unwrap();
    path
}

const LAB_ENV: &str = "# Local development secrets\nAPP_MODE=local\n\
    PAYMENT_GATEWAY_API_KEY=local-dev-payment-key-123456\n\
    EMAIL_SERVICE_API_KEY=\"quoted value # not a comment\"\n\
    export FERNET_KEY='single'\n";

#[tokio::test]
async fn reads_dotenv_values_like_python_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    let provider =
        LocalProvider::new(env_file(dir.path(), LAB_ENV), &Environment::empty()).unwrap();
    let key = provider.get("PAYMENT_GATEWAY_API_KEY").await.unwrap();
    assert_eq!(key.expose_secret(), "local-dev-payment-key-123456");
    let email = provider.get("EMAIL_SERVICE_API_KEY").await.unwrap();
    assert_eq!(email.expose_secret(), "quoted value # not a comment");
    assert_eq!(provider.get("FERNET_KEY").await.unwrap().expose_secret(), "single");
}

#[tokio::test]
async fn the_environment_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let env = Environment::from_pairs([("PAYMENT_GATEWAY_API_KEY", "from-docker")]);
    let provider = LocalProvider::new(env_file(dir.path(), LAB_ENV), &env).unwrap();
    let key = provider.get("PAYMENT_GATEWAY_API_KEY").await.unwrap();
    assert_eq!(key.expose_secret(), "from-docker");
    // And the process environment was not touched by reading the file.
    assert!(std::env::var_os("EMAIL_SERVICE_API_KEY").is_none());
}

#[tokio::test]
async fn a_missing_secret_has_the_labs_message() {
    let dir = tempfile::tempdir().unwrap();
    let provider =
        LocalProvider::new(env_file(dir.path(), LAB_ENV), &Environment::empty()).unwrap();
    let error = provider.get("MISSING_KEY").await.unwrap_err();
    assert!(error.is_not_found());
    assert_eq!(
        error.to_string(),
        "Secret 'MISSING_KEY' not found in environment. Add it to your .env file or switch to \
         prod mode."
    );
}

/// Issue 11 item 17: a missing `.env` was reported only as a missing secret ("Add it to your
/// .env file"), which sends the user to edit a file that is not there.
#[tokio::test]
async fn a_missing_dotenv_is_fine_but_a_secret_then_missing_says_the_file_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let env = Environment::from_pairs([("ONLY_IN_ENV", "v")]);
    let path = dir.path().join("no.env");
    let provider = LocalProvider::new(&path, &env).unwrap();
    assert_eq!(provider.get("ONLY_IN_ENV").await.unwrap().expose_secret(), "v");
    let error = provider.get("PAYMENT_GATEWAY_API_KEY").await.unwrap_err();
    assert!(error.is_not_found());
    assert!(matches!(error, SecretsError::NotFoundNoEnvFile { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("Secret 'PAYMENT_GATEWAY_API_KEY' not found"), "{message}");
    assert!(
        message.contains(&format!("the .env file '{}' does not exist", path.display())),
        "{message}"
    );
}

/// Issue 11 item 6: values as python-dotenv 1.2 (the lab's loader) gives them. dotenvy
/// expanded `$`, unescaped backslashes and refused lines python-dotenv reads.
#[test]
fn values_are_the_ones_python_dotenv_gives_the_lab() {
    let dir = tempfile::tempdir().unwrap();
    let path = env_file(
        dir.path(),
        "\u{feff}FIRST=after-a-bom\nPASSWORD=pa$$word\nKEY=Zx8$kP!q\nDOLLAR=\"$\"\n\
         SPACED=two words  # comment\nWIN=C:\\new\\table\r\nexport EXPORTED=yes\n",
    );
    let entries = read_env_file(&path).unwrap().unwrap();
    let got: Vec<(&str, &str)> =
        entries.iter().map(|(k, v)| (k.as_str(), v.expose_secret())).collect();
    assert_eq!(
        got,
        [
            ("FIRST", "after-a-bom"),
            ("PASSWORD", "pa$$word"),
            ("KEY", "Zx8$kP!q"),
            ("DOLLAR", "$"),
            ("SPACED", "two words"),
            ("WIN", "C:\\new\\table"),
            ("EXPORTED", "yes"),
        ]
    );
}

/// Issue 11 item 7: a key defined twice takes its last value everywhere, `APP_MODE`
/// included; an appended `APP_MODE=prod` used to leave the process in local mode.
#[tokio::test]
async fn the_last_definition_of_a_key_wins_app_mode_included() {
    let dir = tempfile::tempdir().unwrap();
    let path = env_file(dir.path(), "APP_MODE=local\nTOKEN=old\nTOKEN=new\nAPP_MODE=prod\n");
    assert_eq!(resolve_mode(None, &path, &Environment::empty()).unwrap(), Mode::Prod);
    let provider = LocalProvider::new(&path, &Environment::empty()).unwrap();
    assert_eq!(provider.get("TOKEN").await.unwrap().expose_secret(), "new");
    let entries = read_env_file(&path).unwrap().unwrap();
    assert_eq!(entries.iter().filter(|(k, _)| k == "APP_MODE").count(), 1);
}

/// Issue 11 item 7: an `APP_MODE` that is set but not UTF-8 is an error, not "unset" (which
/// fell back to the file's mode, or to local).
#[cfg(unix)]
#[tokio::test]
async fn an_app_mode_that_is_not_utf8_is_an_error() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = env_file(dir.path(), "APP_MODE=local\nTOKEN=from-file\n");
    let env = Environment::from_os_pairs([
        (OsString::from("APP_MODE"), OsString::from_vec(b"pro\xffd".to_vec())),
        (OsString::from("TOKEN"), OsString::from_vec(b"\xfe".to_vec())),
    ]);
    assert!(env.is_set_but_not_utf8("APP_MODE"));
    let error = resolve_mode(None, &path, &env).unwrap_err();
    assert!(
        matches!(&error, SecretsError::EnvVarNotUtf8 { name } if name == "APP_MODE"),
        "{error:?}"
    );
    assert!(error.to_string().contains("APP_MODE"), "{error}");
    assert!(error.to_string().contains("not valid UTF-8"), "{error}");
    assert!(provider_for(None, &path, &env).await.is_err());
    // An explicit mode does not need APP_MODE; the unreadable variable still wins over the file.
    let local = provider_for(Some(Mode::Local), &path, &env).await.unwrap();
    let error = local.get("TOKEN").await.unwrap_err();
    assert!(error.to_string().contains("not valid UTF-8"), "{error}");
}

/// Issue 11 item 7: one reading of the file serves the mode and the values (a pipe can be
/// read once).
#[tokio::test]
async fn one_reading_of_the_file_serves_mode_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = env_file(dir.path(), "APP_MODE=local\nTOKEN=t\n");
    let file = EnvFile::read(&path, &Environment::empty()).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(resolve_mode(None, &file, &Environment::empty()).unwrap(), Mode::Local);
    let provider = provider_for(None, &file, &Environment::empty()).await.unwrap();
    assert_eq!(provider.get("TOKEN").await.unwrap().expose_secret(), "t");
    // A path as text works as well (the README's `provider_for(None, ".env", &env)`).
    let missing = dir.path().join("missing.env");
    let text = missing.to_str().unwrap();
    assert_eq!(resolve_mode(None, text, &Environment::empty()).unwrap(), Mode::Local);
}

#[test]
fn a_file_that_is_not_utf8_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::fs::write(&path, b"A=1\r\nB=secret\xff\n").unwrap();
    let error = read_env_file(&path).unwrap_err();
    assert!(matches!(error, SecretsError::EnvFileNotUtf8 { line: 2, .. }), "{error:?}");
    assert!(!error.to_string().contains("secret"), "{error}");
}

#[tokio::test]
async fn an_empty_variable_counts_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let provider =
        LocalProvider::new(env_file(dir.path(), "EMPTY=\n"), &Environment::empty()).unwrap();
    assert!(matches!(provider.get("EMPTY").await, Err(SecretsError::NotFoundLocal { .. })));
}

#[test]
fn a_malformed_line_names_the_file_and_line_but_not_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = env_file(dir.path(), "GOOD=1\n# comment\n\nBAD LINE hunter2-secret\nLATER=2\n");
    let error = LocalProvider::new(&path, &Environment::empty()).unwrap_err();
    assert!(matches!(error, SecretsError::MalformedEnvFile { line: 4, .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("line 4"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!format!("{error:?}").contains("hunter2"));
}

#[tokio::test]
async fn invalid_names_are_rejected() {
    let provider = LocalProvider::new("/nonexistent/.env", &Environment::empty()).unwrap();
    for name in ["", "A=B", "WITH SPACE", "NUL\0"] {
        let error = provider.get(name).await.unwrap_err();
        assert!(matches!(error, SecretsError::InvalidName { .. }), "{name:?}: {error:?}");
    }
}

#[test]
fn debug_output_is_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let env = Environment::from_pairs([("TOKEN", "tok-value-123")]);
    let provider = LocalProvider::new(env_file(dir.path(), LAB_ENV), &env).unwrap();
    for text in [format!("{provider:?}"), format!("{env:?}")] {
        assert!(!text.contains("tok-value-123"), "{text}");
        assert!(!text.contains("local-dev-payment-key"), "{text}");
    }
    let value = SecretValue::from("tok-value-123");
    assert_eq!(format!("{value:?}"), "SecretValue::Text([REDACTED])");
}

#[test]
fn mode_resolution_order() {
    let dir = tempfile::tempdir().unwrap();
    let no_file = dir.path().join("missing.env");
    let prod_file = env_file(dir.path(), "APP_MODE=prod\n");
    let empty = Environment::empty();
    let env_local = Environment::from_pairs([("APP_MODE", "local")]);
    // Default.
    assert_eq!(resolve_mode(None, &no_file, &empty).unwrap(), Mode::Local);
    // .env.
    assert_eq!(resolve_mode(None, &prod_file, &empty).unwrap(), Mode::Prod);
    // The environment over .env.
    assert_eq!(resolve_mode(None, &prod_file, &env_local).unwrap(), Mode::Local);
    // Explicit over everything.
    assert_eq!(resolve_mode(Some(Mode::Prod), &no_file, &env_local).unwrap(), Mode::Prod);
}

#[tokio::test]
async fn an_unknown_mode_is_an_error_not_a_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let path = env_file(dir.path(), "APP_MODE=prd\nPAYMENT_GATEWAY_API_KEY=dev\n");
    let error = provider_for(None, &path, &Environment::empty()).await.unwrap_err();
    let SecretsError::UnknownMode { value, origin } = &error else { panic!("{error:?}") };
    assert_eq!(value, &None, "a mode read from .env is never repeated");
    assert_eq!(origin, &ModeOrigin::EnvFile { path: path.clone(), line: Some(1) });
    assert_eq!(
        error.to_string(),
        format!(
            "malformed configuration: unknown mode (value not shown) in APP_MODE at '{}' line 1: \
             use 'local' or 'prod'",
            path.display()
        )
    );
    let env = Environment::from_pairs([("APP_MODE", "Production")]);
    assert!(provider_for(None, &dir.path().join("none"), &env).await.is_err());
    assert!("PROD".parse::<Mode>().is_err());
}

/// Issue 12 point 4: an unknown mode is its own variant, with the value (only when it is a
/// plain word) and where it came from as fields; the message is the one it always was.
#[test]
fn an_unknown_mode_is_typed_with_its_origin_and_keeps_its_message() {
    let error = "prd".parse::<Mode>().unwrap_err();
    assert!(
        matches!(&error, SecretsError::UnknownMode { value: Some(v), origin: ModeOrigin::Text } if v == "prd"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "malformed configuration: unknown mode 'prd': use 'local' or 'prod'"
    );

    let env = Environment::from_pairs([("APP_MODE", "prod\nSECRET=hunter2")]);
    let error = resolve_mode(None, Path::new("missing.env"), &env).unwrap_err();
    assert!(
        matches!(
            &error,
            SecretsError::UnknownMode { value: None, origin: ModeOrigin::Environment }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "malformed configuration: unknown mode (value not shown) in the environment variable \
         APP_MODE: use 'local' or 'prod'"
    );
}

/// Issue 12 point 3: without the `aws` feature prod mode is a typed error naming the missing
/// feature, never a fallback to local (the file's values are not served).
#[cfg(not(feature = "aws"))]
#[tokio::test]
async fn prod_mode_without_the_aws_feature_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = env_file(dir.path(), "APP_MODE=prod\nPAYMENT_GATEWAY_API_KEY=dev\n");
    for explicit in [None, Some(Mode::Prod)] {
        let error = provider_for(explicit, &path, &Environment::empty()).await.err().unwrap();
        assert!(
            matches!(
                &error,
                SecretsError::BackendNotBuilt {
                    mode: Mode::Prod,
                    backend: "AWS Secrets Manager",
                    feature: "aws"
                }
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "prod mode reads secrets from AWS Secrets Manager, which this build does not \
             include (the 'aws' feature of globo-secrets is off)"
        );
    }
    // Local mode and the mode resolution itself need no backend.
    assert_eq!(resolve_mode(None, &path, &Environment::empty()).unwrap(), Mode::Prod);
    let local = provider_for(Some(Mode::Local), &path, &Environment::empty()).await.unwrap();
    assert_eq!(local.get("PAYMENT_GATEWAY_API_KEY").await.unwrap().expose_secret(), "dev");
}

#[tokio::test]
async fn the_factory_builds_a_local_provider() {
    let dir = tempfile::tempdir().unwrap();
    let path = env_file(dir.path(), LAB_ENV);
    let provider = provider_for(None, &path, &Environment::empty()).await.unwrap();
    let key = provider.get("PAYMENT_GATEWAY_API_KEY").await.unwrap();
    assert_eq!(key.expose_secret(), "local-dev-payment-key-123456");
}

#[test]
fn an_unreadable_env_file_is_a_precise_error() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where the file should be: exists, cannot be read as a file.
    let error = LocalProvider::new(dir.path(), &Environment::empty()).unwrap_err();
    assert!(matches!(error, SecretsError::EnvFileUnreadable { .. }), "{error:?}");
    assert!(error.to_string().contains(&dir.path().display().to_string()), "{error}");
}

/// Review B1: a mode read from `.env` is never repeated in the error. `APP_MODE='prod` opens a
/// quote that a later `'` closes, so python-dotenv (and globo) read `APP_MODE` as the lines
/// between, a password included.
#[tokio::test]
async fn an_unknown_mode_from_the_file_is_named_by_line_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let path = env_file(dir.path(), "A=1\nAPP_MODE='prod\nDB_PASSWORD=hunter2\nX='\n");
    let error = resolve_mode(None, &path, &Environment::empty()).unwrap_err();
    let message = error.to_string();
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!message.contains("DB_PASSWORD"), "{message}");
    assert!(message.contains("APP_MODE"), "{message}");
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("'local' or 'prod'"), "{message}");
    // From the environment: a plain word is repeated (it helps spot a typo), anything else not.
    let env = Environment::from_pairs([("APP_MODE", "prd")]);
    let message = resolve_mode(None, &path, &env).unwrap_err().to_string();
    assert!(message.contains("'prd' in the environment variable APP_MODE"), "{message}");
    let env = Environment::from_pairs([("APP_MODE", "prod\nDB_PASSWORD=hunter2")]);
    let message = resolve_mode(None, &path, &env).unwrap_err().to_string();
    assert!(!message.contains("hunter2"), "{message}");
    assert!(message.contains("environment variable APP_MODE"), "{message}");
}

/// Review B2: with `PYTHON_DOTENV_DISABLED` true, python-dotenv 1.2's `load_dotenv` skips
/// `.env` (the lab takes nothing from it: no secret, no `APP_MODE`); globo does the same.
#[tokio::test]
async fn python_dotenv_disabled_skips_the_env_file_as_the_lab_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = env_file(dir.path(), "APP_MODE=prod\nTOKEN=from-file\n");
    // python-dotenv's `_load_dotenv_disabled`: casefolded value in {1, true, t, yes, y}.
    for value in ["1", "true", "TRUE", "t", "yes", "Yes", "y", "Y", "ye\u{17f}"] {
        let env = Environment::from_pairs([("PYTHON_DOTENV_DISABLED", value)]);
        let file = EnvFile::read(&path, &env).unwrap();
        assert!(file.disabled() && !file.exists() && file.get("TOKEN").is_none(), "{value}");
        assert_eq!(resolve_mode(None, &path, &env).unwrap(), Mode::Local, "{value}");
        let provider = provider_for(None, &path, &env).await.unwrap();
        let error = provider.get("TOKEN").await.unwrap_err();
        assert!(matches!(error, SecretsError::NotFoundEnvFileDisabled { .. }), "{error:?}");
        assert!(error.to_string().contains("PYTHON_DOTENV_DISABLED"), "{error}");
        assert!(error.is_not_found());
    }
    for value in ["0", "false", "no", "on", "", " 1", "yess"] {
        let env = Environment::from_pairs([("PYTHON_DOTENV_DISABLED", value)]);
        let file = EnvFile::read(&path, &env).unwrap();
        assert!(!file.disabled(), "{value:?}");
        assert_eq!(file.get("TOKEN").unwrap().expose_secret(), "from-file", "{value:?}");
        assert_eq!(resolve_mode(None, &path, &env).unwrap(), Mode::Prod, "{value:?}");
    }
}

/// Review B8: a NUL byte in a key or value makes the lab's `load_dotenv` fail
/// (`os.environ` refuses it); globo refuses the file with the line, never the content.
#[test]
fn a_nul_byte_in_a_key_or_value_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    for (text, line) in
        [("A=1\nB=hun\0ter2\n", 2), ("A=1\n# c\nC\0D=hunter2\n", 3), ("X=1\nY=\"a\nb\0c\"\n", 2)]
    {
        let path = env_file(dir.path(), text);
        let error = EnvFile::read(&path, &Environment::empty()).unwrap_err();
        assert!(
            matches!(error, SecretsError::EnvFileNulByte { line: l, .. } if l == line),
            "{text:?}: {error:?}"
        );
        let message = error.to_string();
        assert!(message.contains(&format!("line {line}")) && message.contains("NUL"), "{message}");
        assert!(!message.contains("hun") && !message.contains("ter2"), "{message}");
    }
    // A NUL in a comment or in a key without a value sets nothing in the lab either.
    let path = env_file(dir.path(), "A=1 # c\0mment\nB\0C\n");
    assert_eq!(
        EnvFile::read(&path, &Environment::empty()).unwrap().get("A").unwrap().expose_secret(),
        "1"
    );
}

/// Review B8: `Parsed`'s Debug names no key: a pasted secret without `KEY=` is a key.
#[test]
fn parsed_debug_shows_counts_not_names() {
    let parsed = globo_secrets::dotenv::parse("A=1\nhunter2\n", &Environment::empty());
    let debug = format!("{parsed:?}");
    assert!(!debug.contains("hunter2") && !debug.contains('A'), "{debug}");
    assert!(debug.contains("keys: 2") && debug.contains("keys_without_value: 1"), "{debug}");
}
