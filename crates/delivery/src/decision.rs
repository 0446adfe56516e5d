//! The one per-target decision: what a target should hold for a user. The edge check
//! ([`crate::targets::plan_deliveries`]), the dispatcher, reconcile and `scimgw preview` all call
//! [`decide`] and act on its [`Decision`]; none of them checks scope, rules or `active` itself.
//!
//! The steps, in order (the first that applies decides):
//!
//! 1. **Scope.** A user the target's `scope` filter does not match is [`Decision::OutOfScope`]:
//!    the target should hold nothing, and what it holds is deprovisioned.
//! 2. **Rules.** The adapter's `validate`, then its `translate`. A user that breaks a rule is
//!    [`Decision::Invalid`] with the rules and the target's `on_invalid`. A translation that fails
//!    is treated *exactly like a broken rule* (its error is a [`Violation`] already): the edge
//!    refuses it with a 400 under `reject` or records a skip under `skip`, the dispatcher skips it
//!    or dead-letters it by the same policy, reconcile counts it as not sent, `preview` shows it
//!    as refused or skipped. Before, the dispatcher dead-lettered it whatever `on_invalid` said,
//!    after the IdP had been told 2xx, while reconcile called it "not sent": an operator who asks
//!    for `reject` expects a user the vendor cannot take to be refused while the IdP is still on
//!    the line, not found later in the dead letters.
//! 3. **Inactive.** A user whose `active` is false, for whom the target has no account yet, at a
//!    vendor that does not create inactive users (`Adapter::creates_inactive`, JumpCloud), is
//!    [`Decision::NotCreatedWhileInactive`]: nothing is sent until the user is active. `active`
//!    is read by any case of its name and as a JSON boolean or the strings `"True"`/`"False"` in
//!    any case, as Entra sends them (`preview` used to see only a lowercase `active: false`).
//!    Rules come first so that the edge refuses a user who breaks them whether active or not.
//! 4. Otherwise [`Decision::Send`] with the translated payload.
//!
//! Groups have no scope and no rules here: a target takes a group or not
//! ([`crate::targets::Target::handles`]), and its members' payload is the dispatcher's.
//!
//! A new check (a `userName` that collides at the vendor, say) is one more step here, with a
//! variant of its own when its outcome is not one of these, and a field of [`AtTarget`] when it
//! needs something only the caller knows; every caller then gets it by the compiler's `match`.

use serde_json::{Map, Value};

use scimgw_adapter::{OnInvalid, Violation};
use scimgw_scim::schema::ResourceSchema;
use scimgw_scim::value::{boolean, get_ci};

use crate::targets::Target;

/// What a target should hold for one user.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// This payload: create or update the user's account with it.
    Send(Value),
    /// Nothing: the user is outside the target's scope (an account it holds is deprovisioned).
    OutOfScope,
    /// The user breaks the target's rules (a failed translation is one more broken rule);
    /// `on_invalid` says whether the change is refused or skipped at this target.
    Invalid {
        /// Every rule broken, as the adapter names them.
        violations: Vec<Violation>,
        /// The target's policy for such a user.
        on_invalid: OnInvalid,
    },
    /// Nothing yet: the user is inactive, the target has no account for it, and the vendor does
    /// not create inactive users. It is created when the user becomes active.
    NotCreatedWhileInactive,
}

impl Decision {
    /// The broken rules in one line, `attribute: rule; attribute: rule` (empty unless invalid).
    pub fn reason(&self) -> String {
        match self {
            Decision::Invalid { violations, .. } => crate::targets::describe(violations),
            _ => String::new(),
        }
    }
}

/// What the caller knows of the target's side of the user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AtTarget {
    /// The target has an account for the user (a link with a remote id). The edge passes
    /// `false`: it queues the delivery either way, and the dispatcher decides again with the link.
    pub has_account: bool,
}

/// What `target` should hold for `user` (its SCIM JSON without `meta`, with its `groups` when the
/// target's scope reads them: [`Target::scope_reads_groups`]), `schema` being the User resource
/// type the scope is evaluated against. See the module doc for the steps.
pub fn decide(target: &Target, user: &Map<String, Value>, schema: &ResourceSchema<'_>, at: AtTarget) -> Decision {
    if !target.in_scope(user, schema) {
        return Decision::OutOfScope;
    }
    let on_invalid = target.config.on_invalid;
    // `groups` is read by the scope only: no adapter sends it (the vendors take membership
    // through their groups, if at all), and a rule never reads it.
    let without_groups;
    let user = match user.contains_key("groups") {
        true => {
            without_groups = {
                let mut u = user.clone();
                u.remove("groups");
                u
            };
            &without_groups
        }
        false => user,
    };
    let payload = match target.adapter.check(user) {
        Ok(payload) => payload,
        Err(violations) => return Decision::Invalid { violations, on_invalid },
    };
    if !at.has_account && !target.adapter.creates_inactive() && inactive(user) {
        return Decision::NotCreatedWhileInactive;
    }
    Decision::Send(payload)
}

/// `active` is false. Absent, or anything that is not a boolean, means active (RFC 7643 §4.1.1
/// leaves an absent `active` to the provider; the vendors here default to active).
pub fn inactive(user: &Map<String, Value>) -> bool {
    get_ci(user, "active").and_then(boolean) == Some(false)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;
    use serde_json::json;

    use scimgw_adapter::{
        Adapter, Capabilities, DeliveryError, ReadBack, Registry as AdapterRegistry, Remote, Secret, TargetConfig,
    };

    use scimgw_store::Enqueue;

    use super::*;
    use crate::targets::schema_registry;

    /// A vendor with one rule (`userName` is required), a translation that fails on a `userName`
    /// with a `!` (which the rule lets through), and no inactive users when `strict`.
    #[derive(Debug)]
    struct Vendor {
        strict: bool,
    }

    #[async_trait]
    impl Adapter for Vendor {
        fn kind(&self) -> &'static str {
            if self.strict { "strict" } else { "lenient" }
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities { users: true, groups: false, deactivate: true, delete: true, read_back: ReadBack::Lookup }
        }
        fn validate(&self, user: &Map<String, Value>) -> Vec<Violation> {
            if user.contains_key("groups") {
                return vec![Violation::new("groups", "reached the adapter: it is the scope's alone")];
            }
            match get_ci(user, "userName") {
                Some(Value::String(_)) => Vec::new(),
                _ => vec![Violation::new("userName", "is required")],
            }
        }
        fn translate(&self, user: &Map<String, Value>) -> Result<Value, Violation> {
            let name = get_ci(user, "userName").and_then(Value::as_str).unwrap_or_default();
            if name.contains('!') {
                return Err(Violation::new("userName", "has no form the vendor takes"));
            }
            Ok(json!({ "userName": name, "active": !inactive(user) }))
        }
        fn creates_inactive(&self) -> bool {
            !self.strict
        }
        async fn find(&self, _: &Map<String, Value>) -> Result<Option<Remote>, DeliveryError> {
            Ok(None)
        }
        async fn create(&self, _: &Value) -> Result<Remote, DeliveryError> {
            Ok(Remote { id: "r".into() })
        }
        async fn update(&self, _: &str, _: Option<&Value>, _: &Value) -> Result<(), DeliveryError> {
            Ok(())
        }
        async fn deactivate(&self, _: &str) -> Result<(), DeliveryError> {
            Ok(())
        }
        async fn delete(&self, _: &str) -> Result<(), DeliveryError> {
            Ok(())
        }
    }

    fn strict(_: &TargetConfig, _: Secret) -> Result<Arc<dyn Adapter>, String> {
        Ok(Arc::new(Vendor { strict: true }))
    }

    fn lenient(_: &TargetConfig, _: Secret) -> Result<Arc<dyn Adapter>, String> {
        Ok(Arc::new(Vendor { strict: false }))
    }

    /// A target of `kind` with the given `on_invalid` and `scope`, built as `preview` builds one.
    fn target(kind: &str, on_invalid: &str, scope: Option<&str>) -> Target {
        named("t", kind, on_invalid, scope)
    }

    fn named(name: &str, kind: &str, on_invalid: &str, scope: Option<&str>) -> Target {
        let mut adapters = AdapterRegistry::new();
        adapters.register("strict", strict, scimgw_adapter::no_schemas);
        adapters.register("lenient", lenient, scimgw_adapter::no_schemas);
        let config: TargetConfig = serde_json::from_value(json!({
            "name": name, "kind": kind, "base_url": "https://app.example/scim/v2",
            "on_invalid": on_invalid, "scope": scope,
        }))
        .unwrap();
        Target::offline(&config, &adapters, &schema_registry()).unwrap()
    }

    fn user(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn decide_for(target: &Target, u: &Map<String, Value>, has_account: bool) -> Decision {
        let schemas = schema_registry();
        let schema = schemas.resource("User").unwrap();
        decide(target, u, &schema, AtTarget { has_account })
    }

    const NO_ACCOUNT: bool = false;

    #[test]
    fn a_valid_in_scope_user_is_sent_with_the_translated_payload() {
        let t = target("lenient", "reject", None);
        let u = user(json!({"userName": "ann", "active": true}));
        assert_eq!(decide_for(&t, &u, NO_ACCOUNT), Decision::Send(json!({"userName": "ann", "active": true})));
    }

    #[test]
    fn a_scope_by_group_reads_the_users_groups_and_no_adapter_sees_them() {
        let t = target("strict", "reject", Some(r#"groups.display eq "Sales" and active eq true"#));
        assert!(t.scope_reads_groups() && t.scope_reads_group_names());
        let by_id = target("strict", "reject", Some(r#"groups.value eq "g1" or title eq "CEO""#));
        assert!(by_id.scope_reads_groups() && !by_id.scope_reads_group_names());
        let nested = target("strict", "reject", Some(r#"not (groups[display sw "Ex"])"#));
        assert!(nested.scope_reads_group_names());
        assert!(!target("strict", "reject", Some("active eq true")).scope_reads_groups());
        assert!(!target("strict", "reject", None).scope_reads_groups());

        let member = user(json!({"userName": "ann", "emails": [{"value": "a@x"}], "active": true,
            "groups": [{"value": "g1", "display": "sales", "type": "direct"}]}));
        // Sent without `groups`: it is the scope's alone.
        assert_eq!(decide_for(&t, &member, NO_ACCOUNT), Decision::Send(json!({"userName": "ann", "active": true})));
        let mut other = member.clone();
        other.insert("groups".into(), json!([{"value": "g2", "display": "Ops"}]));
        assert_eq!(decide_for(&t, &other, true), Decision::OutOfScope);
        other.remove("groups");
        assert_eq!(decide_for(&t, &other, true), Decision::OutOfScope, "no groups: in none");
        assert!(matches!(decide_for(&by_id, &member, NO_ACCOUNT), Decision::Send(_)));
    }

    #[test]
    fn the_groups_a_scope_names_are_listed_for_config_check() {
        use crate::targets::{NamedGroup, scope_named_groups};
        let f = scimgw_scim::filter::parse_filter(
            r#"(groups.display eq "Sales" or groups[value eq "g1"]) and not (groups.display co "x") and title eq "y""#,
        )
        .unwrap();
        assert_eq!(scope_named_groups(&f), vec![NamedGroup::Display("Sales".into()), NamedGroup::Id("g1".into())]);
    }

    #[test]
    fn a_user_the_scope_does_not_match_is_out_of_scope_before_any_rule_is_checked() {
        let t = target("strict", "reject", Some("title eq \"Engineer\""));
        // Breaks the rule and is inactive: neither matters outside the scope.
        let u = user(json!({"title": "Sales", "active": false}));
        assert_eq!(decide_for(&t, &u, NO_ACCOUNT), Decision::OutOfScope);
        assert_eq!(decide_for(&t, &u, true), Decision::OutOfScope);
        let engineer = user(json!({"userName": "ann", "title": "Engineer"}));
        assert!(matches!(decide_for(&t, &engineer, NO_ACCOUNT), Decision::Send(_)));
    }

    #[test]
    fn a_broken_rule_is_invalid_with_the_targets_on_invalid() {
        let u = user(json!({"displayName": "no userName"}));
        for (policy, on_invalid) in [("reject", OnInvalid::Reject), ("skip", OnInvalid::Skip)] {
            let d = decide_for(&target("lenient", policy, None), &u, NO_ACCOUNT);
            assert_eq!(
                d,
                Decision::Invalid { violations: vec![Violation::new("userName", "is required")], on_invalid }
            );
            assert_eq!(d.reason(), "userName: is required");
        }
    }

    #[test]
    fn a_failed_translation_is_a_broken_rule_under_the_same_on_invalid() {
        let u = user(json!({"userName": "ann!"}));
        for (policy, on_invalid) in [("reject", OnInvalid::Reject), ("skip", OnInvalid::Skip)] {
            assert_eq!(
                decide_for(&target("lenient", policy, None), &u, NO_ACCOUNT),
                Decision::Invalid {
                    violations: vec![Violation::new("userName", "has no form the vendor takes")],
                    on_invalid
                },
                "on_invalid = {policy}"
            );
        }
    }

    #[test]
    fn rules_are_checked_before_inactivity_so_the_edge_refuses_an_inactive_user_that_breaks_them() {
        let t = target("strict", "reject", None);
        for u in [json!({"active": false}), json!({"userName": "ann!", "active": false})] {
            assert!(matches!(decide_for(&t, &user(u), NO_ACCOUNT), Decision::Invalid { .. }));
        }
    }

    #[test]
    fn an_inactive_user_without_an_account_is_not_created_where_the_vendor_creates_no_inactive_users() {
        let u = user(json!({"userName": "ann", "active": false}));
        assert_eq!(decide_for(&target("strict", "reject", None), &u, NO_ACCOUNT), Decision::NotCreatedWhileInactive);
        // An account the target has is updated (deactivated) as any other change.
        assert_eq!(
            decide_for(&target("strict", "reject", None), &u, true),
            Decision::Send(json!({"userName": "ann", "active": false}))
        );
        // A vendor that creates inactive users gets it.
        assert!(matches!(decide_for(&target("lenient", "reject", None), &u, NO_ACCOUNT), Decision::Send(_)));
    }

    #[test]
    fn active_is_read_in_any_case_of_its_name_and_as_the_strings_entra_sends() {
        let t = target("strict", "reject", None);
        for inactive_user in [
            json!({"userName": "ann", "active": false}),
            json!({"userName": "ann", "Active": false}),
            json!({"userName": "ann", "ACTIVE": "False"}),
            json!({"userName": "ann", "active": "false"}),
            json!({"userName": "ann", "active": "FALSE"}),
        ] {
            assert_eq!(
                decide_for(&t, &user(inactive_user.clone()), NO_ACCOUNT),
                Decision::NotCreatedWhileInactive,
                "{inactive_user}"
            );
        }
        for active_user in [
            json!({"userName": "ann"}),
            json!({"userName": "ann", "active": true}),
            json!({"userName": "ann", "Active": "True"}),
            json!({"userName": "ann", "active": "true"}),
            // Not a boolean: read as absent, so active (the provider's default).
            json!({"userName": "ann", "active": "no"}),
            json!({"userName": "ann", "active": null}),
        ] {
            assert!(
                matches!(decide_for(&t, &user(active_user.clone()), NO_ACCOUNT), Decision::Send(_)),
                "{active_user}"
            );
        }
    }

    #[test]
    fn a_decision_that_is_not_invalid_has_no_reason() {
        let t = target("lenient", "reject", None);
        assert_eq!(decide_for(&t, &user(json!({"userName": "ann"})), NO_ACCOUNT).reason(), "");
    }

    #[test]
    fn the_edge_refuses_or_skips_a_user_whose_translation_fails_as_it_does_a_broken_rule() {
        let schemas = schema_registry();
        let schema = schemas.resource("User").unwrap();
        let plan = |targets: Vec<Target>, u: Value| {
            let targets: Vec<Arc<Target>> = targets.into_iter().map(Arc::new).collect();
            crate::targets::plan_deliveries(&targets, scimgw_store::Kind::User, &user(u), &schema)
        };
        let untranslatable = json!({"userName": "ann!"});
        let refused = plan(
            vec![named("a", "lenient", "reject", None), named("b", "lenient", "skip", None)],
            untranslatable.clone(),
        )
        .unwrap_err();
        assert_eq!(refused.status, 400);
        assert_eq!(refused.detail, "target \"a\" refuses this user: userName: has no form the vendor takes");
        assert_eq!(
            plan(vec![named("b", "lenient", "skip", None)], untranslatable).unwrap(),
            [Enqueue::skip("b", "userName: has no form the vendor takes")]
        );
        // Out of scope and not created while inactive are deliveries: the dispatcher deprovisions
        // or waits, deciding again with the link.
        let out_of_scope = named("c", "strict", "reject", Some("title eq \"Engineer\""));
        let inactive_user = json!({"userName": "ann", "active": "False"});
        assert_eq!(
            plan(vec![out_of_scope, named("d", "strict", "reject", None)], inactive_user).unwrap(),
            [Enqueue::deliver("c"), Enqueue::deliver("d")]
        );
    }
}
