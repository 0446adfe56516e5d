//! `kind` → adapter constructor.

use std::collections::BTreeMap;
use std::sync::Arc;

use scimgw_scim::schema::{Registry as SchemaRegistry, Schema};

use crate::adapter::Adapter;
use crate::connection::UrlFlag;
use crate::secret::Secret;
use crate::target::TargetConfig;

/// No extension schemas.
pub fn no_schemas() -> Vec<(Schema, &'static str)> {
    Vec::new()
}

/// Builds an adapter for one target from its configuration and resolved secret, or says what is
/// wrong with the configuration (unknown adapter keys, a bad value).
pub type Constructor = fn(&TargetConfig, Secret) -> Result<Arc<dyn Adapter>, String>;

/// The extension schemas an adapter kind defines, each with the resource type it extends.
pub type Schemas = fn() -> Vec<(Schema, &'static str)>;

/// The adapter kinds a gateway knows. Adding a vendor is adding a crate and one `register` line.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, (Constructor, Schemas)>,
    url_flags: BTreeMap<&'static str, &'static [UrlFlag]>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Registers `kind` with its constructor and its extension schemas; a second registration
    /// of the same kind replaces the first.
    pub fn register(&mut self, kind: &'static str, constructor: Constructor, schemas: Schemas) -> &mut Self {
        self.kinds.insert(kind, (constructor, schemas));
        self
    }

    /// Declares the query flags `kind`'s base URL must carry: the connection test checks each one
    /// (the kind's constructor refuses a target without them, so that check cannot build it).
    pub fn require_url_flags(&mut self, kind: &'static str, flags: &'static [UrlFlag]) -> &mut Self {
        self.url_flags.insert(kind, flags);
        self
    }

    /// The query flags `kind`'s base URL must carry (none for an unknown kind).
    pub fn url_flags(&self, kind: &str) -> &'static [UrlFlag] {
        self.url_flags.get(kind).copied().unwrap_or_default()
    }

    /// The constructor of `kind`.
    pub fn get(&self, kind: &str) -> Option<Constructor> {
        self.kinds.get(kind).map(|(c, _)| *c)
    }

    /// Registers every kind's extension schemas in `schemas` (so that an IdP may send their
    /// attributes whichever targets are configured). Fails on a clash between two kinds.
    pub fn register_schemas(&self, schemas: &mut SchemaRegistry) -> Result<(), String> {
        for (kind, (_, of)) in &self.kinds {
            for (schema, resource_type) in of() {
                if schemas.schema(&schema.id).is_some() {
                    continue;
                }
                let id = schema.id.clone();
                schemas
                    .register_extension(schema, resource_type)
                    .map_err(|e| format!("adapter kind {kind}: extension {id}: {e}"))?;
            }
        }
        Ok(())
    }

    /// Every known kind, sorted.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }
}
