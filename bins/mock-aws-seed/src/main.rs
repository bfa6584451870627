//! mock-aws-seed (work in progress).
fn main() {}
