//! Rows of `tenants` and `api_keys`.

use diesel::prelude::*;

use crate::schema::{api_keys, tenants};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants)]
pub(crate) struct TenantRow {
    pub id: String,
    pub name: String,
    pub created_us: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub(crate) struct ApiKeyRow {
    pub id: String,
    pub tenant_id: String,
    pub secret_sha256: Vec<u8>,
    pub label: Option<String>,
    pub created_us: i64,
    pub last_used_us: Option<i64>,
    pub revoked_us: Option<i64>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = api_keys)]
pub(crate) struct NewApiKeyRow<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub secret_sha256: &'a [u8],
    pub label: Option<&'a str>,
    pub created_us: i64,
}
