//! globo-secrets (work in progress).
#![forbid(unsafe_code)]
