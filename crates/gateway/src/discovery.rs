//! Discovery endpoints (RFC 7644 §4): `/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`,
//! built from the schema registry so they always describe what the gateway really accepts.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use scimgw_scim::ScimError;
use scimgw_scim::messages::ListResponse;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::{base_url, json_response};

const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

pub(crate) async fn service_provider_config(
    req: HttpRequest,
    _: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let base = base_url(&req, &state);
    let body = json!({
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://github.com/scimgw/scimgw#readme",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": state.config.max_page_size},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "Authorization: Bearer scimgw_<key id>_<secret>, as issued by `scimgw key issue`",
            "primary": true
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")}
    });
    json_response(&req, StatusCode::OK, &body)
}

fn schema_json(schema: &scimgw_scim::schema::Schema, base: &str) -> Value {
    let mut v = serde_json::to_value(schema).unwrap_or(Value::Null);
    if let Value::Object(obj) = &mut v {
        obj.insert("schemas".into(), json!([SCHEMA_SCHEMA]));
        obj.insert(
            "meta".into(),
            json!({"resourceType": "Schema", "location": format!("{base}/Schemas/{}", schema.id)}),
        );
    }
    v
}

fn resource_type_json(rt: &scimgw_scim::schema::ResourceType, base: &str) -> Value {
    let mut v = serde_json::to_value(rt).unwrap_or(Value::Null);
    if let Value::Object(obj) = &mut v {
        obj.insert("schemas".into(), json!([RESOURCE_TYPE_SCHEMA]));
        obj.insert(
            "meta".into(),
            json!({"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{}", rt.id)}),
        );
    }
    v
}

pub(crate) async fn schemas(
    req: HttpRequest,
    _: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let base = base_url(&req, &state);
    let all: Vec<Value> = state.registry.schemas().iter().map(|s| schema_json(s, &base)).collect();
    let total = all.len() as u64;
    json_response(&req, StatusCode::OK, &ListResponse::new(all, total, 1))
}

pub(crate) async fn schema(
    req: HttpRequest,
    _: Principal,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let base = base_url(&req, &state);
    let schema = state.registry.schema(&id).ok_or_else(|| {
        ApiError::Scim(ScimError::not_found(format!("no schema {}", id.chars().take(128).collect::<String>())))
    })?;
    json_response(&req, StatusCode::OK, &schema_json(schema, &base))
}

pub(crate) async fn resource_types(
    req: HttpRequest,
    _: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let base = base_url(&req, &state);
    let all: Vec<Value> = state.registry.resource_types().iter().map(|rt| resource_type_json(rt, &base)).collect();
    let total = all.len() as u64;
    json_response(&req, StatusCode::OK, &ListResponse::new(all, total, 1))
}

pub(crate) async fn resource_type(
    req: HttpRequest,
    _: Principal,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let base = base_url(&req, &state);
    let rt = state.registry.resource_types().iter().find(|rt| rt.id.eq_ignore_ascii_case(&id)).ok_or_else(|| {
        ApiError::Scim(ScimError::not_found(format!("no resource type {}", id.chars().take(128).collect::<String>())))
    })?;
    json_response(&req, StatusCode::OK, &resource_type_json(rt, &base))
}
