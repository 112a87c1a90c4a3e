//! Diff of desired state against Entra, with safety gates, as a versioned `Plan` value.

pub mod compute;
pub mod federation;
pub mod refused;
pub mod simulate;
pub mod types;

pub use compute::{PlanError, plan, plan_with};
pub use types::*;
