//! `app users init-pepper`, `app users pepper`, `app users rotate-pepper`, and the pepper in
//! `register` / `verify`: local mode (`.env`) and prod mode (a real moto server).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Output;

const LAB_PASSWORD: &str = "an old user's long passphrase";
const NEW_PASSWORD: &str = "a brand new long passphrase";

fn app(dir: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut command = globo_testkit::isolated_command(env!("CARGO_BIN_EXE_app"), dir);
    command
        .args(args)
        .env("GLOBO_PASSWORD_PROFILE", "test-only-insecure")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied());
    globo_testkit::output_guarded(&mut command, Some(stdin.as_bytes()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "status {} stderr: {}", o.status, text(&o.stderr));
    text(&o.stdout)
}

fn failed(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(1), "stdout: {} stderr: {}", text(&o.stdout), text(&o.stderr));
    text(&o.stderr)
}

fn record(dir: &Path, name: &str) -> String {
    let users: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("users.json")).unwrap()).unwrap();
    users[name].as_str().unwrap().to_owned()
}

fn verify(dir: &Path, name: &str, password: &str, env: &[(&str, &str)]) -> Output {
    app(dir, &["verify", name, "--password-stdin"], &format!("{password}\n"), env)
}

/// The whole local cycle: a lab user, a pepper created, new and old records peppered, a
/// rotation, and logins throughout; the pepper never shows on stdout or stderr.
#[test]
fn local_pepper_cycle_from_init_to_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join(".env"), "APP_MODE=local\nOTHER=kept\n").unwrap();
    // A user registered before any pepper: an unpeppered record.
    ok(&app(d, &["register", "lab", "--password-stdin"], &format!("{LAB_PASSWORD}\n"), &[]));
    let lab = record(d, "lab");
    assert!(!lab.contains("keyid"), "{lab}");

    // `users pepper` before there is a pepper: the library's message and the CLI's hint.
    let err = failed(&app(d, &["users", "pepper"], "", &[]));
    assert!(err.contains("holds no password pepper"), "{err}");
    assert!(err.contains("hint: create it with `app users init-pepper`"), "{err}");

    let out = ok(&app(d, &["users", "init-pepper"], "", &[]));
    assert!(
        out.starts_with("Created the password pepper (version 1) in variable 'PASSWORD_PEPPER'"),
        "{out}"
    );
    let env_text = std::fs::read_to_string(d.join(".env")).unwrap();
    assert!(env_text.starts_with("APP_MODE=local\nOTHER=kept\nPASSWORD_PEPPER='1:"), "{env_text}");
    let pepper = env_text.lines().last().unwrap()["PASSWORD_PEPPER='".len()..]
        .trim_end_matches('\'')
        .to_owned();
    let err = failed(&app(d, &["users", "init-pepper"], "", &[]));
    assert!(err.contains("already holds a password pepper"), "{err}");
    assert_eq!(std::fs::read_to_string(d.join(".env")).unwrap(), env_text);

    // New records are peppered; the lab record still verifies (and is peppered by the login).
    ok(&app(d, &["register", "alice", "--password-stdin"], &format!("{NEW_PASSWORD}\n"), &[]));
    assert!(record(d, "alice").starts_with("$argon2id$v=19$m=8,t=1,p=1,keyid=MQ$"));
    ok(&verify(d, "alice", NEW_PASSWORD, &[]));
    failed(&verify(d, "alice", LAB_PASSWORD, &[]));
    // Offline: the lab record is peppered without its password.
    let out = ok(&app(d, &["users", "pepper"], "", &[]));
    assert_eq!(
        out,
        "Peppered 1 records with pepper version 1 (1 already peppered) in 'users.json'.\n"
    );
    assert!(record(d, "lab").contains(",keyid=MQ$"));
    ok(&verify(d, "lab", LAB_PASSWORD, &[]));

    // Without the pepper (another variable named), a peppered record cannot be checked.
    let err = failed(&verify(d, "alice", NEW_PASSWORD, &[("GLOBO_PEPPER_SECRET", "NO_SUCH")]));
    assert!(
        err.contains("peppered with version '1' of the pepper, which is not configured"),
        "{err}"
    );

    // Rotation: every record moved to version 2, version 1 dropped from .env.
    let out = ok(&app(d, &["users", "rotate-pepper"], "", &[]));
    assert!(out.starts_with("Moved 2 records to pepper version 2"), "{out}");
    for name in ["lab", "alice"] {
        assert!(record(d, name).contains(",keyid=Mg$"), "{name}");
    }
    let env_text = std::fs::read_to_string(d.join(".env")).unwrap();
    assert!(env_text.starts_with("APP_MODE=local\nOTHER=kept\nPASSWORD_PEPPER='2:"), "{env_text}");
    assert!(!env_text.contains(",1:"), "{env_text}");
    ok(&verify(d, "lab", LAB_PASSWORD, &[]));
    ok(&verify(d, "alice", NEW_PASSWORD, &[]));
    // The pepper never appears in any output.
    for args in [&["users", "pepper"][..], &["users", "rotate-pepper"][..]] {
        let o = app(d, args, "", &[]);
        assert!(!text(&o.stdout).contains(&pepper) && !text(&o.stderr).contains(&pepper));
    }
}

/// Prod mode: the pepper is the Secrets Manager secret, created, used and rotated through
/// the real binary against moto; `.env` is never written.
#[test]
fn prod_pepper_lives_in_secrets_manager() {
    let Some(moto) = globo_testkit::moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dotenv = format!(
        "APP_MODE=prod\nAWS_ENDPOINT_URL={}\nAWS_REGION=us-east-1\n\
         AWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY=testing\n",
        moto.endpoint_url()
    );
    std::fs::write(d.join(".env"), &dotenv).unwrap();
    // No secret yet: register works unpeppered.
    ok(&app(d, &["register", "lab", "--password-stdin"], &format!("{LAB_PASSWORD}\n"), &[]));
    assert!(!record(d, "lab").contains("keyid"));
    let out = ok(&app(d, &["users", "init-pepper"], "", &[]));
    assert!(out.contains("in secret 'PASSWORD_PEPPER' in AWS Secrets Manager"), "{out}");
    ok(&app(d, &["register", "alice", "--password-stdin"], &format!("{NEW_PASSWORD}\n"), &[]));
    assert!(record(d, "alice").contains(",keyid=MQ$"));
    ok(&app(d, &["users", "rotate-pepper"], "", &[]));
    for (name, password) in [("lab", LAB_PASSWORD), ("alice", NEW_PASSWORD)] {
        assert!(record(d, name).contains(",keyid=Mg$"), "{name}");
        ok(&verify(d, name, password, &[]));
    }
    assert_eq!(std::fs::read_to_string(d.join(".env")).unwrap(), dotenv);
}
