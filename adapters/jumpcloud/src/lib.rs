//! The JumpCloud-style directory adapter (`kind = "jumpcloud"`).
//!
//! Where each rule comes from (`VENDORS.md` § JumpCloud-style directory, and the vendor's SCIM
//! import guide in `seeds/jumpcloud-entra-scim-import.txt`):
//!
//! - **Tenant URL**: must carry `?aadOptscim062020` (line 25; line 6 drops the flag's name:
//!   "The must be added to the Tenant URL"); without it the directory supports creates
//!   only (line 7). A target without the flag is a configuration error. Updates are one PATCH of the
//!   difference in Entra's flagged dialect as far as it is RFC 7644 (lowercase `op`, one
//!   operation per path, JSON booleans), whatever dialect the IdP used; never a PUT.
//! - **username** (`userName`): "required, no special characters, (max length 1024). note: email
//!   may not be used as username" (line 52). "No special characters" is not defined by the
//!   vendor; we read it conservatively as ASCII letters, digits, `.`, `-` and `_` (the mail nickname the guide
//!   advises is ASCII by Exchange's rules; nothing promises other letters). Its source is
//!   configurable, as the vendor advises mapping it from the mail nickname (line 33) and notes
//!   that "Some integrations leverage the email substring for the username" (line 52): `username_from = "userName"` (as is, the default),
//!   `"externalId"` (where Entra's default mapping puts `mailNickname`, the source line 33
//!   suggests), `"userName_local_part"` (the part before `@` of an email-shaped `userName`), or
//!   `"work_email_local_part"` (the part before `@` of the work email). A value that still breaks
//!   a rule is refused with the rule named.
//! - **Company email**: "emails: value (primary) … email, required, max length 1024" (line 55):
//!   the primary email (else the work email — our reading: the guide maps `userPrincipalName`,
//!   "the work email", there, line 34), sent as the one `work` email, `primary: true`.
//! - `name.givenName`, `name.familyName`: "max length 1024" each (lines 53–54).
//! - **Sent**: only the mapping table's attributes (seed, "Supported SCIM Attribute Mappings",
//!   lines 48–73), spelled as its "SCIM v2 Mapping" column spells them — `userName`,
//!   `name.givenName`, `name.familyName`, the company email, `displayName`, `active`, `title`,
//!   `locale`, `costCenter`, `userType`, `organization`, and the Enterprise extension's
//!   `department` and `employeeNumber`. `manager` is not supported (line 11) and never sent;
//!   `meta.created`/`meta.lastModified` are N/A there (lines 61–62) and never sent.
//! - **`costCenter` and `organization` go without a URN.** The column gives `department` and
//!   `employeeNumber` the Enterprise URN (lines 65, 72) and these two none (lines 68, 70); the
//!   table is "attributes that the JumpCloud SCIM client will accept" (line 49), and "Any
//!   unsupported attributes that are left enabled in Entra ID can cause the provisioning to fail"
//!   (line 32): the spelling it lists is the one known to be accepted. The gateway stores both
//!   spellings from the IdP in the Enterprise extension (`scimgw_scim::schema::
//!   BARE_ENTERPRISE_ATTRIBUTES`), so the rows read them from there too
//!   ([`Table::reading_also`](scimgw_adapter::table::Table::reading_also)).
//! - The column writes the Enterprise URN with a lower-case `user`
//!   (`…:enterprise:2.0:user:department`); we send RFC 7643's `…:2.0:User`, as Entra does: SCIM
//!   compares URNs ignoring case.
//! - **Inactive users are not created** ("If a user is inactive in the source application, the
//!   user will not be created", line 9). `active` maps to `!suspended && !passwordExpired`
//!   (lines 57–60), so `active: false` suspends an existing user; what the gateway sends when one
//!   is disabled or leaves the scope is in `docs/targets/jumpcloud.md`.
//! - **Users only**: "Real-time Group import isn't currently supported" (line 8), so no group is
//!   ever sent.
//! - `employeeNumber` must be unique in the directory *(outside the seed: VENDORS.md, from the
//!   vendor's V1 API)*: the directory's 409 is reported with its message (the gateway cannot
//!   know the directory's other users).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use scimgw_adapter::table::{Row, Rule, is_email};
use scimgw_adapter::vendor::{Prepare, TableAdapter, VendorSpec};
use scimgw_adapter::{Adapter, Secret, TargetConfig, UrlFlag, no_schemas};
use scimgw_scim::value::get_ci;

/// `kind` of JumpCloud targets.
pub const KIND: &str = "jumpcloud";

/// The flag the Tenant URL must carry: "must be added to the Tenant URL for user updates and
/// deprovisioning" (the vendor's SCIM import guide). Checked by [`spec`] and by the connection
/// test (`scimgw target test`), through the gateway's registry.
pub const URL_FLAGS: &[UrlFlag] = &[UrlFlag {
    flag: "aadOptscim062020",
    without_it: "the directory supports creates only: no updates, no deprovisioning",
}];

/// The most characters of username, email and name parts.
pub const MAX_CHARS: usize = 1024;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The attribute table (VENDORS.md § JumpCloud, "Attribute mapping").
pub const ATTRIBUTES: &[Row] = &[
    Row { path: "userName", rules: &[Rule::Required, Rule::MaxChars(MAX_CHARS), Rule::NotEmail, Rule::PlainName] },
    Row { path: "name.givenName", rules: &[Rule::MaxChars(MAX_CHARS)] },
    Row { path: "name.familyName", rules: &[Rule::MaxChars(MAX_CHARS)] },
    Row { path: "emails[type eq \"work\"].value", rules: &[Rule::Required, Rule::Email, Rule::MaxChars(MAX_CHARS)] },
    Row { path: "emails[type eq \"work\"].primary", rules: &[] },
    Row { path: "displayName", rules: &[] },
    Row { path: "active", rules: &[] },
    Row { path: "title", rules: &[] },
    Row { path: "locale", rules: &[] },
    Row { path: "userType", rules: &[] },
    Row { path: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", rules: &[] },
    // Without a URN, as the vendor's table writes them (see the module doc).
    Row { path: "costCenter", rules: &[] },
    Row { path: "organization", rules: &[] },
    Row { path: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", rules: &[] },
];

/// Rows the gateway stores elsewhere than the vendor's table spells them: (row, where the gateway
/// keeps it). Both IdP spellings of `costCenter` and `organization` end up in the Enterprise
/// extension.
const READ_ALSO: &[(&str, &str)] = &[
    ("costCenter", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"),
    ("organization", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:organization"),
];

/// Where the username comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsernameFrom {
    /// `userName` as it is.
    UserName,
    /// `externalId`: Entra's default mapping sends `mailNickname` there, which the vendor's guide
    /// suggests as the username ("this is typically the first.lastname").
    ExternalId,
    /// The local part of an email-shaped `userName` (`first.last@corp.example` → `first.last`).
    UserNameLocalPart,
    /// The local part of the work email.
    WorkEmailLocalPart,
}

impl UsernameFrom {
    fn parse(target: &TargetConfig) -> Result<UsernameFrom, String> {
        match target.options.get("username_from").map(Value::as_str) {
            None | Some(Some("userName")) => Ok(UsernameFrom::UserName),
            Some(Some("externalId")) => Ok(UsernameFrom::ExternalId),
            Some(Some("userName_local_part")) => Ok(UsernameFrom::UserNameLocalPart),
            Some(Some("work_email_local_part")) => Ok(UsernameFrom::WorkEmailLocalPart),
            Some(_) => {
                Err("username_from must be \"userName\", \"externalId\", \"userName_local_part\" or \"work_email_local_part\""
                    .into())
            }
        }
    }
}

/// The company email: the primary email, else the work one.
fn company_email(user: &Map<String, Value>) -> Option<&str> {
    let emails = get_ci(user, "emails")?.as_array()?;
    let flag = |e: &Value, k: &str| e.as_object().and_then(|o| get_ci(o, k)).cloned();
    let primary = emails.iter().find(|e| flag(e, "primary") == Some(Value::Bool(true)));
    let work = emails
        .iter()
        .find(|e| flag(e, "type").and_then(|t| t.as_str().map(|t| t.eq_ignore_ascii_case("work"))).unwrap_or(false));
    primary.or(work).and_then(|e| e.as_object()).and_then(|o| get_ci(o, "value")).and_then(Value::as_str)
}

fn local_part(s: &str) -> &str {
    if is_email(s) { s.split('@').next().unwrap_or(s) } else { s }
}

/// Derives the username and the company email before the table reads the user.
fn prepare(from: UsernameFrom) -> Prepare {
    Arc::new(move |user: &Map<String, Value>| {
        let mut out = user.clone();
        let email = company_email(user).map(str::to_owned);
        let user_name = get_ci(user, "userName").and_then(Value::as_str).unwrap_or("");
        let derived = match from {
            UsernameFrom::UserName => user_name.to_owned(),
            // No externalId: no username (the table's `required` rule then names it).
            UsernameFrom::ExternalId => get_ci(user, "externalId").and_then(Value::as_str).unwrap_or("").to_owned(),
            UsernameFrom::UserNameLocalPart => local_part(user_name).to_owned(),
            UsernameFrom::WorkEmailLocalPart => match &email {
                Some(e) => local_part(e).to_owned(),
                None => user_name.to_owned(),
            },
        };
        out.insert("userName".into(), Value::String(derived));
        match email {
            Some(e) => out.insert("emails".into(), json!([{"type": "work", "value": e, "primary": true}])),
            None => out.remove("emails"),
        };
        out
    })
}

/// The spec of one target.
pub fn spec(target: &TargetConfig) -> Result<VendorSpec, String> {
    let base = VendorSpec::from_table(KIND, "JumpCloud", ATTRIBUTES, target, &["username_from"], no_schemas)?;
    if let Some(missing) = URL_FLAGS.iter().find(|f| !f.is_on(&target.base_url)) {
        return Err(format!("base_url must end with ?{} (without it {})", missing.flag, missing.without_it));
    }
    let from = UsernameFrom::parse(target)?;
    let mut table = base.table.clone();
    for (row, from) in READ_ALSO {
        table = table.reading_also(row, from)?;
    }
    Ok(VendorSpec {
        table,
        prepare: Some(prepare(from)),
        creates_inactive: false,
        derives_user_name: from != UsernameFrom::UserName,
        // The tenant URL carries aadOptscim062020 (checked above): Entra's flagged dialect, which
        // the directory takes only RFC-shaped (VENDORS.md).
        dialect: scimgw_adapter::diff::Dialect::Rfc,
        drop_reasons: vec![
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                "JumpCloud does not support manager: never sent",
            ),
            ("password", "the IdP never sends passwords to JumpCloud: new users start password-pending"),
        ],
        ..base
    })
}

/// The registry constructor of `kind = "jumpcloud"`.
pub fn construct(target: &TargetConfig, token: Secret) -> Result<Arc<dyn Adapter>, String> {
    Ok(Arc::new(TableAdapter::new(spec(target)?, target, token)?))
}

/// `ENTERPRISE`, for tests and docs.
pub const ENTERPRISE_USER_SCHEMA: &str = ENTERPRISE;

#[cfg(test)]
mod tests {
    use super::*;

    fn target(extra: Value) -> TargetConfig {
        let mut t =
            json!({"name": "jc", "kind": "jumpcloud", "base_url": "https://dir.example/scim/v2/?aadOptscim062020"});
        if let (Some(t), Some(e)) = (t.as_object_mut(), extra.as_object()) {
            t.extend(e.clone());
        }
        serde_json::from_value(t).unwrap()
    }

    fn user(user_name: &str) -> Map<String, Value> {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "userName": user_name,
            "active": true,
            "nickName": "fl",
            "name": {"givenName": "First", "familyName": "Last"},
            "emails": [{"type": "work", "value": "first.last@corp.example", "primary": true}, {"type": "home", "value": "f@home.example"}],
            ENTERPRISE: {"department": "Ops", "employeeNumber": "42", "manager": {"value": "m1"}}
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn an_email_username_is_refused_unless_derived() {
        let plain = construct(&target(json!({})), Secret::new("t")).unwrap();
        let v: Vec<String> = plain.validate(&user("first.last@corp.example")).iter().map(ToString::to_string).collect();
        assert_eq!(
            v,
            [
                "userName: must not be an email address (JumpCloud)",
                "userName: may hold only ASCII letters, digits, '.', '-' and '_' (JumpCloud)"
            ]
        );
        let derived = construct(&target(json!({"username_from": "userName_local_part"})), Secret::new("t")).unwrap();
        assert!(derived.validate(&user("first.last@corp.example")).is_empty());
        let out = derived.translate(&user("first.last@corp.example")).unwrap();
        assert_eq!(out["userName"], "first.last");
        assert_eq!(out["emails"], json!([{"type": "work", "value": "first.last@corp.example", "primary": true}]));
        assert_eq!(out[ENTERPRISE], json!({"department": "Ops", "employeeNumber": "42"}));
        assert!(out.get("nickName").is_none());
        let by_mail = construct(&target(json!({"username_from": "work_email_local_part"})), Secret::new("t")).unwrap();
        assert_eq!(by_mail.translate(&user("whatever-id")).unwrap()["userName"], "first.last");
    }

    #[test]
    fn the_username_can_come_from_external_id_where_entra_sends_mail_nickname() {
        let a = construct(&target(json!({"username_from": "externalId"})), Secret::new("t")).unwrap();
        let mut u = user("first.last@corp.example");
        u.insert("externalId".into(), json!("flast"));
        assert!(a.validate(&u).is_empty(), "{:?}", a.validate(&u));
        assert_eq!(a.translate(&u).unwrap()["userName"], "flast");
        // Without an externalId there is no username: refused, naming the attribute.
        let v: Vec<String> = a.validate(&user("first.last@corp.example")).iter().map(ToString::to_string).collect();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].starts_with("userName:"), "{v:?}");
    }

    #[test]
    fn cost_center_and_organization_go_without_a_urn_whichever_way_the_idp_sent_them() {
        let a = construct(&target(json!({})), Secret::new("t")).unwrap();
        // The gateway stores both IdP spellings in the Enterprise extension.
        let mut u = user("first.last");
        u.insert(ENTERPRISE.into(), json!({"department": "Ops", "costCenter": "CC-1", "organization": "Contoso"}));
        let out = a.translate(&u).unwrap();
        assert_eq!(out["costCenter"], "CC-1");
        assert_eq!(out["organization"], "Contoso");
        assert_eq!(out[ENTERPRISE], json!({"department": "Ops"}));
        assert!(!a.dropped(&u).iter().any(|(attr, _)| attr.contains("costCenter") || attr.contains("organization")));
        // A copy read back from the directory, in either spelling, projects the same way.
        let mut copy = u.clone();
        copy.insert(ENTERPRISE.into(), json!({"department": "Ops"}));
        copy.insert("costCenter".into(), json!("CC-1"));
        copy.insert("organization".into(), json!("Contoso"));
        assert_eq!(a.payload_of_copy(&copy), a.payload_of_copy(&u));
    }

    #[test]
    fn what_still_breaks_the_rules_is_named() {
        let a = construct(&target(json!({"username_from": "userName_local_part"})), Secret::new("t")).unwrap();
        let mut u = user("anne marie@corp.example");
        u.insert("emails".into(), json!([{"type": "home", "value": "x"}]));
        u.insert("name".into(), json!({"givenName": "x".repeat(1025)}));
        let v: Vec<String> = a.validate(&u).iter().map(|v| v.attribute.clone()).collect();
        assert_eq!(v, ["userName", "userName", "name.givenName", "emails[type eq \"work\"].value"]);
        assert!(!a.creates_inactive());
        let dropped = a.dropped(&user("a"));
        assert!(
            dropped.iter().any(|(attr, why)| attr.ends_with(":manager") && why.contains("does not support manager"))
        );
    }

    #[test]
    fn the_url_flag_and_options_are_checked() {
        let mut t = target(json!({}));
        t.base_url = "https://dir.example/scim/v2".into();
        assert!(construct(&t, Secret::new("t")).unwrap_err().contains("aadOptscim062020"));
        assert!(construct(&target(json!({"username_from": "mail"})), Secret::new("t")).is_err());
        assert!(construct(&target(json!({"groups": true})), Secret::new("t")).unwrap_err().contains("unknown key"));
    }
}
