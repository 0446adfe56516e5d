//! The schemas RFC 7643 defines (§4, §8.7): core User, Enterprise User, Group, and the common
//! attributes every resource carries (§3.1).

use super::{Attribute, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, Mutability, Returned, Schema, USER_SCHEMA, Uniqueness};

use Mutability::{Immutable, ReadOnly, WriteOnly};

/// `id`, `externalId` and `meta` (RFC 7643 §3.1). They belong to no schema and are not listed
/// under `/Schemas`, but every resource has them.
pub fn common_attributes() -> Vec<Attribute> {
    vec![
        Attribute::string("id")
            .desc("Unique identifier for the resource, assigned by the service provider.")
            .case_exact()
            .mutability(ReadOnly)
            .returned(Returned::Always)
            .uniqueness(Uniqueness::Server),
        Attribute::string("externalId")
            .desc("Identifier of the resource as defined by the provisioning client.")
            .case_exact(),
        Attribute::complex(
            "meta",
            vec![
                Attribute::string("resourceType").case_exact().mutability(ReadOnly),
                Attribute::date_time("created").mutability(ReadOnly),
                Attribute::date_time("lastModified").mutability(ReadOnly),
                Attribute::reference("location", &["uri"]).mutability(ReadOnly),
                Attribute::string("version").case_exact().mutability(ReadOnly),
            ],
        )
        .desc("Resource metadata.")
        .mutability(ReadOnly),
    ]
}

/// `value`, `display`, `type`, `primary`: the shape of most multi-valued attributes.
fn multi(name: &str, desc: &str, value: Attribute, types: &[&str]) -> Attribute {
    Attribute::complex(
        name,
        vec![
            value,
            Attribute::string("display").desc("A human-readable name, primarily used for display purposes."),
            Attribute::string("type").desc("A label indicating the attribute's function.").canonical(types),
            Attribute::boolean("primary").desc("Whether this is the primary or preferred value."),
        ],
    )
    .desc(desc)
    .multi()
}

/// The core User schema (RFC 7643 §4.1, §8.7.1).
pub fn user_schema() -> Schema {
    Schema {
        id: USER_SCHEMA.into(),
        name: "User".into(),
        description: "User Account".into(),
        attributes: vec![
            Attribute::string("userName")
                .desc("Unique identifier for the User, typically used to authenticate.")
                .required()
                .uniqueness(Uniqueness::Server),
            Attribute::complex(
                "name",
                vec![
                    Attribute::string("formatted").desc("The full name, formatted for display."),
                    Attribute::string("familyName").desc("The family name, or last name."),
                    Attribute::string("givenName").desc("The given name, or first name."),
                    Attribute::string("middleName").desc("The middle name(s)."),
                    Attribute::string("honorificPrefix").desc("The honorific prefix(es), e.g. 'Ms.'."),
                    Attribute::string("honorificSuffix").desc("The honorific suffix(es), e.g. 'III'."),
                ],
            )
            .desc("The components of the user's real name."),
            Attribute::string("displayName").desc("The name of the User, suitable for display to end-users."),
            Attribute::string("nickName").desc("The casual way to address the user."),
            Attribute::reference("profileUrl", &["external"])
                .desc("A fully qualified URL to the User's online profile."),
            Attribute::string("title").desc("The user's title, such as 'Vice President'."),
            Attribute::string("userType").desc("The relationship between the organization and the user."),
            Attribute::string("preferredLanguage").desc("The User's preferred written or spoken language."),
            Attribute::string("locale").desc("The User's default location, e.g. 'en-US'."),
            Attribute::string("timezone").desc("The User's time zone in the 'Olson' format."),
            Attribute::boolean("active").desc("The User's administrative status."),
            Attribute::string("password")
                .desc("The User's cleartext password. Accepted and discarded by this service; never returned.")
                .mutability(WriteOnly)
                .returned(Returned::Never),
            multi("emails", "Email addresses for the user.", Attribute::string("value"), &["work", "home", "other"]),
            multi(
                "phoneNumbers",
                "Phone numbers for the User.",
                Attribute::string("value"),
                &["work", "home", "mobile", "fax", "pager", "other"],
            ),
            multi(
                "ims",
                "Instant messaging addresses for the User.",
                Attribute::string("value"),
                &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
            ),
            multi(
                "photos",
                "URLs of photos of the User.",
                Attribute::reference("value", &["external"]),
                &["photo", "thumbnail"],
            ),
            Attribute::complex(
                "addresses",
                vec![
                    Attribute::string("formatted").desc("The full mailing address, formatted for display."),
                    Attribute::string("streetAddress").desc("The full street address component."),
                    Attribute::string("locality").desc("The city or locality component."),
                    Attribute::string("region").desc("The state or region component."),
                    Attribute::string("postalCode").desc("The zip code or postal code component."),
                    Attribute::string("country").desc("The country name component."),
                    Attribute::string("type")
                        .desc("A label indicating the attribute's function.")
                        .canonical(&["work", "home", "other"]),
                    Attribute::boolean("primary").desc("Whether this is the primary address."),
                ],
            )
            .desc("A physical mailing address for this User.")
            .multi(),
            Attribute::complex(
                "groups",
                vec![
                    Attribute::string("value").desc("The identifier of the User's group.").mutability(ReadOnly),
                    Attribute::reference("$ref", &["User", "Group"]).mutability(ReadOnly),
                    Attribute::string("display").mutability(ReadOnly),
                    Attribute::string("type").canonical(&["direct", "indirect"]).mutability(ReadOnly),
                ],
            )
            .desc("A list of groups to which the user belongs. Managed through the Group resource.")
            .multi()
            .mutability(ReadOnly),
            multi("entitlements", "A list of entitlements for the User.", Attribute::string("value"), &[]),
            multi("roles", "A list of roles for the User.", Attribute::string("value"), &[]),
            multi("x509Certificates", "A list of certificates issued to the User.", Attribute::binary("value"), &[]),
        ],
    }
}

/// The Enterprise User extension (RFC 7643 §4.3, §8.7.1).
pub fn enterprise_user_schema() -> Schema {
    Schema {
        id: ENTERPRISE_USER_SCHEMA.into(),
        name: "EnterpriseUser".into(),
        description: "Enterprise User".into(),
        attributes: vec![
            Attribute::string("employeeNumber").desc("Numeric or alphanumeric identifier assigned to a person."),
            Attribute::string("costCenter").desc("Identifies the name of a cost center."),
            Attribute::string("organization").desc("Identifies the name of an organization."),
            Attribute::string("division").desc("Identifies the name of a division."),
            Attribute::string("department").desc("Identifies the name of a department."),
            Attribute::complex(
                "manager",
                vec![
                    Attribute::string("value").desc("The id of the SCIM resource representing the User's manager."),
                    Attribute::reference("$ref", &["User"]).desc("The URI of the SCIM resource of the manager."),
                    Attribute::string("displayName")
                        .desc("The displayName of the User's manager.")
                        .mutability(ReadOnly),
                ],
            )
            .desc("The User's manager."),
        ],
    }
}

/// The core Group schema (RFC 7643 §4.2, §8.7.1).
pub fn group_schema() -> Schema {
    Schema {
        id: GROUP_SCHEMA.into(),
        name: "Group".into(),
        description: "Group".into(),
        attributes: vec![
            Attribute::string("displayName").desc("A human-readable name for the Group.").required(),
            Attribute::complex(
                "members",
                vec![
                    Attribute::string("value").desc("Identifier of the member of this Group.").mutability(Immutable),
                    Attribute::reference("$ref", &["User", "Group"])
                        .desc("The URI of the member resource.")
                        .mutability(Immutable),
                    Attribute::string("display").desc("A human-readable name of the member.").mutability(ReadOnly),
                    Attribute::string("type")
                        .desc("The type of the member.")
                        .canonical(&["User", "Group"])
                        .mutability(Immutable),
                ],
            )
            .desc("A list of members of the Group.")
            .multi()
            // Rows in the store, added and removed without reading the list (a group may hold
            // 100,000): no cap.
            .unbounded(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::AttrType;

    #[test]
    fn user_schema_has_every_rfc_7643_attribute() {
        let s = user_schema();
        let names: Vec<&str> = s.attributes.iter().map(|a| a.name.as_str()).collect();
        for expected in [
            "userName",
            "name",
            "displayName",
            "nickName",
            "profileUrl",
            "title",
            "userType",
            "preferredLanguage",
            "locale",
            "timezone",
            "active",
            "password",
            "emails",
            "phoneNumbers",
            "ims",
            "photos",
            "addresses",
            "groups",
            "entitlements",
            "roles",
            "x509Certificates",
        ] {
            assert!(names.contains(&expected), "{expected} missing");
        }
        assert_eq!(s.attribute("password").unwrap().returned, Returned::Never);
        assert_eq!(s.attribute("groups").unwrap().mutability, Mutability::ReadOnly);
        assert_eq!(s.attribute("emails").unwrap().sub_attribute("primary").unwrap().ty, AttrType::Boolean);
    }
}
