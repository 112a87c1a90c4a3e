//! `--policy-repo`: the policy from a git branch.

use super::run::RunArgs;
use ad2entra::reconciler::edges::PolicyEdge;
use anyhow::bail;

pub fn policy_edge(_args: &RunArgs) -> anyhow::Result<Box<dyn PolicyEdge>> {
    bail!("--policy-repo is not available in this build yet")
}
