//! sqlite backend (being written).
