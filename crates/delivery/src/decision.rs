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

/// What `target` should hold for `user` (its SCIM JSON without `meta`), `schema` being the User
/// resource type the scope is evaluated against. See the module doc for the steps.
pub fn decide(target: &Target, user: &Map<String, Value>, schema: &ResourceSchema<'_>, at: AtTarget) -> Decision {
    if !target.in_scope(user, schema) {
        return Decision::OutOfScope;
    }
    let on_invalid = target.config.on_invalid;
    let violations = target.adapter.validate(user);
    if !violations.is_empty() {
        return Decision::Invalid { violations, on_invalid };
    }
    let payload = match target.adapter.translate(user) {
        Ok(payload) => payload,
        Err(violation) => return Decision::Invalid { violations: vec![violation], on_invalid },
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
