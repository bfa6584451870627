//! The local AWS emulator for tests: start it or report it missing, and point an AWS SDK
//! configuration at it.

use std::future::Future;
use std::net::{Ipv4Addr, TcpListener};

#[cfg(feature = "aws")]
use aws_config::{ConfigLoader, SdkConfig};
#[cfg(feature = "aws")]
use aws_sdk_secretsmanager::config::{Credentials, Region};
use globo_emulator::{Emulator, Options};

/// The region the tests give the emulator (the one the lab's `.env` names).
pub const EMULATOR_REGION: &str = "us-east-1";

/// The static access key id and secret access key the tests give the emulator (moto accepts
/// any).
pub const EMULATOR_CREDENTIAL: &str = "testing";

/// A fresh moto emulator on a free loopback port (stopped when dropped), or `None` after
/// [`crate::missing`]: a SKIPPED line locally, a panic with `CI=true`.
pub fn moto() -> Option<Emulator> {
    match Emulator::start(Options::default()) {
        Ok(emulator) => Some(emulator),
        Err(error) => {
            crate::missing(&format!(
                "the moto emulator ({:#})",
                globo_emulator::Report::new(&error)
            ));
            None
        }
    }
}

/// Loads `loader` (the library's standard chain, e.g. `globo_secrets::aws_config_loader()`)
/// with the emulator's `endpoint`, [`EMULATOR_REGION`] and the static [`EMULATOR_CREDENTIAL`]
/// set explicitly, so neither the developer's AWS settings nor the process environment play a
/// part (and the environment is not modified).
#[cfg(feature = "aws")]
pub async fn emulator_config(loader: ConfigLoader, endpoint: &str) -> SdkConfig {
    loader
        .endpoint_url(endpoint)
        .region(Region::new(EMULATOR_REGION))
        .credentials_provider(Credentials::new(
            EMULATOR_CREDENTIAL,
            EMULATOR_CREDENTIAL,
            None,
            None,
            "globo-testkit",
        ))
        .load()
        .await
}

/// `http://127.0.0.1:<port>` of a server that accepts connections and never answers: the
/// worst case for a client (no "connection refused"). It holds every connection open for as
/// long as the test process runs.
pub fn silent_endpoint() -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    let endpoint = format!("http://{}", listener.local_addr().expect("its address"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    endpoint
}

/// Runs `future` to completion on a new single-threaded tokio runtime: async library calls
/// from a synchronous test.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// Each version id of the secret `name` with its stages, both sorted, from
/// `ListSecretVersionIds` (deprecated versions included): what tests check instead of only
/// what `GetSecretValue` answers, since moto 5.2 can leave two versions labelled AWSCURRENT.
#[cfg(feature = "aws")]
pub async fn version_stages(
    client: &aws_sdk_secretsmanager::Client,
    name: &str,
) -> Vec<(String, Vec<String>)> {
    let listed = client
        .list_secret_version_ids()
        .secret_id(name)
        .include_deprecated(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListSecretVersionIds {name}: {e}"));
    let mut versions: Vec<(String, Vec<String>)> = listed
        .versions()
        .iter()
        .map(|v| {
            let mut stages = v.version_stages().to_vec();
            stages.sort();
            (v.version_id().unwrap_or_default().to_owned(), stages)
        })
        .collect();
    versions.sort();
    versions
}
