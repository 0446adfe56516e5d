//! Schema definitions (RFC 7643 §2, §7): attributes with every characteristic, the resource types
//! that tie a core schema to its extensions, and a registry that extensions join at run time.
//!
//! The definitions serve three purposes: validating incoming resources, telling the filter
//! evaluator and the PATCH engine each attribute's type and `caseExact`, and being served as
//! `/Schemas` and `/ResourceTypes`. Attribute names are compared case-insensitively everywhere
//! (RFC 7643 §2.1); schema URNs too.

mod builtin;

use serde::{Deserialize, Serialize};

pub use builtin::{common_attributes, enterprise_user_schema, group_schema, user_schema};

/// URN of the core User schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// URN of the Enterprise User extension.
pub const ENTERPRISE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// URN of the core Group schema.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// Schema URNs that clients are known to send and that carry nothing: accepted on input, dropped,
/// never echoed. Microsoft's own provisioning tutorial still puts the first one in group creates.
pub const IGNORED_SCHEMAS: &[&str] = &["http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"];

/// Enterprise User attributes an IdP may send without their URN, read on input (bodies, PATCH
/// paths, path-less PATCH keys) as the Enterprise ones and stored there. JumpCloud's import guide
/// (`shared/seeds/jumpcloud-entra-scim-import.txt`, its mapping table, lines 68 and 70) writes
/// `costCenter` and `organization` bare, unlike `department` and `employeeNumber`, so an Entra
/// admin who follows it maps them as bare target attributes. RFC 7643 §4.3 defines both only in
/// the Enterprise extension and the core User schema has no attribute by either name, so the bare
/// name is unambiguous. Any other extension attribute still needs its URN (RFC 7644 §3.10).
pub const BARE_ENTERPRISE_ATTRIBUTES: &[&str] = &["costCenter", "organization"];

/// The data type of an attribute (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttrType {
    /// A sequence of characters.
    String,
    /// `true` or `false`.
    Boolean,
    /// A real number.
    Decimal,
    /// A whole number.
    Integer,
    /// An `xsd:dateTime` string, e.g. `2008-01-23T04:56:22Z`.
    DateTime,
    /// Base64-encoded bytes.
    Binary,
    /// A URI referring to a resource.
    Reference,
    /// A set of sub-attributes.
    Complex,
}

/// Who may change an attribute (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    /// Set by the service provider only; client input is ignored.
    ReadOnly,
    /// Freely changed.
    ReadWrite,
    /// Set once, never changed after.
    Immutable,
    /// Set by the client, never returned (e.g. `password`).
    WriteOnly,
}

/// When an attribute is returned (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    /// Always, whatever `attributes`/`excludedAttributes` say.
    Always,
    /// Never.
    Never,
    /// Unless excluded.
    Default,
    /// Only when named in `attributes`.
    Request,
}

/// How unique an attribute's value is (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    /// No uniqueness enforced.
    None,
    /// Unique within the service provider (per tenant, for the gateway).
    Server,
    /// Globally unique.
    Global,
}

/// One attribute definition with all of its characteristics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    /// The attribute's name, in its canonical spelling.
    pub name: String,
    /// Its data type.
    #[serde(rename = "type")]
    pub ty: AttrType,
    /// Whether it holds a list of values.
    pub multi_valued: bool,
    /// Human-readable description.
    #[serde(default)]
    pub description: String,
    /// Whether a resource must carry it.
    pub required: bool,
    /// Suggested values; not enforced (vendors use their own, e.g. Jostle's `alternate1` email type).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canonical_values: Vec<String>,
    /// Whether string comparisons are case-sensitive.
    pub case_exact: bool,
    /// Who may change it.
    pub mutability: Mutability,
    /// When it is returned.
    pub returned: Returned,
    /// How unique its value is.
    pub uniqueness: Uniqueness,
    /// For `reference` attributes: what the URI may point at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_types: Vec<String>,
    /// For `complex` attributes: the sub-attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_attributes: Vec<Attribute>,
    /// For multi-valued attributes: how many values one resource may hold (400 beyond), a bound
    /// on what one request can make the gateway store and compare. `None`: unbounded, for
    /// `members`, which the store keeps as rows. Not part of RFC 7643's schema representation.
    #[serde(skip, default = "default_max_values")]
    pub max_values: Option<usize>,
}

/// The values a multi-valued attribute may hold unless its schema says otherwise: far above what
/// any identity provider sends for a person (a few emails, phone numbers, roles), and low enough
/// that checking a PATCH against them stays cheap (see [`Attribute::max_values`]).
pub const MAX_VALUES: usize = 1_000;

fn default_max_values() -> Option<usize> {
    Some(MAX_VALUES)
}

impl Attribute {
    /// A single-valued, optional, readWrite, case-insensitive attribute returned by default.
    pub fn new(name: &str, ty: AttrType) -> Self {
        Self {
            name: name.to_owned(),
            ty,
            multi_valued: false,
            description: String::new(),
            required: false,
            canonical_values: Vec::new(),
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            reference_types: Vec::new(),
            sub_attributes: Vec::new(),
            max_values: Some(MAX_VALUES),
        }
    }

    /// A `string` attribute.
    pub fn string(name: &str) -> Self {
        Self::new(name, AttrType::String)
    }

    /// A `boolean` attribute.
    pub fn boolean(name: &str) -> Self {
        Self::new(name, AttrType::Boolean)
    }

    /// A `dateTime` attribute.
    pub fn date_time(name: &str) -> Self {
        Self::new(name, AttrType::DateTime)
    }

    /// An `integer` attribute.
    pub fn integer(name: &str) -> Self {
        Self::new(name, AttrType::Integer)
    }

    /// A `decimal` attribute.
    pub fn decimal(name: &str) -> Self {
        Self::new(name, AttrType::Decimal)
    }

    /// A `binary` attribute.
    pub fn binary(name: &str) -> Self {
        Self::new(name, AttrType::Binary)
    }

    /// A `reference` attribute pointing at the given reference types.
    pub fn reference(name: &str, types: &[&str]) -> Self {
        let mut a = Self::new(name, AttrType::Reference);
        a.reference_types = types.iter().map(|t| (*t).to_owned()).collect();
        a.case_exact = true;
        a
    }

    /// A `complex` attribute with the given sub-attributes.
    pub fn complex(name: &str, subs: Vec<Attribute>) -> Self {
        let mut a = Self::new(name, AttrType::Complex);
        a.sub_attributes = subs;
        a
    }

    /// Sets the description.
    pub fn desc(mut self, text: &str) -> Self {
        self.description = text.to_owned();
        self
    }

    /// Makes it multi-valued.
    pub fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }

    /// Lets a multi-valued attribute hold any number of values (see [`Attribute::max_values`]).
    pub fn unbounded(mut self) -> Self {
        self.max_values = None;
        self
    }

    /// Makes it required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Makes string comparisons case-sensitive.
    pub fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }

    /// Sets the mutability.
    pub fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }

    /// Sets when it is returned.
    pub fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }

    /// Sets its uniqueness.
    pub fn uniqueness(mut self, u: Uniqueness) -> Self {
        self.uniqueness = u;
        self
    }

    /// Sets the canonical values.
    pub fn canonical(mut self, values: &[&str]) -> Self {
        self.canonical_values = values.iter().map(|v| (*v).to_owned()).collect();
        self
    }

    /// The sub-attribute called `name` (case-insensitive).
    pub fn sub_attribute(&self, name: &str) -> Option<&Attribute> {
        self.sub_attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// A schema: a URN and its attributes (RFC 7643 §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    /// The schema URN.
    pub id: String,
    /// Its short name.
    pub name: String,
    /// Human-readable description.
    #[serde(default)]
    pub description: String,
    /// Its top-level attributes.
    pub attributes: Vec<Attribute>,
}

impl Schema {
    /// The attribute called `name` (case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// An extension schema a resource type takes (RFC 7643 §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaExtension {
    /// The extension's URN.
    pub schema: String,
    /// Whether every resource of the type must carry it.
    pub required: bool,
}

/// A resource type: a name, an endpoint, a core schema and its extensions (RFC 7643 §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceType {
    /// The resource type's id, equal to its name (`User`, `Group`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its endpoint relative to the base URL (`/Users`).
    pub endpoint: String,
    /// Human-readable description.
    #[serde(default)]
    pub description: String,
    /// The core schema's URN.
    pub schema: String,
    /// The extensions it takes.
    #[serde(default)]
    pub schema_extensions: Vec<SchemaExtension>,
}

/// Why a schema could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The URN is already registered with a different definition.
    #[error("schema {0} is already registered with a different definition")]
    Conflict(String),
    /// No resource type of that name.
    #[error("no resource type named {0}")]
    UnknownResourceType(String),
    /// An extension URN must be a URN whose last segment is not an attribute name clash.
    #[error("schema id {0} is not a URN (it must start with `urn:`)")]
    NotAUrn(String),
}

/// What validation does with attributes that no registered schema defines.
///
/// RFC 7644 §3.3 lets a service provider ignore attributes it does not support, and a gateway in
/// front of many identity providers should: a typo in an admin's custom mapping, or an extension
/// the gateway has never heard of, would otherwise block a person's provisioning. The gateway runs
/// with [`UnknownAttributes::Accept`] unless `strict_attributes` is set; the vendor simulators and
/// the registry's default are strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownAttributes {
    /// An unknown attribute (or extension URN) is a 400 `invalidSyntax` naming it.
    #[default]
    Reject,
    /// Unknown attributes of a registered schema (core or extension), and unknown
    /// sub-attributes, are dropped and reported to the hook by name; attributes under an
    /// extension URN that is not registered are kept as sent, under that URN.
    Accept(DropHook),
}

/// Called with the name of each attribute that [`UnknownAttributes::Accept`] drops, so that the
/// caller can count and log it (names only: never the value).
#[derive(Clone, Copy)]
pub struct DropHook(pub fn(&str));

impl DropHook {
    /// A hook that does nothing.
    pub const NONE: DropHook = DropHook(|_| {});

    /// Reports one dropped attribute.
    pub fn dropped(self, name: &str) {
        (self.0)(name);
    }
}

impl std::fmt::Debug for DropHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DropHook")
    }
}

/// Hooks do not take part in equality: two registries with the same schemas and policy are equal.
impl PartialEq for DropHook {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for DropHook {}

/// `urn:<nid>:<nss>`: a NID of letters, digits and `-` (at most 32), and a namespace-specific
/// string of printable ASCII without spaces (RFC 8141's shape, not its every rule).
fn is_urn(s: &str) -> bool {
    let mut parts = s.splitn(3, ':');
    let (Some(scheme), Some(nid), Some(nss)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    scheme.eq_ignore_ascii_case("urn")
        && (1..=32).contains(&nid.len())
        && nid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !nss.is_empty()
        && !nss.starts_with(':')
        && !nss.ends_with(':')
        && nss.bytes().all(|b| b.is_ascii_graphic())
}

/// Every schema and resource type the service knows. Built at start-up, then shared read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    schemas: Vec<Schema>,
    resource_types: Vec<ResourceType>,
    common: Vec<Attribute>,
    unknown: UnknownAttributes,
}

impl Default for Registry {
    /// The RFC 7643 registry: User with the Enterprise extension, and Group.
    fn default() -> Self {
        Self {
            schemas: vec![user_schema(), enterprise_user_schema(), group_schema()],
            resource_types: vec![
                ResourceType {
                    id: "User".into(),
                    name: "User".into(),
                    endpoint: "/Users".into(),
                    description: "User Account".into(),
                    schema: USER_SCHEMA.into(),
                    schema_extensions: vec![SchemaExtension { schema: ENTERPRISE_USER_SCHEMA.into(), required: false }],
                },
                ResourceType {
                    id: "Group".into(),
                    name: "Group".into(),
                    endpoint: "/Groups".into(),
                    description: "Group".into(),
                    schema: GROUP_SCHEMA.into(),
                    schema_extensions: Vec::new(),
                },
            ],
            common: common_attributes(),
            unknown: UnknownAttributes::Reject,
        }
    }
}

impl Registry {
    /// Registers an extension schema on a resource type. Registering the same definition twice is
    /// a no-op (several targets may use one adapter); a different definition under a known URN is
    /// an error.
    pub fn register_extension(&mut self, schema: Schema, resource_type: &str) -> Result<(), RegistryError> {
        if !schema.id.to_ascii_lowercase().starts_with("urn:") {
            return Err(RegistryError::NotAUrn(schema.id));
        }
        let rt_index = self
            .resource_types
            .iter()
            .position(|rt| rt.name.eq_ignore_ascii_case(resource_type))
            .ok_or_else(|| RegistryError::UnknownResourceType(resource_type.to_owned()))?;
        match self.schemas.iter().find(|s| s.id.eq_ignore_ascii_case(&schema.id)) {
            Some(existing) if *existing != schema => return Err(RegistryError::Conflict(schema.id)),
            Some(_) => {}
            None => self.schemas.push(schema.clone()),
        }
        let rt = &mut self.resource_types[rt_index];
        if !rt.schema_extensions.iter().any(|e| e.schema.eq_ignore_ascii_case(&schema.id)) {
            rt.schema_extensions.push(SchemaExtension { schema: schema.id, required: false });
        }
        Ok(())
    }

    /// Sets what validation does with attributes no schema defines (default: reject).
    pub fn set_unknown_attributes(&mut self, policy: UnknownAttributes) {
        self.unknown = policy;
    }

    /// What validation does with attributes no schema defines.
    pub fn unknown_attributes(&self) -> UnknownAttributes {
        self.unknown
    }

    /// Every schema, core first.
    pub fn schemas(&self) -> &[Schema] {
        &self.schemas
    }

    /// The schema with this URN (case-insensitive).
    pub fn schema(&self, id: &str) -> Option<&Schema> {
        self.schemas.iter().find(|s| s.id.eq_ignore_ascii_case(id))
    }

    /// Every resource type.
    pub fn resource_types(&self) -> &[ResourceType] {
        &self.resource_types
    }

    /// The schemas of one resource type, for validation, filtering and PATCH.
    pub fn resource(&self, resource_type: &str) -> Option<ResourceSchema<'_>> {
        let rt = self.resource_types.iter().find(|rt| rt.name.eq_ignore_ascii_case(resource_type))?;
        let core = self.schema(&rt.schema)?;
        let extensions =
            rt.schema_extensions.iter().filter_map(|e| self.schema(&e.schema).map(|s| (s, e.required))).collect();
        Some(ResourceSchema { resource_type: rt, core, extensions, common: &self.common, unknown: self.unknown })
    }
}

/// Where a resolved attribute lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location<'a> {
    /// A common attribute (`id`, `externalId`, `meta`), stored at the top level.
    Common,
    /// The core schema, stored at the top level.
    Core,
    /// An extension, stored under its URN key.
    Extension(&'a Schema),
}

/// An attribute reference resolved against a resource type's schemas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolved<'a> {
    /// Where the top-level attribute lives.
    pub location: Location<'a>,
    /// The top-level attribute.
    pub attribute: &'a Attribute,
    /// The sub-attribute, when the reference named one.
    pub sub_attribute: Option<&'a Attribute>,
}

impl Resolved<'_> {
    /// The attribute whose value the reference designates: the sub-attribute if any.
    pub fn leaf(&self) -> &Attribute {
        self.sub_attribute.unwrap_or(self.attribute)
    }
}

/// The schemas of one resource type: the view that validation, filters and PATCH work with.
#[derive(Debug, Clone)]
pub struct ResourceSchema<'a> {
    /// The resource type.
    pub resource_type: &'a ResourceType,
    /// Its core schema.
    pub core: &'a Schema,
    /// Its extension schemas, each with whether it is required.
    pub extensions: Vec<(&'a Schema, bool)>,
    /// The attributes every resource has (`id`, `externalId`, `meta`).
    pub common: &'a [Attribute],
    /// What validation does with attributes no schema defines.
    pub unknown: UnknownAttributes,
}

impl<'a> ResourceSchema<'a> {
    /// The extension schema with this URN (case-insensitive).
    pub fn extension(&self, urn: &str) -> Option<&'a Schema> {
        self.extensions.iter().find(|(s, _)| s.id.eq_ignore_ascii_case(urn)).map(|(s, _)| *s)
    }

    /// The Enterprise extension's spelling of `name` when it is one of
    /// [`BARE_ENTERPRISE_ATTRIBUTES`], sent without a URN, and this resource type has that
    /// extension and no core or common attribute by the name.
    pub fn bare_enterprise_attribute(&self, name: &str) -> Option<&'a Attribute> {
        if !BARE_ENTERPRISE_ATTRIBUTES.iter().any(|a| a.eq_ignore_ascii_case(name)) || self.resolve_core(name).is_some()
        {
            return None;
        }
        self.extension(ENTERPRISE_USER_SCHEMA)?.attribute(name)
    }

    /// Whether `urn` is this resource type's core schema or one of its extensions.
    pub fn knows_schema(&self, urn: &str) -> bool {
        self.core.id.eq_ignore_ascii_case(urn) || self.extension(urn).is_some()
    }

    /// The drop hook when unknown attributes are accepted; `None` when they are refused.
    pub fn lenient(&self) -> Option<DropHook> {
        match self.unknown {
            UnknownAttributes::Reject => None,
            UnknownAttributes::Accept(hook) => Some(hook),
        }
    }

    /// Whether `urn` names an extension kept as sent: accepted unknown attributes are on, `urn`
    /// is a URN (`urn:<nid>:<nss>`, RFC 8141's shape), and it neither is, nor lies inside, nor
    /// contains a schema this type has (`urn:…:core:2.0:User:name` and `urn:…:core:2.0` are not
    /// extensions: they would shadow registered attributes on the next PUT).
    pub fn is_opaque_extension(&self, urn: &str) -> bool {
        self.lenient().is_some()
            && is_urn(urn)
            && !self.overlaps_registered(urn)
            && !IGNORED_SCHEMAS.iter().any(|s| s.eq_ignore_ascii_case(urn))
    }

    /// Whether `key` equals a registered schema URN of this type, starts with one followed by
    /// `:`, or is such a prefix of one (all ignoring case).
    fn overlaps_registered(&self, key: &str) -> bool {
        let starts = |long: &str, short: &str| {
            long.len() > short.len()
                && long.as_bytes()[short.len()] == b':'
                && long.get(..short.len()).is_some_and(|p| p.eq_ignore_ascii_case(short))
        };
        std::iter::once(self.core.id.as_str())
            .chain(self.extensions.iter().map(|(e, _)| e.id.as_str()))
            .any(|id| id.eq_ignore_ascii_case(key) || starts(key, id) || starts(id, key))
    }

    /// Splits a key or path under an extension kept as sent into the extension's URN and, when it
    /// names one, the attribute (`None`: the whole extension). A URN cannot say where the schema
    /// ends, so the convention every registered schema follows decides: an extension's URN ends
    /// with its resource type's name. `urn:…:CustomExt:2.0:User` is the whole extension and
    /// `urn:…:CustomExt:2.0:User:costCenter` its attribute `costCenter`; a URN with no such
    /// segment is a whole extension. The rule reads only the key, so a stored resource splits the
    /// same way when it is sent back. `None` unless [`Self::is_opaque_extension`] holds for the
    /// extension's URN.
    pub fn opaque_split<'k>(&self, key: &'k str) -> Option<(&'k str, Option<&'k str>)> {
        if self.lenient().is_none() || self.overlaps_registered(key) {
            return None;
        }
        let type_name = self.resource_type.name.as_str();
        // The byte offset just past the last `:<type>` segment.
        let mut end = None;
        let mut offset = 0;
        for segment in key.split(':') {
            offset += segment.len();
            if segment.eq_ignore_ascii_case(type_name) {
                end = Some(offset);
            }
            offset += 1;
        }
        let (urn, attr) = match end {
            Some(end) if end < key.len() => (key.get(..end)?, key.get(end + 1..).filter(|a| !a.is_empty())),
            _ => (key, None),
        };
        if end.is_some_and(|end| end < key.len()) && attr.is_none() {
            return None;
        }
        self.is_opaque_extension(urn).then_some((urn, attr))
    }
    /// Resolves `[urn:]name[.sub]`, all case-insensitive. With a URN, only that schema is searched
    /// (the core URN names core attributes); without, the common attributes, then the core schema.
    /// Extension attributes need their URN, as RFC 7644 §3.10 requires.
    pub fn resolve(&self, urn: Option<&str>, name: &str, sub: Option<&str>) -> Option<Resolved<'a>> {
        let (location, attribute) = match urn {
            Some(urn) if self.core.id.eq_ignore_ascii_case(urn) => self.resolve_core(name)?,
            Some(urn) => {
                let ext = self.extension(urn)?;
                (Location::Extension(ext), ext.attribute(name)?)
            }
            None => self.resolve_core(name)?,
        };
        let sub_attribute = match sub {
            Some(sub) => Some(attribute.sub_attribute(sub)?),
            None => None,
        };
        Some(Resolved { location, attribute, sub_attribute })
    }

    fn resolve_core(&self, name: &str) -> Option<(Location<'a>, &'a Attribute)> {
        if let Some(a) = self.common.iter().find(|a| a.name.eq_ignore_ascii_case(name)) {
            return Some((Location::Common, a));
        }
        self.core.attribute(name).map(|a| (Location::Core, a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_lookup_is_case_insensitive() {
        let reg = Registry::default();
        let user = reg.resource("user").unwrap();
        let r = user.resolve(None, "USERNAME", None).unwrap();
        assert_eq!(r.attribute.name, "userName");
        let r = user
            .resolve(Some("URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER"), "Department", None)
            .unwrap();
        assert_eq!(r.attribute.name, "department");
        assert!(matches!(r.location, Location::Extension(s) if s.id == ENTERPRISE_USER_SCHEMA));
        let r = user.resolve(None, "emails", Some("VALUE")).unwrap();
        assert_eq!(r.leaf().name, "value");
    }

    #[test]
    fn extension_attributes_need_their_urn() {
        let reg = Registry::default();
        let user = reg.resource("User").unwrap();
        assert!(user.resolve(None, "department", None).is_none());
        assert!(user.resolve(Some(USER_SCHEMA), "userName", None).is_some());
        assert!(user.resolve(None, "id", None).is_some());
        assert!(user.resolve(None, "meta", Some("lastModified")).is_some());
    }

    #[test]
    fn only_cost_center_and_organization_may_come_without_the_enterprise_urn() {
        let reg = Registry::default();
        let user = reg.resource("User").unwrap();
        assert_eq!(user.bare_enterprise_attribute("COSTCENTER").map(|a| a.name.as_str()), Some("costCenter"));
        assert_eq!(user.bare_enterprise_attribute("organization").map(|a| a.name.as_str()), Some("organization"));
        assert!(user.bare_enterprise_attribute("department").is_none());
        assert!(user.resolve(None, "costCenter", None).is_none(), "filters and projections still need the URN");
        assert!(reg.resource("Group").unwrap().bare_enterprise_attribute("costCenter").is_none());
    }

    #[test]
    fn registering_an_extension_attaches_it_to_the_resource_type() {
        let mut reg = Registry::default();
        let ext = Schema {
            id: "urn:ietf:params:scim:schemas:extension:jostle:2.0:User".into(),
            name: "JostleUser".into(),
            description: String::new(),
            attributes: vec![Attribute::string("alternateEmail1Label")],
        };
        reg.register_extension(ext.clone(), "User").unwrap();
        reg.register_extension(ext.clone(), "User").unwrap();
        let user = reg.resource("User").unwrap();
        assert_eq!(user.extensions.len(), 2);
        assert!(user.resolve(Some(&ext.id), "alternateemail1label", None).is_some());
        let mut other = ext.clone();
        other.attributes.push(Attribute::string("x"));
        assert_eq!(reg.register_extension(other, "User"), Err(RegistryError::Conflict(ext.id.clone())));
        assert!(matches!(reg.register_extension(ext, "Device"), Err(RegistryError::UnknownResourceType(_))));
    }

    #[test]
    fn schemas_serialize_with_rfc_7643_characteristic_names() {
        let v = serde_json::to_value(user_schema()).unwrap();
        let user_name = &v["attributes"][0];
        assert_eq!(user_name["name"], "userName");
        assert_eq!(user_name["type"], "string");
        assert_eq!(user_name["multiValued"], false);
        assert_eq!(user_name["required"], true);
        assert_eq!(user_name["caseExact"], false);
        assert_eq!(user_name["mutability"], "readWrite");
        assert_eq!(user_name["returned"], "default");
        assert_eq!(user_name["uniqueness"], "server");
    }
}
