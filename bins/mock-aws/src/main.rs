//! mock-aws (work in progress).
fn main() {}
