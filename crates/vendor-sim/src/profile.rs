//! What makes one simulated app differ from another: the [`Profile`] trait and its generic SCIM 2.0
//! implementation.
//!
//! A vendor profile overrides the hooks it needs: which extension schemas it knows and accepts,
//! whether it has groups, which attributes must be unique, which filters it understands, how it
//! reads a body, the rules a user must pass, and what the app does to a user when it stores it.
//! Each hook is a *named capability*, so the server never asks which vendor it is.
//!
//! The vendor profiles — [`JostleProfile`], [`JoynFsmProfile`], [`JumpCloudProfile`] — are
//! written from `shared/VENDORS.md` and the vendor documents it digests, each rule with its source
//! in the profile's module doc, and never from the gateway's adapters: they are the independent
//! check that an adapter sends only what the real app would accept. They refuse `PUT` of a user
//! ([`Profile::replaces_users`]): Entra ID, the only client their documents describe, never sends
//! one. PATCH bodies pass the profile's `read_body` and are then applied by the simulator's own
//! applier (`crate::patch`, not the gateway's engine), which asks the profile about every path an
//! operation names ([`Profile::check_patch_target`]).

mod jostle;
mod joyn_fsm;
mod jumpcloud;
mod rules;

use std::fmt::Debug;
use std::str::FromStr;
use std::sync::Arc;

use scimgw_scim::ScimError;
use scimgw_scim::filter::Filter;
use scimgw_scim::schema::{ENTERPRISE_USER_SCHEMA, Schema};
use serde_json::{Map, Value};

pub use crate::patch::PatchTarget;
pub use jostle::{JOSTLE_USER_SCHEMA, JostleProfile};
pub use joyn_fsm::{JOYN_FSM_USER_SCHEMA, JoynFsmProfile};
pub use jumpcloud::{AAD_OPT_FLAG, JumpCloudProfile};

/// A resource type the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `/Users`
    User,
    /// `/Groups`
    Group,
}

impl Kind {
    /// The resource type's name in the schema registry.
    pub fn resource_type(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }

    /// The endpoint, without the leading slash.
    pub fn endpoint(self) -> &'static str {
        match self {
            Kind::User => "Users",
            Kind::Group => "Groups",
        }
    }
}

/// The write a resource is being validated for.
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    /// `POST`, or a pre-seeded resource.
    Create,
    /// `PUT`; `previous` is the stored resource.
    Replace {
        /// The stored resource, in canonical form.
        previous: &'a Map<String, Value>,
    },
    /// `PATCH`; `previous` is the stored resource before the operations.
    Patch {
        /// The stored resource, in canonical form.
        previous: &'a Map<String, Value>,
    },
}

/// What a profile may look at to refuse a request before it is routed (see [`Profile::admit`]).
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The path below the base path, e.g. `/Users/abc`.
    pub path: &'a str,
    /// The raw query string, e.g. `aadOptscim062020` or `filter=…`.
    pub query: &'a str,
    /// The request headers (lower-case names), Authorization excluded.
    pub headers: &'a [(String, String)],
}

impl RequestInfo<'_> {
    /// Whether the query string carries the flag or parameter `name` (case-insensitive), as in
    /// `?aadOptscim062020`.
    pub fn has_query_flag(&self, name: &str) -> bool {
        self.query.split('&').any(|pair| pair.split('=').next().is_some_and(|k| k.eq_ignore_ascii_case(name)))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The behaviour of one simulated app. Every method has the generic SCIM 2.0 default.
///
/// Resources reach the hooks in the canonical form of `scimgw_scim::resource::validate_resource`:
/// attribute names in schema spelling, extension data under its URN key, no `id` or `meta`.
/// Errors are returned to the client as they are, so a rule's error should be a `400
/// invalidValue` whose `detail` names the attribute and the rule, as the real app would say it.
pub trait Profile: Send + Sync + Debug + 'static {
    /// The name `--profile` takes.
    fn name(&self) -> &'static str;

    /// Extension schemas the app defines, each with the resource type (`"User"`, `"Group"`) it
    /// extends. They join the RFC 7643 registry the simulator validates against.
    fn extension_schemas(&self) -> Vec<(Schema, &'static str)> {
        Vec::new()
    }

    /// The extension URNs the app accepts on `kind`. A resource carrying data under any other
    /// extension is refused with `400 invalidValue`.
    fn accepted_extensions(&self, kind: Kind) -> Vec<String> {
        match kind {
            Kind::User => vec![ENTERPRISE_USER_SCHEMA.to_owned()],
            Kind::Group => Vec::new(),
        }
    }

    /// Whether the app has a Group resource type. Without one, `/Groups` is a 404 and
    /// `/ResourceTypes` lists only User.
    fn supports_groups(&self) -> bool {
        true
    }

    /// Whether `PUT /Users/{id}` is served. The vendor apps are documented only as targets of
    /// Entra ID, which finds, creates (POST), changes (PATCH) and deletes users but never PUTs
    /// one: their simulators answer a PUT with `405`, so an adapter that replaces fails a test
    /// instead of failing at a real app that refuses PUT or treats it as a full replace.
    fn replaces_users(&self) -> bool {
        true
    }

    /// Attribute paths whose values must be unique among resources of `kind` (`409 uniqueness`),
    /// compared as a filter's `eq` compares them (ignoring case unless the attribute is caseExact).
    fn unique_attributes(&self, kind: Kind) -> Vec<String> {
        match kind {
            Kind::User => vec!["userName".into()],
            Kind::Group => vec!["displayName".into()],
        }
    }

    /// The most resources one list response returns (and the default `count`).
    fn max_page_size(&self) -> u64 {
        100
    }

    /// Refuses a request before it is routed: a missing URL flag, a content type the app does not
    /// take. Runs after authentication and fault injection.
    fn admit(&self, _request: &RequestInfo<'_>) -> Result<(), ScimError> {
        Ok(())
    }

    /// Refuses a filter the app does not support (e.g. one on an attribute it cannot filter by).
    /// The filter has already passed schema validation.
    fn check_filter(&self, _kind: Kind, _filter: &Filter) -> Result<(), ScimError> {
        Ok(())
    }

    /// How the app reads a request body as sent, before the protocol core validates it: a `POST`
    /// or `PUT` resource (and a pre-seeded one), or a `PATCH` message. The core's validation and
    /// the simulator's PATCH applier take what Entra ID sends (`"op": "Replace"`, `"active":
    /// "False"`, dotted keys in a path-less `replace`); an app that does not refuses here. An app
    /// that takes another spelling of an attribute rewrites it into the core's here. The default
    /// takes the body as it is.
    fn read_body(&self, _kind: Kind, body: Value, _write: Write<'_>) -> Result<Value, ScimError> {
        Ok(body)
    }

    /// Refuses a PATCH operation's path the app does not take, before the operation is applied:
    /// an attribute outside the vendor's table, a value of a type it does not list. Runs for every
    /// path, and for every key of a path-less `add`/`replace`. The error should be a `400
    /// invalidPath` naming the path. The default takes every path the schemas know.
    fn check_patch_target(&self, _kind: Kind, _target: &PatchTarget<'_>) -> Result<(), ScimError> {
        Ok(())
    }

    /// The app's rules for a user about to be stored, after any PATCH operations are applied.
    fn validate_user(&self, _user: &Map<String, Value>, _write: Write<'_>) -> Result<(), ScimError> {
        Ok(())
    }

    /// The app's rules for a group about to be stored.
    fn validate_group(&self, _group: &Map<String, Value>, _write: Write<'_>) -> Result<(), ScimError> {
        Ok(())
    }

    /// What the app does to a valid user as it stores it (server-assigned attributes, values it
    /// rewrites). The result is stored and returned as is.
    fn transform_user(&self, user: Map<String, Value>, _write: Write<'_>) -> Map<String, Value> {
        user
    }
}

/// A plain RFC 7643/7644 service provider: User with the Enterprise extension and Group, `userName`
/// and group `displayName` unique, every filter the core evaluates.
#[derive(Debug, Clone, Copy, Default)]
pub struct GenericProfile;

impl Profile for GenericProfile {
    fn name(&self) -> &'static str {
        "generic"
    }
}

/// The profiles the binary can run, by name. A vendor profile adds a variant here and one arm in
/// [`ProfileKind::build`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProfileKind {
    /// [`GenericProfile`].
    #[default]
    Generic,
    /// [`JostleProfile`].
    Jostle,
    /// [`JoynFsmProfile`].
    JoynFsm,
    /// [`JumpCloudProfile`].
    JumpCloud,
}

impl ProfileKind {
    /// Every kind, for help texts.
    pub const ALL: &'static [ProfileKind] =
        &[ProfileKind::Generic, ProfileKind::Jostle, ProfileKind::JoynFsm, ProfileKind::JumpCloud];

    /// The name `--profile` takes.
    pub fn name(self) -> &'static str {
        match self {
            ProfileKind::Generic => "generic",
            ProfileKind::Jostle => "jostle",
            ProfileKind::JoynFsm => "joyn-fsm",
            ProfileKind::JumpCloud => "jumpcloud",
        }
    }

    /// The profile.
    pub fn build(self) -> Arc<dyn Profile> {
        match self {
            ProfileKind::Generic => Arc::new(GenericProfile),
            ProfileKind::Jostle => Arc::new(JostleProfile),
            ProfileKind::JoynFsm => Arc::new(JoynFsmProfile),
            ProfileKind::JumpCloud => Arc::new(JumpCloudProfile),
        }
    }
}

impl FromStr for ProfileKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.iter().copied().find(|k| k.name().eq_ignore_ascii_case(s)).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
            format!("unknown profile \"{s}\"; known profiles: {}", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_kinds_parse_by_name_ignoring_case() {
        assert_eq!("Generic".parse::<ProfileKind>(), Ok(ProfileKind::Generic));
        assert_eq!("JumpCloud".parse::<ProfileKind>(), Ok(ProfileKind::JumpCloud));
        assert_eq!("joyn-fsm".parse::<ProfileKind>(), Ok(ProfileKind::JoynFsm));
        assert_eq!("jostle".parse::<ProfileKind>(), Ok(ProfileKind::Jostle));
        assert!("jostle-ish".parse::<ProfileKind>().unwrap_err().contains("generic"));
        for k in ProfileKind::ALL {
            assert_eq!(k.build().name(), k.name());
        }
    }

    #[test]
    fn query_flags_are_found_with_or_without_a_value() {
        let info = RequestInfo { method: "GET", path: "/Users", query: "aadOptscim062020&x=1", headers: &[] };
        assert!(info.has_query_flag("AADOPTSCIM062020"));
        assert!(info.has_query_flag("x"));
        assert!(!info.has_query_flag("filter"));
    }
}
