//! The policy: YAML in git that says what is synced and how, validated with
//! `file:line:column` diagnostics and compiled once (templates, filters, DNs).
pub mod expr;
pub mod federation;
pub mod graph_props;
pub mod ldap_filter;
pub mod load;
pub mod model;
pub mod schema_check;
pub mod sources;
pub mod yaml_tree;

pub use load::{LoadedPolicy, MappingRule, PolicyFile, load, load_path};
pub use model::Policy;
#[cfg(test)]
mod load_tests;
#[cfg(test)]
mod sources_tests;
