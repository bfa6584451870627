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

/// The 8-character version id that follows `prefix` in `out`.
fn id_after(out: &str, prefix: &str) -> String {
    let start = out.find(prefix).unwrap_or_else(|| panic!("{prefix:?} in {out:?}")) + prefix.len();
    let id = out[start..].get(..8).unwrap().to_owned();
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'), "{out}");
    id
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
    // Review F, point 8: `rotate-pepper` too (before: "fix the cause and run ... again").
    let err = failed(&app(d, &["users", "rotate-pepper"], "", &[]));
    assert!(err.contains("holds no password pepper"), "{err}");
    assert!(err.contains("hint: create it with `app users init-pepper`"), "{err}");
    assert!(!err.contains("fix the cause"), "{err}");

    let out = ok(&app(d, &["users", "init-pepper"], "", &[]));
    let v1 = id_after(&out, "Created the password pepper (version ");
    assert!(
        out.starts_with(&format!(
            "Created the password pepper (version {v1}) in variable 'PASSWORD_PEPPER'"
        )),
        "{out}"
    );
    let env_text = std::fs::read_to_string(d.join(".env")).unwrap();
    assert!(env_text.starts_with("APP_MODE=local\nOTHER=kept\nPASSWORD_PEPPER='"), "{env_text}");
    let pepper = env_text.lines().last().unwrap()["PASSWORD_PEPPER='".len()..]
        .trim_end_matches('\'')
        .to_owned();
    let err = failed(&app(d, &["users", "init-pepper"], "", &[]));
    assert!(err.contains("already holds a password pepper"), "{err}");
    assert_eq!(std::fs::read_to_string(d.join(".env")).unwrap(), env_text);

    // New records are peppered; the lab record still verifies (and is peppered by the login).
    ok(&app(d, &["register", "alice", "--password-stdin"], &format!("{NEW_PASSWORD}\n"), &[]));
    assert!(record(d, "alice").starts_with(&format!("$argon2id$v=19$m=8,t=1,p=1,keyid={v1}$")));
    ok(&verify(d, "alice", NEW_PASSWORD, &[]));
    failed(&verify(d, "alice", LAB_PASSWORD, &[]));
    // Offline: the lab record is peppered without its password.
    let out = ok(&app(d, &["users", "pepper"], "", &[]));
    assert_eq!(
        out,
        format!(
            "Peppered 1 records with pepper version {v1} (1 already peppered) in 'users.json'.\n"
        )
    );
    assert!(record(d, "lab").contains(&format!(",keyid={v1}$")));
    ok(&verify(d, "lab", LAB_PASSWORD, &[]));

    // Without the pepper (another variable named), a peppered record cannot be checked.
    let err = failed(&verify(d, "alice", NEW_PASSWORD, &[("GLOBO_PEPPER_SECRET", "NO_SUCH")]));
    assert!(
        err.contains(&format!(
            "peppered with version '{v1}' of the pepper, which is not configured"
        )),
        "{err}"
    );
    // ... and the CLI says where it looked and what sets it (review point 3).
    assert!(
        err.contains(&format!(
            "hint: the password pepper found there has no version '{v1}' in variable 'NO_SUCH' \
             (the environment, else '.env'); set it there, or point to where it is kept with \
             --pepper-secret NAME (GLOBO_PEPPER_SECRET), --mode (APP_MODE) and --env-file"
        )),
        "{err}"
    );
    // Without the pepper, nothing new is written into the peppered file (review point 3).
    let before = std::fs::read(d.join("users.json")).unwrap();
    let no_pepper = [("GLOBO_PEPPER_SECRET", "NO_SUCH")];
    let err = failed(&app(
        d,
        &["register", "bob", "--password-stdin"],
        &format!("{NEW_PASSWORD}\n"),
        &no_pepper,
    ));
    assert!(err.contains("holds peppered records, but no password pepper is configured"), "{err}");
    assert!(err.contains("hint: no password pepper was found in variable 'NO_SUCH'"), "{err}");
    let err = failed(&app(
        d,
        &["users", "reset", "lab", "--password-stdin"],
        &format!("{NEW_PASSWORD}\n"),
        &no_pepper,
    ));
    assert!(err.contains("hint: no password pepper was found in variable 'NO_SUCH'"), "{err}");
    assert_eq!(std::fs::read(d.join("users.json")).unwrap(), before);

    // Rotation: every record moved to a new version, the old one dropped from .env.
    let out = ok(&app(d, &["users", "rotate-pepper"], "", &[]));
    let v2 = id_after(&out, "Moved 2 records to pepper version ");
    assert_ne!(v2, v1);
    // Review F, point 7: the CLI says whether a version was added.
    assert!(out.starts_with(&format!("Added pepper version {v2} as the current one.\n")), "{out}");
    assert!(out.ends_with(&format!("in 'users.json'; retired {v1}.\n")), "{out}");
    for name in ["lab", "alice"] {
        assert!(record(d, name).contains(&format!(",keyid={v2}$")), "{name}");
    }
    let env_text = std::fs::read_to_string(d.join(".env")).unwrap();
    assert!(env_text.starts_with("APP_MODE=local\nOTHER=kept\nPASSWORD_PEPPER='"), "{env_text}");
    assert!(!env_text.contains(','), "{env_text}");
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
    let v1 = id_after(&out, "Created the password pepper (version ");
    ok(&app(d, &["register", "alice", "--password-stdin"], &format!("{NEW_PASSWORD}\n"), &[]));
    assert!(record(d, "alice").contains(&format!(",keyid={v1}$")));
    let out = ok(&app(d, &["users", "rotate-pepper"], "", &[]));
    let v2 = id_after(&out, "Moved 2 records to pepper version ");
    assert!(out.ends_with(&format!("; retired {v1}.\n")), "{out}");
    for (name, password) in [("lab", LAB_PASSWORD), ("alice", NEW_PASSWORD)] {
        assert!(record(d, name).contains(&format!(",keyid={v2}$")), "{name}");
        ok(&verify(d, name, password, &[]));
    }
    assert_eq!(std::fs::read_to_string(d.join(".env")).unwrap(), dotenv);
}

/// Review points 4 and 2: records under a version the pepper does not hold (here, the
/// `.env` line replaced by a new key) are never counted as peppered by `users pepper`, and
/// `rotate-pepper` names them and moves nothing.
#[test]
fn records_under_a_version_not_configured_are_named_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join(".env"), "APP_MODE=local\n").unwrap();
    ok(&app(d, &["users", "init-pepper"], "", &[]));
    ok(&app(d, &["register", "alice", "--password-stdin"], &format!("{NEW_PASSWORD}\n"), &[]));
    let alice = record(d, "alice");
    // A lost .env: a new key, which must not pass for the old version.
    std::fs::write(
        d.join(".env"),
        "APP_MODE=local\nPASSWORD_PEPPER=ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n",
    )
    .unwrap();
    let o = app(d, &["users", "pepper"], "", &[]);
    let out = ok(&o);
    assert!(out.starts_with("Peppered 0 records with pepper version "), "{out}");
    assert!(out.ends_with("(0 already peppered) in 'users.json'.\n"), "{out}");
    let err = text(&o.stderr);
    assert!(
        err.contains("warning: 1 records name pepper versions that are not configured and were left as they are (those users cannot log in until the version is configured again): 'alice'"),
        "{err}"
    );
    let err = failed(&app(d, &["users", "rotate-pepper"], "", &[]));
    assert!(
        err.contains("1 records name pepper versions that variable 'PASSWORD_PEPPER'"),
        "{err}"
    );
    assert!(
        err.contains("so they cannot be moved: 'alice'; nothing was moved or retired"),
        "{err}"
    );
    assert_eq!(record(d, "alice"), alice);
    // A login is an operational failure naming the version, never a wrong password.
    let err = failed(&verify(d, "alice", NEW_PASSWORD, &[]));
    assert!(err.contains("which is not configured"), "{err}");
    assert!(!err.contains("Invalid username or password"), "{err}");
}

/// Review G, point 5: a record under a version the pepper lacks (here: the wrong pepper, or
/// a record copied from another users file) refuses other writes with its name, a count and
/// a hint naming every cause; resetting that very record is allowed. Before, the reset was
/// refused too, and the hint spoke only of a rotation.
#[test]
fn a_record_under_a_version_the_pepper_lacks_is_named_and_can_be_reset() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join(".env"), "APP_MODE=local\n").unwrap();
    ok(&app(d, &["users", "init-pepper"], "", &[]));
    ok(&app(d, &["register", "alice", "--password-stdin"], &format!("{NEW_PASSWORD}\n"), &[]));
    // Another pepper: alice's record now names a version it lacks.
    std::fs::write(
        d.join(".env"),
        "APP_MODE=local\nPASSWORD_PEPPER=ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n",
    )
    .unwrap();
    let before = std::fs::read(d.join("users.json")).unwrap();
    let err = failed(&app(
        d,
        &["register", "bob", "--password-stdin"],
        &format!("{NEW_PASSWORD}\n"),
        &[],
    ));
    assert!(err.contains("holds 1 record(s) under a pepper version"), "{err}");
    assert!(err.contains("; user 'alice')"), "{err}");
    for cause in [
        "--pepper-secret NAME (GLOBO_PEPPER_SECRET), --env-file or --mode (APP_MODE)",
        "copied from another users file: delete them (`app users delete <name>`) or reset them \
         (`app users reset <name>`)",
        "rotated after a long-running service loaded it: restart that service",
    ] {
        assert!(err.contains(cause), "{cause:?} in {err}");
    }
    assert_eq!(std::fs::read(d.join("users.json")).unwrap(), before);
    // Resetting the record that names the missing version replaces it.
    let reset = ["users", "reset", "alice", "--password-stdin"];
    ok(&app(d, &reset, &format!("{LAB_PASSWORD}\n"), &[]));
    ok(&app(d, &["register", "bob", "--password-stdin"], &format!("{NEW_PASSWORD}\n"), &[]));
    ok(&verify(d, "alice", LAB_PASSWORD, &[]));
}
