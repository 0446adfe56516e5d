//! The adapter contract of scimgw.
//!
//! A *target* is one vendor app a tenant's users are delivered to; an *adapter* is the code that
//! knows that vendor. This crate is what the gateway and every vendor crate share:
//!
//! - [`Adapter`]: the trait a vendor crate implements — its [`Capabilities`], the extension
//!   schemas it needs, `validate` (pure vendor rules, run at request time), `translate` (the
//!   payload the vendor accepts), the delivery operations (find, create, update, deactivate,
//!   delete) and the reads `scimgw reconcile` uses (list, read by id, look up by the matching
//!   attribute), as far as [`ReadBack`] says the vendor allows.
//! - [`TargetConfig`]: one `[[targets]]` entry of `<tenants_dir>/<tenant>.toml`, loaded with figment,
//!   with its secret referenced by `token_env` or `token_file` and never inlined.
//! - [`ScimClient`]: a SCIM 2.0 client on reqwest (rustls, timeouts, connection reuse, bearer
//!   auth) whose errors come back as a typed [`DeliveryError`]: retryable, rate-limited with a
//!   delay, not found, conflict, or permanent with the vendor's own message. Vendor adapters are
//!   thin layers over it.
//! - [`connection_test`]: Entra ID's "Test Connection" against a target, as structured steps
//!   (DNS, connect, TLS, an authenticated query for a user nobody has, the [`UrlFlag`]s its kind
//!   needs), for `scimgw target test` and `config check --probe`.
//! - [`generic::ScimAdapter`]: the `scim` kind, any SCIM 2.0 app with an allow-list of attributes.
//! - [`Registry`]: `kind` → constructor; the gateway fills it with every adapter it links.
//! - [`compare`]: what counts as drift between a vendor's copy and the payload (`reconcile`).
//! - [`diff`]: the PATCH operations between what a target was sent and what it should hold, and
//!   their shape in each dialect (RFC 7644, which is Entra's `aadOptscim062020` one as the
//!   vendors take it, and Entra's legacy one).
//!
//! Nothing here touches the store: the dispatcher in the gateway owns outbox rows, links and
//! retries, and calls adapters for single operations.

mod adapter;
mod client;
pub mod compare;
mod connection;
pub mod diff;
pub mod generic;
mod outcome;
mod registry;
mod secret;
pub mod table;
mod target;
pub mod vendor;

pub use adapter::{Adapter, Capabilities, Deprovision, ReadBack, Remote, UserPage, Violation};
pub use client::{ClientOptions, MAX_RESPONSE_BYTES, ScimClient};
pub use compare::Difference;
pub use connection::{ConnectionReport, Step, StepName, UrlFlag, connection_test};
pub use outcome::{DeliveryError, Down};
pub use registry::{Constructor, Registry, Schemas, no_schemas};
pub use secret::Secret;
pub use target::{
    ConfigProblem, OnInvalid, RetryPolicy, TargetConfig, TenantTargets, load_tenant_file, tenant_file_target_names,
};
