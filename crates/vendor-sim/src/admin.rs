//! The admin API under `/_sim/`, for using the binary by hand (curl) or from a test in another
//! process. It needs no token, is never faulted and never recorded: it is the simulator's
//! control panel, not part of the app.
//!
//! | method and path | what it does |
//! |---|---|
//! | `GET /_sim/requests` | the request log, oldest first |
//! | `DELETE /_sim/requests` | empties the log |
//! | `GET /_sim/faults` | the faults in force, counters as they stand |
//! | `PUT /_sim/faults` | sets the faults (a [`crate::Faults`] as JSON; `{}` clears) |
//! | `DELETE /_sim/faults` | clears the faults |
//! | `POST /_sim/reset` | empties the store and the log, clears the faults |
//! | `GET /_sim/users`, `GET /_sim/groups` | the store's contents |
//! | `POST /_sim/users`, `POST /_sim/groups` | pre-seeds a resource (an `id` in the body is kept) |
//! | `PATCH /_sim/users/{id}` | changes a user inside the app (a JSON list of PATCH operations) |
//! | `DELETE /_sim/users/{id}` | removes a user inside the app |

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use scimgw_scim::ScimError;
use serde_json::Value;

use crate::Shared;
use crate::faults::Faults;
use crate::http::{error_response, json_response, read_json};
use crate::profile::Kind;

pub(crate) fn handle(req: &HttpRequest, body: &[u8], shared: &Shared) -> HttpResponse {
    let rest = req.path().trim_start_matches("/_sim").trim_end_matches('/');
    let result = match (req.method().as_str(), rest) {
        ("GET", "/requests") => {
            let log: Vec<Value> = shared.lock().log.iter().map(|r| r.to_json(shared.started)).collect();
            Ok(json_response(StatusCode::OK, &Value::Array(log)))
        }
        ("DELETE", "/requests") => {
            shared.lock().log.clear();
            Ok(HttpResponse::NoContent().finish())
        }
        ("GET", "/faults") => faults_json(shared),
        ("PUT", "/faults") => read_json(req, body).and_then(|v| {
            let faults: Faults = serde_json::from_value(v)
                .map_err(|e| ScimError::invalid_value(format!("not a valid faults object: {e}")))?;
            faults.validate().map_err(ScimError::invalid_value)?;
            if faults.refuses_forever() {
                return Err(ScimError::invalid_value(
                    "a refuse outage set over the admin API needs duration_ms: the admin API is behind the port it closes",
                ));
            }
            shared.install_faults(faults);
            shared.reconcile_soon();
            faults_json(shared)
        }),
        ("DELETE", "/faults") => {
            shared.install_faults(Faults::default());
            shared.reconcile_soon();
            Ok(HttpResponse::NoContent().finish())
        }
        ("POST", "/reset") => {
            shared.clear_all();
            shared.reconcile_soon();
            Ok(HttpResponse::NoContent().finish())
        }
        ("GET", "/users") => Ok(json_response(StatusCode::OK, &Value::Array(shared.lock().store.snapshot(Kind::User)))),
        ("GET", "/groups") => {
            Ok(json_response(StatusCode::OK, &Value::Array(shared.lock().store.snapshot(Kind::Group))))
        }
        ("POST", "/users") => seed(req, body, shared, Kind::User),
        ("PATCH", path) if path.starts_with("/users/") => read_json(req, body)
            .and_then(|ops| shared.edit(Kind::User, &path["/users/".len()..], ops))
            .map(|v| json_response(StatusCode::OK, &v)),
        ("DELETE", path) if path.starts_with("/users/") => {
            shared.remove(Kind::User, &path["/users/".len()..]).map(|()| HttpResponse::NoContent().finish())
        }
        ("POST", "/groups") => seed(req, body, shared, Kind::Group),
        _ => Err(ScimError::not_found(
            "no such admin endpoint; see /_sim/requests, /_sim/faults, /_sim/reset, /_sim/users, /_sim/groups",
        )),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

fn faults_json(shared: &Shared) -> Result<HttpResponse, ScimError> {
    let faults = shared.lock().faults.faults().clone();
    let v = serde_json::to_value(faults).map_err(|e| ScimError::new(500, None, e.to_string()))?;
    Ok(json_response(StatusCode::OK, &v))
}

fn seed(req: &HttpRequest, body: &[u8], shared: &Shared, kind: Kind) -> Result<HttpResponse, ScimError> {
    let value = read_json(req, body)?;
    let created = shared.insert(kind, value)?;
    Ok(json_response(StatusCode::CREATED, &created))
}
