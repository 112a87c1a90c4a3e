//! ad2entra: keeps Microsoft Entra ID in step with Active Directory, declaratively.
//!
//! The core (`policy`, `desired`, `plan`, `render`) is pure: no IO, no clock, no async.
//! `source` and `target` are the edges that read AD and Entra into the model types.

pub mod apply;
pub mod desired;
pub mod diagnostics;
pub mod init;
pub mod model;
pub mod plan;
pub mod policy;
pub mod render;
pub mod source;
pub mod state;
pub mod target;
