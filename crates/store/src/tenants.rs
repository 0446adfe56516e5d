//! Tenants and their API keys: the store side of "the bearer token alone selects the tenant".

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use tracing::instrument;
use uuid::Uuid;

use crate::connection::on_inner;
use crate::error::StoreError;
use crate::models::tenant::{ApiKeyRow, NewApiKeyRow, TenantRow};
use crate::resource::{from_us, now_us};
use crate::schema::{api_keys, tenants};
use crate::store::Store;

/// A tenant: one SCIM endpoint, its users, groups and keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// A UUID, assigned by the store.
    pub id: String,
    /// The unique name operators use (`scimgw tenant add acme`).
    pub name: String,
    /// When it was created.
    pub created: DateTime<Utc>,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Self {
        Tenant { id: r.id, name: r.name, created: from_us(r.created_us) }
    }
}

/// An API key to store. The caller makes the id and the secret; the store keeps only the
/// secret's SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// The key id, the public part of the token.
    pub id: String,
    /// The tenant the key opens.
    pub tenant_id: String,
    /// SHA-256 of the secret part of the token.
    pub secret_sha256: [u8; 32],
    /// A note for operators (`entra-prod`).
    pub label: Option<String>,
}

/// A stored API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The key id.
    pub id: String,
    /// The tenant the key opens.
    pub tenant_id: String,
    /// SHA-256 of the secret (compare in constant time).
    pub secret_sha256: Vec<u8>,
    /// A note for operators.
    pub label: Option<String>,
    /// When it was issued.
    pub created: DateTime<Utc>,
    /// When it was last used, as recorded by [`Store::touch_api_key`].
    pub last_used: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked key opens nothing.
    pub revoked: Option<DateTime<Utc>>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(r: ApiKeyRow) -> Self {
        ApiKey {
            id: r.id,
            tenant_id: r.tenant_id,
            secret_sha256: r.secret_sha256,
            label: r.label,
            created: from_us(r.created_us),
            last_used: r.last_used_us.map(from_us),
            revoked: r.revoked_us.map(from_us),
        }
    }
}

impl Store {
    /// Creates a tenant; `Conflict { attribute: "name" }` if the name is taken (exactly: tenant
    /// names are case-sensitive).
    #[instrument(skip_all)]
    pub fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        let row = TenantRow { id: Uuid::new_v4().to_string(), name: name.to_owned(), created_us: now_us() };
        self.write(|c| {
            diesel::insert_into(tenants::table).values(&row).execute(c).map_err(StoreError::unique("name"))
        })?;
        Ok(row.into())
    }

    /// Every tenant, by name.
    pub fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let mut conn = self.conn()?;
        let rows = tenants::table.order(tenants::name).select(TenantRow::as_select()).load(&mut conn)?;
        Ok(rows.into_iter().map(Tenant::from).collect())
    }

    /// The tenant with this name.
    pub fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let mut conn = self.conn()?;
        let row =
            tenants::table.filter(tenants::name.eq(name)).select(TenantRow::as_select()).first(&mut conn).optional()?;
        Ok(row.map(Tenant::from))
    }

    /// Removes a tenant with all its keys, users, groups and members (`ON DELETE CASCADE`).
    /// `false` if there was no such tenant.
    #[instrument(skip_all)]
    pub fn remove_tenant(&self, name: &str) -> Result<bool, StoreError> {
        let n = self.write(|c| Ok(diesel::delete(tenants::table.filter(tenants::name.eq(name))).execute(c)?))?;
        Ok(n > 0)
    }

    /// Stores a new key; `Conflict { attribute: "id" }` if the id is taken. An unknown tenant is
    /// `Internal` (look the tenant up first).
    #[instrument(skip_all, fields(key.id = %key.id, tenant.id = %key.tenant_id))]
    pub fn insert_api_key(&self, key: &NewApiKey) -> Result<ApiKey, StoreError> {
        let created_us = now_us();
        let row = NewApiKeyRow {
            id: &key.id,
            tenant_id: &key.tenant_id,
            secret_sha256: &key.secret_sha256,
            label: key.label.as_deref(),
            created_us,
        };
        self.write(|c| diesel::insert_into(api_keys::table).values(&row).execute(c).map_err(StoreError::unique("id")))?;
        Ok(ApiKey {
            id: key.id.clone(),
            tenant_id: key.tenant_id.clone(),
            secret_sha256: key.secret_sha256.to_vec(),
            label: key.label.clone(),
            created: from_us(created_us),
            last_used: None,
            revoked: None,
        })
    }

    /// The key with this id and its tenant, revoked or not (the caller checks `revoked` and the
    /// secret): one query per authenticated request.
    pub fn api_key_with_tenant(&self, key_id: &str) -> Result<Option<(ApiKey, Tenant)>, StoreError> {
        let mut conn = self.conn()?;
        // On the engine's own connection, so that diesel caches the statement by type instead of
        // building its SQL text to look it up: this runs on every request.
        let row = on_inner!(&mut *conn, |c| api_keys::table
            .inner_join(tenants::table)
            .filter(api_keys::id.eq(key_id))
            .select((ApiKeyRow::as_select(), TenantRow::as_select()))
            .first::<(ApiKeyRow, TenantRow)>(c)
            .optional())?;
        Ok(row.map(|(k, t)| (k.into(), t.into())))
    }

    /// The keys of one tenant, or of all tenants, oldest first.
    pub fn api_keys(&self, tenant_id: Option<&str>) -> Result<Vec<ApiKey>, StoreError> {
        let mut conn = self.conn()?;
        let mut q = api_keys::table.select(ApiKeyRow::as_select()).into_boxed();
        if let Some(t) = tenant_id {
            q = q.filter(api_keys::tenant_id.eq(t.to_owned()));
        }
        let rows = q.order((api_keys::created_us, api_keys::id)).load(&mut conn)?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    /// Revokes a key. `true` if the key exists (revoked now, or already: the first revocation time
    /// is kept), `false` if there is no such key.
    #[instrument(skip_all, fields(key.id = %key_id))]
    pub fn revoke_api_key(&self, key_id: &str) -> Result<bool, StoreError> {
        self.write(|c| {
            diesel::update(api_keys::table.filter(api_keys::id.eq(key_id)).filter(api_keys::revoked_us.is_null()))
                .set(api_keys::revoked_us.eq(now_us()))
                .execute(c)?;
            let exists = api_keys::table.filter(api_keys::id.eq(key_id)).count().get_result::<i64>(c)? > 0;
            Ok(exists)
        })
    }

    /// Records that a key was used at `at`. A write transaction each time: on SQLite with
    /// `synchronous = full` that is an fsync, so callers should record at most every minute or so.
    pub fn touch_api_key(&self, key_id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.write(|c| {
            Ok(diesel::update(api_keys::table.filter(api_keys::id.eq(key_id)))
                .set(api_keys::last_used_us.eq(at.timestamp_micros()))
                .execute(c)?)
        })?;
        Ok(())
    }
}
