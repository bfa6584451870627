//! One module per command group, each with its argument structs and the functions that run them.

pub(crate) mod auth;
pub(crate) mod config;
pub(crate) mod pepper;
pub(crate) mod secrets;
pub(crate) mod store;
pub(crate) mod users;
