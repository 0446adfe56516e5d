//! `scimgw preview`: the exact payload, what is dropped and why, and every broken rule.
#![cfg(test)]

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

fn scimgw(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scimgw"))
        .args(args)
        .current_dir(dir)
        .env_remove("SCIMGW_CONFIG")
        .env("SCIMGW_STORE__URL", format!("sqlite://{}", dir.join("store.db").display()))
        .env("SCIMGW_TENANTS_DIR", dir.join("tenants"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn preview_shows_the_payload_the_drops_and_two_broken_jumpcloud_rules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tenants")).unwrap();
    std::fs::write(
        dir.path().join("tenants/acme.toml"),
        "[[targets]]\nname = \"jc\"\nkind = \"jumpcloud\"\nbase_url = \"https://dir.example/scim/v2/?aadOptscim062020\"\n\
         token_env = \"ACME_JC_TOKEN_NOT_NEEDED_FOR_PREVIEW\"\n",
    )
    .unwrap();
    assert_eq!(scimgw(dir.path(), &["migrate"], None).0, 0);
    assert_eq!(scimgw(dir.path(), &["tenant", "add", "acme"], None).0, 0);
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": "first.last@corp.example",
        "active": true,
        "nickName": "fl",
        "name": {"givenName": "First", "familyName": "Last"},
        "emails": [{"type": "work", "value": "not-an-email"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops", "manager": {"value": "m-1"}}
    });
    let (code, out, err) =
        scimgw(dir.path(), &["preview", "--tenant", "acme", "--target", "jc", "-"], Some(&user.to_string()));
    assert_eq!(code, 3, "refused: {err}");
    assert!(out.contains("outcome:  REFUSED"), "{out}");
    assert!(out.contains("  userName: must not be an email address (JumpCloud)"), "{out}");
    assert!(out.contains("  emails[type eq \"work\"].value: must be an email address (JumpCloud)"), "{out}");
    assert!(out.contains("  nickName — not in the JumpCloud attribute table"), "{out}");
    assert!(out.contains(":manager — JumpCloud does not support manager: never sent"), "{out}");
    let payload: Value = serde_json::from_str(&out[out.find("\n{").unwrap()..]).unwrap();
    assert_eq!(
        payload,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "userName": "first.last@corp.example",
            "active": true,
            "name": {"givenName": "First", "familyName": "Last"},
            "emails": [{"type": "work", "value": "not-an-email", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops"}
        })
    );

    // Two work emails: the primary one is sent, the other is listed as dropped, saying why; an
    // unknown attribute is dropped as the gateway drops it.
    let mut two = user.clone();
    two["emails"] = json!([{"type": "work", "value": "first@corp.example"},
                           {"type": "work", "value": "second@corp.example", "primary": true}]);
    two["userName"] = json!("first.last");
    two["favouriteColour"] = json!("blue");
    let (code, out, err) =
        scimgw(dir.path(), &["preview", "--tenant", "acme", "--target", "jc", "-"], Some(&two.to_string()));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("emails[0] (emails[type eq \"work\"]) — JumpCloud takes one emails of type \"work\""),
        "{out}"
    );
    assert!(!out.contains("favouriteColour"), "{out}");
    let payload: Value = serde_json::from_str(&out[out.find("\n{").unwrap()..]).unwrap();
    assert_eq!(payload["emails"], json!([{"type": "work", "value": "second@corp.example", "primary": true}]), "{out}");

    // A stored user by id; a body that is not SCIM; an unknown target.
    let (code, _, err) = scimgw(dir.path(), &["preview", "--tenant", "acme", "--target", "nope", "-"], Some("{}"));
    assert_eq!(code, 1);
    assert!(err.contains("has no target named nope"), "{err}");
    let (code, _, err) =
        scimgw(dir.path(), &["preview", "--tenant", "acme", "--target", "jc", "-"], Some("{\"userName\": 5}"));
    assert_eq!(code, 1);
    assert!(err.contains("not a valid SCIM user"), "{err}");
}

/// A username JumpCloud would derive that another user's account there already has: preview
/// says the change would be refused with 409, naming the holder (as the gateway's write would).
#[test]
fn preview_shows_a_derived_username_another_users_account_holds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tenants")).unwrap();
    std::fs::write(
        dir.path().join("tenants/acme.toml"),
        "[[targets]]\nname = \"jc\"\nkind = \"jumpcloud\"\nbase_url = \"https://dir.example/scim/v2/?aadOptscim062020\"\n\
         token_env = \"ACME_JC_TOKEN_NOT_NEEDED_FOR_PREVIEW\"\nusername_from = \"userName_local_part\"\n",
    )
    .unwrap();
    assert_eq!(scimgw(dir.path(), &["migrate"], None).0, 0);
    assert_eq!(scimgw(dir.path(), &["tenant", "add", "acme"], None).0, 0);
    // Anna of Contoso has the account "anna" at jc.
    let store = scimgw_store::Store::open(&scimgw_store::StoreConfig {
        url: format!("sqlite://{}", dir.path().join("store.db").display()),
        ..scimgw_store::StoreConfig::default()
    })
    .unwrap();
    let tenant = store.tenant_by_name("acme").unwrap().unwrap();
    store
        .put_link(&scimgw_store::Link {
            tenant_id: tenant.id.clone(),
            target: "jc".into(),
            kind: scimgw_store::Kind::User,
            local_id: "anna-of-contoso".into(),
            remote_id: Some("jc-1".into()),
            delivered_version: Some(1),
            state: "active".into(),
            last_error: None,
            updated_us: 0,
            delivered_payload: Some(r#"{"userName":"anna"}"#.into()),
            account_name: Some("anna".into()),
        })
        .unwrap();
    drop(store);
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "Anna@fabrikam.example",
        "name": {"givenName": "Anna", "familyName": "Berg"},
        "emails": [{"type": "work", "value": "anna@fabrikam.example", "primary": true}]
    });
    let (code, out, err) =
        scimgw(dir.path(), &["preview", "--tenant", "acme", "--target", "jc", "-"], Some(&user.to_string()));
    assert_eq!(code, 3, "refused: {err}");
    assert!(out.contains("outcome:  REFUSED: the IdP gets 409 uniqueness"), "{out}");
    assert!(out.contains("\"Anna\" at this target is already the account of user anna-of-contoso"), "{out}");
    let mut other = user.clone();
    other["userName"] = json!("berg@fabrikam.example");
    let (code, out, _) =
        scimgw(dir.path(), &["preview", "--tenant", "acme", "--target", "jc", "-"], Some(&other.to_string()));
    assert_eq!(code, 0);
    assert!(out.contains("outcome:  delivered"), "{out}");
}

/// A `scim` target: a user outside its scope gets no payload and no "delivered"; one inside it
/// lists what its `attributes` leave out; one it refuses exits 3, one it skips exits 0.
#[test]
fn preview_of_a_scim_target_shows_scope_drops_and_refusals_in_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tenants")).unwrap();
    let crm = "kind = \"scim\"\nbase_url = \"https://crm.example/scim/v2\"\ntoken_env = \"CRM_TOKEN_NOT_NEEDED\"\n\
               scope = 'title eq \"Engineer\"'\nattributes = [\"userName\", \"active\", \"name.givenName\"]\n\
               match_attribute = \"externalId\"\n";
    std::fs::write(
        dir.path().join("tenants/acme.toml"),
        format!("[[targets]]\nname = \"crm\"\n{crm}\n[[targets]]\nname = \"lenient\"\non_invalid = \"skip\"\n{crm}"),
    )
    .unwrap();
    assert_eq!(scimgw(dir.path(), &["migrate"], None).0, 0);
    assert_eq!(scimgw(dir.path(), &["tenant", "add", "acme"], None).0, 0);
    let mut user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada@corp.example",
        "externalId": "e-1",
        "active": true,
        "title": "Engineer",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"type": "work", "value": "ada@corp.example", "primary": true}]
    });
    let preview = |target: &str, user: &Value| {
        scimgw(dir.path(), &["preview", "--tenant", "acme", "--target", target, "-"], Some(&user.to_string()))
    };

    let (code, out, err) = preview("crm", &user);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("outcome:  delivered"), "{out}");
    for dropped in ["  emails — not in the target's attributes", "  externalId —", "  name.familyName —", "  title —"]
    {
        assert!(out.contains(dropped), "{dropped:?} in:\n{out}");
    }
    assert!(!out.contains("dropped (never sent): nothing"), "{out}");

    user["title"] = json!("Sales");
    let (code, out, err) = preview("crm", &user);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("outcome:  out of scope"), "{out}");
    assert!(!out.contains("delivered") && !out.contains('{'), "no payload for a user out of scope:\n{out}");
    assert!(out.contains("payload:  none (out of scope)"), "{out}");

    // Matched by externalId, which this user lacks: refused here, skipped at the lenient target.
    user["title"] = json!("Engineer");
    user.as_object_mut().unwrap().remove("externalId");
    let (code, out, _) = preview("crm", &user);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("outcome:  REFUSED"), "{out}");
    let (code, out, _) = preview("lenient", &user);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("outcome:  SKIPPED"), "{out}");
}
