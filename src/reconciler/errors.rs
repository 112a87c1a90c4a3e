//! Cycle errors, and the one decision the loop makes about them: retry (transient) or
//! stall (terminal). Like kube-rs's `error_policy`, the classification is a pure function
//! of the error, so it is tested without a network.

use crate::ad::ldap::LdapError;
use crate::ad::scope_follow::FollowError;
use crate::entra::graph::GraphError;
use std::time::Duration;

/// What to do after a failed cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retry with backoff until it works or another trigger comes.
    Transient,
    /// Wait for a new commit or a manual trigger: retrying cannot help.
    Terminal,
}

/// Why a cycle did not converge.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("reading AD: {0}")]
    Ldap(Box<LdapError>),
    #[error("{0}")]
    Scope(Box<FollowError>),
    #[error("reading AD from {path}: {message}")]
    Ldif { path: String, message: String },
    #[error("Graph: {0}")]
    Graph(Box<GraphError>),
    #[error("reading the Entra snapshot {path}: {message}")]
    Snapshot { path: String, message: String },
    #[error("{0}")]
    Plan(#[from] crate::plan::PlanError),
    #[error("{0}")]
    Apply(Box<crate::apply::ApplyError>),
    #[error(
        "deletion gate: {blocked} deprovisioning action(s) blocked ({reason}); nothing was applied. \
         Check AD and the policy, then raise deletion.maxDeletes/maxDeletePercent in a commit or fix the cause, \
         and trigger a sync"
    )]
    DeletionGate { blocked: usize, reason: String },
    #[error("the LDAP source configuration: {0}")]
    SourceConfig(#[from] crate::ad::ldap::SourceConfigError),
    /// A configuration that cannot work until a person changes it.
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Internal(String),
    /// A failure reading one of several AD sources: it fails the whole cycle.
    #[error("AD source {name}: {error}")]
    Source {
        name: String,
        error: Box<CycleError>,
    },
}

macro_rules! boxed_from {
    ($($variant:ident($t:ty)),*) => {$(
        impl From<$t> for CycleError {
            fn from(e: $t) -> Self {
                CycleError::$variant(Box::new(e))
            }
        }
    )*};
}
boxed_from!(
    Ldap(LdapError),
    Scope(FollowError),
    Graph(GraphError),
    Apply(crate::apply::ApplyError)
);

impl CycleError {
    /// Retry or stall (DESIGN §7; issue: transient = network, 5xx, 429, LDAP unavailable;
    /// terminal = bad credentials, permission denied, a deletion gate, the source-failure
    /// guard).
    pub fn class(&self) -> ErrorClass {
        use ErrorClass::*;
        match self {
            CycleError::Source { error, .. } => error.class(),
            CycleError::Ldap(e) => ldap_class(e),
            CycleError::Scope(f) => match f.as_ref() {
                FollowError::Ldap(e) => ldap_class(e),
                FollowError::Missing(_) => Terminal,
            },
            CycleError::Ldif { .. } | CycleError::Snapshot { .. } => Terminal,
            CycleError::Graph(e) => {
                if e.is_transient() {
                    Transient
                } else {
                    Terminal
                }
            }
            CycleError::Plan(_) => Terminal,
            CycleError::Apply(e) => {
                if e.is_transient() {
                    Transient
                } else {
                    Terminal
                }
            }
            CycleError::DeletionGate { .. } => Terminal,
            CycleError::SourceConfig(_) | CycleError::Config(_) => Terminal,
            CycleError::Internal(_) => Transient,
        }
    }

    /// A short stable reason for status conditions and metrics labels.
    pub fn reason(&self) -> &'static str {
        match self {
            CycleError::Source { error, .. } => error.reason(),
            CycleError::Ldap(e) => ldap_reason(e),
            CycleError::Scope(f) => match f.as_ref() {
                FollowError::Ldap(e) => ldap_reason(e),
                FollowError::Missing(_) => "SourceFailureGuard",
            },
            CycleError::Plan(e) => match e {
                crate::plan::PlanError::AnchorExtensionMissing { .. }
                | crate::plan::PlanError::AnchorExtensionUnreadable { .. } => {
                    "AnchorExtensionMissing"
                }
                crate::plan::PlanError::OtherAnchorExtensions(_) => "OtherAnchorExtensions",
                _ => "SourceFailureGuard",
            },
            CycleError::Ldif { .. } => "SourceUnreadable",
            CycleError::Snapshot { .. } => "TargetUnreadable",
            CycleError::Graph(e) => match e.status() {
                Some(401) => "GraphUnauthorized",
                Some(403) => "GraphPermissionDenied",
                _ if matches!(e.as_ref(), GraphError::Auth { .. }) => "GraphAuthFailed",
                _ => "GraphUnavailable",
            },
            CycleError::Apply(e) => match e.as_ref() {
                crate::apply::ApplyError::Graph(_) => "GraphUnavailable",
                _ => "ApplyRefused",
            },
            CycleError::DeletionGate { .. } => "DeletionGate",
            CycleError::SourceConfig(_) => "SourceConfigInvalid",
            CycleError::Config(_) => "ConfigurationInvalid",
            CycleError::Internal(_) => "InternalError",
        }
    }
}

fn ldap_reason(e: &LdapError) -> &'static str {
    match e {
        LdapError::NoDcAnswered(all)
            if !all.is_empty()
                && all
                    .iter()
                    .all(|e| matches!(e, LdapError::BindFailed { .. })) =>
        {
            "LdapBindFailed"
        }
        LdapError::BindFailed { .. } => "LdapBindFailed",
        LdapError::TlsVerification { .. } | LdapError::CaFile { .. } => "LdapTlsFailed",
        LdapError::Config(_) => "LdapConfigInvalid",
        _ => "LdapUnavailable",
    }
}

fn ldap_class(e: &LdapError) -> ErrorClass {
    match e {
        // Another try may find one of the DCs back, unless none of them can ever work.
        LdapError::NoDcAnswered(all) => {
            if all.iter().any(|e| ldap_class(e) == ErrorClass::Transient) {
                ErrorClass::Transient
            } else {
                ErrorClass::Terminal
            }
        }
        LdapError::Connect { .. }
        | LdapError::Timeout { .. }
        | LdapError::ConnectionLost { .. }
        | LdapError::Tls { .. }
        | LdapError::FullReadRequired { .. } => ErrorClass::Transient,
        // busy (51), unavailable (52), unwilling (53), other (80): the DC may recover.
        LdapError::Operation {
            rc: 51 | 52 | 53 | 80,
            ..
        } => ErrorClass::Transient,
        LdapError::Protocol { .. } => ErrorClass::Transient,
        _ => ErrorClass::Terminal,
    }
}

/// Backoff before retry `attempt` (1-based) after transient failures: 5 s doubling, at
/// most `cap`, with ±25% jitter so many instances do not retry in step.
pub fn retry_delay(attempt: u32, cap: Duration, jitter: f64) -> Duration {
    let base = Duration::from_secs(5).saturating_mul(1u32 << attempt.saturating_sub(1).min(12));
    let d = base.min(cap);
    d.mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_the_issue() {
        let unavailable = CycleError::from(LdapError::Connect {
            server: "ldaps://dc1".into(),
            reason: "refused".into(),
        });
        assert_eq!(unavailable.class(), ErrorClass::Transient);
        assert_eq!(unavailable.reason(), "LdapUnavailable");
        let bad_password = CycleError::from(LdapError::BindFailed {
            server: "ldaps://dc1".into(),
            bind_dn: "cn=svc".into(),
            rc: 49,
            reason: "invalid credentials".into(),
        });
        assert_eq!(bad_password.class(), ErrorClass::Terminal);
        let guard = CycleError::Plan(crate::plan::PlanError::EmptySource);
        assert_eq!(guard.class(), ErrorClass::Terminal);
        assert_eq!(guard.reason(), "SourceFailureGuard");
        let gate = CycleError::DeletionGate {
            blocked: 600,
            reason: "600 > maxDeletes 500".into(),
        };
        assert_eq!(gate.class(), ErrorClass::Terminal);
        let throttled = CycleError::from(GraphError::Api {
            method: "GET".into(),
            path: "/users".into(),
            status: 429,
            code: "TooManyRequests".into(),
            message: "slow down".into(),
            retry_after: None,
        });
        assert_eq!(throttled.class(), ErrorClass::Transient);
        let denied = CycleError::from(GraphError::Api {
            method: "GET".into(),
            path: "/users".into(),
            status: 403,
            code: "Authorization_RequestDenied".into(),
            message: "Insufficient privileges".into(),
            retry_after: None,
        });
        assert_eq!(denied.class(), ErrorClass::Terminal);
        assert_eq!(denied.reason(), "GraphPermissionDenied");
    }

    #[test]
    fn retry_delay_grows_and_is_capped() {
        let cap = Duration::from_secs(300);
        assert_eq!(retry_delay(1, cap, 0.5), Duration::from_secs(5));
        assert_eq!(retry_delay(3, cap, 0.5), Duration::from_secs(20));
        assert_eq!(retry_delay(30, cap, 0.5), cap);
        assert!(retry_delay(1, cap, 0.0) < retry_delay(1, cap, 1.0));
    }
}
