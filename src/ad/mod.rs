//! Readers that turn Active Directory into a [`crate::model::SourceSnapshot`]:
//! an LDIF file for offline use and tests, and live LDAP.
pub mod ldap;
pub mod ldif;
pub mod merge;
pub mod scope_follow;
