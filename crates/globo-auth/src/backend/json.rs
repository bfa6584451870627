//! json backend (being written).
