//! Placeholder binary; see the README for the roadmap.
fn main() {}
