#![doc = include_str!("../README.md")]

mod audit;
mod cached;
mod config;
mod connection;
mod error;
mod lower;
mod members;
mod models;
mod outbox;
mod pg_analyze;
mod pg_batch;
mod pg_writes;
#[cfg(all(test, feature = "testing"))]
mod plans;
mod query;
mod rate;
mod reconcile;
mod redact;
mod resource;
mod resources;
mod retention;
mod schema;
mod store;
mod target_health;
mod target_problems;
mod tenants;
#[cfg(feature = "testing")]
pub mod testing;
mod workers;
mod writer;

pub use audit::{Audit, AuditEvent, AuditOrder, AuditPage, OperatorAction, OperatorEvent};
pub use config::{SqliteSynchronous, StoreConfig};
pub use connection::Backend;
pub use error::StoreError;
pub use outbox::{Attempt, Delivery, DeliveryFilter, DeliveryState, Enqueue, Finish, Link, OutboxStat};
pub use query::{Query, QueryPage};
pub use reconcile::{ORPHAN_PREFIX, ReconcileRun, Repair};
pub use redact::redact_url;
pub use resource::{Change, Kind, Member, MembersChange, NewResource, Resource, Updated};
pub use retention::{Cutoffs, PurgeCounts};
pub use store::Store;
pub use target_health::{PAUSED_PREFIX, PausedTarget};
pub use target_problems::{HELD_PREFIX, TargetProblem};
pub use tenants::{ApiKey, NewApiKey, Tenant};
