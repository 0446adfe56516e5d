//! `kind` → adapter constructor.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::adapter::Adapter;
use crate::secret::Secret;
use crate::target::TargetConfig;

/// Builds an adapter for one target from its configuration and resolved secret, or says what is
/// wrong with the configuration (unknown adapter keys, a bad value).
pub type Constructor = fn(&TargetConfig, Secret) -> Result<Arc<dyn Adapter>, String>;

/// The adapter kinds a gateway knows. Adding a vendor is adding a crate and one `register` line.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Constructor>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Registers `kind`; a second registration of the same kind replaces the first.
    pub fn register(&mut self, kind: &'static str, constructor: Constructor) -> &mut Self {
        self.kinds.insert(kind, constructor);
        self
    }

    /// The constructor of `kind`.
    pub fn get(&self, kind: &str) -> Option<Constructor> {
        self.kinds.get(kind).copied()
    }

    /// Every known kind, sorted.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }
}
