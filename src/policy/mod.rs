//! The policy: YAML in git that says what is synced and how.
pub mod expr;
pub mod ldap_filter;
pub mod model;
pub mod yaml_tree;
