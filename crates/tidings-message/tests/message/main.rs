//! Specification tests of tidings-message, one binary for the whole crate.

mod body_structure;
mod common;
mod corpus;
mod envelope;
mod properties;
mod search;
mod section;
