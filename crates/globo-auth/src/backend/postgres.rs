//! postgres backend (being written).
