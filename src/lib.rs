//! ad2entra: keeps Microsoft Entra ID in step with Active Directory, declaratively.
//!
//! The core (`policy`, `desired`, `plan`, `render`) is pure: no IO, no clock, no async.
//! `ad` and `entra` are the edges that read Active Directory (LDAP, LDIF) and Entra
//! (Microsoft Graph) into the model types; `apply` and `init` write through Graph;
//! `gitops` reads the policy from a git commit. `reconciler` is the loop (`ad2entra run`)
//! around them; the core never imports it.

pub mod ad;
pub mod apply;
pub mod desired;
pub mod diagnostics;
pub mod entra;
pub mod gitops;
pub mod graph_rules;
pub mod init;
pub mod migrate;
pub mod model;
pub mod plan;
pub mod policy;
pub mod reconciler;
pub mod render;
pub mod secrets;
pub mod sources;
pub mod state;
