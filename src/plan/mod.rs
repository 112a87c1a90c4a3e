//! Diff of desired state against Entra, with safety gates, as a versioned `Plan` value.

pub mod compute;
pub mod federation;
pub mod simulate;
pub mod types;

pub use compute::{PlanError, plan};
pub use types::*;
