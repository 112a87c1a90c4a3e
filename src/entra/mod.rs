//! The Entra edge: reading a [`TargetSnapshot`](crate::model::TargetSnapshot) from
//! Microsoft Graph and writing plans back through it.
//!
//! Everything that talks HTTP lives under [`graph`]; the pure core never sees it.

pub mod graph;

pub use graph::{GraphClient, GraphConfig, GraphError};
