#![doc = include_str!("../README.md")]

pub mod decision;
pub mod dispatch;
pub mod reconcile;
pub mod targets;

pub use crate::decision::{AtTarget, Decision, decide};
pub use crate::targets::{Target, TargetSet, Targets, adapter_registry, schema_registry, scope_reads_groups};
