//! The one step before routing that makes request paths canonical: endpoint names in any case, a
//! trailing slash and doubled slashes, as real SCIM clients send them.
//!
//! Clients differ from the RFC's spelling: some lower-case endpoint names (`/users`), a tenant URL
//! entered with a trailing slash makes Entra ID send `/scim/v2//Users`, and others add a slash at
//! the end (`/Users/`, `/Users/?filter=…`). Rather than a route per spelling, [`rewrite`] turns
//! such a path into the one the routes are registered for, before routing, so that every route,
//! the 404/405 answers and the metrics' route label (`telemetry::route_of`) see one form.
//!
//! Invariants:
//! - Only paths under the base path are touched, and among them only those whose first segment
//!   after the base path names an endpoint (`Users`, `Groups`, `ServiceProviderConfig`,
//!   `Schemas`, `ResourceTypes`, `.search`), plus the base path itself with a trailing slash.
//!   `/healthz`, `/readyz`, `/metrics` and unknown paths reach routing as they came.
//! - The base path is matched as configured (case included); endpoint names ignoring ASCII case,
//!   and so is `.search` after `Users` or `Groups`.
//! - Ids are never rewritten: `/Users/{id}`, `/Schemas/{urn}` and `/ResourceTypes/{id}` keep
//!   their id byte for byte (ids are case-sensitive), apart from the slashes around it.
//! - The query string is kept as it came.

use std::borrow::Cow;

use actix_web::dev::ServiceRequest;
use actix_web::http::Uri;
use actix_web::http::uri::PathAndQuery;

/// The endpoint names as the routes spell them.
const ENDPOINTS: &[&str] = &["Users", "Groups", "ServiceProviderConfig", "Schemas", "ResourceTypes", ".search"];

/// The `.search` segment after `Users` or `Groups`.
const SEARCH: &str = ".search";

/// Rewrites the request's path to its canonical form (see the module doc), keeping the query
/// string; a path already canonical is left alone without allocating.
pub(crate) fn rewrite(req: &mut ServiceRequest, base: &str) {
    let Some(path) = canonical(req.path(), base) else { return };
    let uri = &req.head().uri;
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    // Both cannot fail: the path and query come from a URI that parsed, with bytes only removed
    // or ASCII letters changed in case. Should they, the request is routed as it came.
    let Ok(path_and_query) = PathAndQuery::try_from(path_and_query) else { return };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query);
    let Ok(uri) = Uri::from_parts(parts) else { return };
    req.match_info_mut().get_mut().update(&uri);
    req.head_mut().uri = uri;
}

/// `s` with its percent-encoded unreserved characters (letters, digits, `-._~`) decoded; `None`
/// when it holds any other escape (that segment is then not an endpoint name).
fn decode_unreserved(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            let b = u8::from_str_radix(hex, 16).ok()?;
            if !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')) {
                return None;
            }
            out.push(char::from(b));
            i += 3;
        } else {
            out.push(char::from(bytes[i]));
            i += 1;
        }
    }
    Some(out)
}

/// The canonical form of `path` under `base` (a base path without a trailing slash, empty for
/// `/`), or `None` when `path` is canonical already or is not one this step touches.
pub(crate) fn canonical(path: &str, base: &str) -> Option<String> {
    let collapsed = collapse_slashes(path);
    let mut changed = matches!(collapsed, Cow::Owned(_));
    let rest = collapsed.strip_prefix(base)?;
    let rest = match rest {
        // The base path itself: only its trailing slash goes (`…/scim/v2/?aadOptscim062020`).
        "/" if !base.is_empty() => return Some(base.to_owned()),
        "" | "/" => return changed.then(|| collapsed.into_owned()),
        // `/scim/v2x` is not under `/scim/v2`.
        r => r.strip_prefix('/')?,
    };
    let rest = match rest.strip_suffix('/') {
        Some(trimmed) => {
            changed = true;
            trimmed
        }
        None => rest,
    };
    let (first, tail) = match rest.split_once('/') {
        Some((first, tail)) => (first, Some(tail)),
        None => (rest, None),
    };
    // `%55sers` is `Users` to the router (RFC 3986 §6.2.2.2: percent-encoded unreserved
    // characters are equivalent to the characters); compare the decoded name too.
    let decoded = first.contains('%').then(|| decode_unreserved(first)).flatten();
    let name = decoded.as_deref().unwrap_or(first);
    let endpoint = ENDPOINTS.iter().find(|e| e.eq_ignore_ascii_case(name))?;
    changed |= first != *endpoint;
    // After `Users` or `Groups`, `.search` in any case; any other segment is an id, kept exact.
    let tail = match tail {
        Some(t) if matches!(*endpoint, "Users" | "Groups") => {
            let (second, after) = match t.split_once('/') {
                Some((second, after)) => (second, Some(after)),
                None => (t, None),
            };
            if second.eq_ignore_ascii_case(SEARCH) && second != SEARCH {
                changed = true;
                Some(match after {
                    Some(after) => Cow::Owned(format!("{SEARCH}/{after}")),
                    None => Cow::Borrowed(SEARCH),
                })
            } else {
                Some(Cow::Borrowed(t))
            }
        }
        Some(t) => Some(Cow::Borrowed(t)),
        None => None,
    };
    if !changed {
        return None;
    }
    Some(match tail {
        Some(tail) => format!("{base}/{endpoint}/{tail}"),
        None => format!("{base}/{endpoint}"),
    })
}

/// `path` with every run of `/` made one.
fn collapse_slashes(path: &str) -> Cow<'_, str> {
    if !path.contains("//") {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    let mut last_slash = false;
    for c in path.chars() {
        if c == '/' && last_slash {
            continue;
        }
        last_slash = c == '/';
        out.push(c);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn endpoint_names_slashes_and_ids_are_made_canonical() {
        let b = "/scim/v2";
        for (path, want) in [
            ("/scim/v2/users", Some("/scim/v2/Users")),
            ("/scim/v2/%75sers", Some("/scim/v2/Users")),
            ("/scim/v2/%55sers", Some("/scim/v2/Users")),
            ("/scim/v2/%2Fsers", None),
            ("/scim/v2/USERS", Some("/scim/v2/Users")),
            ("/scim/v2/Users/", Some("/scim/v2/Users")),
            ("/scim/v2//Users", Some("/scim/v2/Users")),
            ("//scim//v2///groups//", Some("/scim/v2/Groups")),
            ("/scim/v2/groups/.SEARCH", Some("/scim/v2/Groups/.search")),
            ("/scim/v2/Users/.Search/", Some("/scim/v2/Users/.search")),
            ("/scim/v2/.SEARCH", Some("/scim/v2/.search")),
            ("/scim/v2/.search/", Some("/scim/v2/.search")),
            ("/scim/v2/serviceproviderconfig", Some("/scim/v2/ServiceProviderConfig")),
            ("/scim/v2/schemas/", Some("/scim/v2/Schemas")),
            ("/scim/v2/resourcetypes/User/", Some("/scim/v2/ResourceTypes/User")),
            // Ids keep their case; only the endpoint name and the slashes change.
            ("/scim/v2/users/AbC-1", Some("/scim/v2/Users/AbC-1")),
            ("/scim/v2/Users/AbC-1/", Some("/scim/v2/Users/AbC-1")),
            ("/scim/v2/Users//AbC-1", Some("/scim/v2/Users/AbC-1")),
            (
                "/scim/v2/schemas/urn:ietf:params:scim:schemas:core:2.0:User",
                Some("/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"),
            ),
            ("/scim/v2/Users/AbC-1/Extra", None),
            ("/scim/v2/users/AbC-1/Extra", Some("/scim/v2/Users/AbC-1/Extra")),
            // `.search` is a segment name only right after Users or Groups.
            ("/scim/v2/Schemas/.SEARCH", None),
            // The base path itself loses its trailing slash.
            ("/scim/v2/", Some("/scim/v2")),
            ("/scim/v2//", Some("/scim/v2")),
            // Already canonical, or not ours: untouched.
            ("/scim/v2/Users", None),
            ("/scim/v2/Users/AbC-1", None),
            ("/scim/v2/Groups/.search", None),
            ("/scim/v2", None),
            ("/scim/v2/Nope", None),
            ("/scim/v2/Nope/", None),
            ("/scim/v2x/Users", None),
            ("/SCIM/v2/Users", None),
            ("/healthz", None),
            ("/metrics", None),
            ("/", None),
            ("", None),
            ("*", None),
        ] {
            assert_eq!(canonical(path, b).as_deref(), want, "{path}");
        }
    }

    #[test]
    fn an_empty_base_path_normalises_from_the_root() {
        assert_eq!(canonical("/users/", "").as_deref(), Some("/Users"));
        assert_eq!(canonical("//Users", "").as_deref(), Some("/Users"));
        assert_eq!(canonical("/Users/.SEARCH", "").as_deref(), Some("/Users/.search"));
        assert_eq!(canonical("/healthz", ""), None);
        assert_eq!(canonical("/healthz/", ""), None);
        assert_eq!(canonical("/", ""), None);
        assert_eq!(canonical("//", "").as_deref(), Some("/"));
    }
}
