//! The data model shared by every stage: identifiers (GUID, anchor, DN), what AD returned
//! (the source snapshot) and what Entra holds (the target snapshot).
//!
//! These types carry no behaviour that does IO: readers build them, the planner consumes them.

pub mod anchor;
pub mod attrs;
pub mod dn;
pub mod guid;
pub mod id;
pub mod props;
pub mod source;
pub mod target;

pub use attrs::{Attributes, Values};
pub use dn::Dn;
pub use guid::{Anchor, ObjectGuid};
pub use id::ObjectId;
pub use source::{ObjectKind, SourceObject, SourcePart, SourceSnapshot};
pub use target::{TargetObject, TargetSnapshot};
