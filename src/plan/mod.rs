//! Diff of desired state against Entra, with safety gates, as a versioned `Plan` value.

pub mod types;

pub use types::*;
