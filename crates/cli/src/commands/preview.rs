//! `scimgw preview`: a dry run of one target's adapter on a user. Nothing is stored or sent.
//! Exit code [`EXIT_REFUSED`] when the gateway would refuse the change, so that a script can
//! check a mapping before the IdP finds out.

use std::io::Read;

use anyhow::{Context, bail};
use clap::Args;
use scimgw_adapter::OnInvalid;
use scimgw_delivery::targets::derived_account_name;
use scimgw_delivery::{AtTarget, Decision, Target, adapter_registry, decide, schema_registry};
use scimgw_gateway::Config;
use scimgw_scim::resource::validate_resource;
use scimgw_store::Kind;
use serde_json::{Map, Value};

use super::{open_store, tenant_target};

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The tenant's name.
    #[arg(long)]
    tenant: String,
    /// The target's name in the tenant's file.
    #[arg(long)]
    target: String,
    /// A stored user's id, instead of a body.
    #[arg(long, conflicts_with = "file")]
    user: Option<String>,
    /// A SCIM user body (JSON), or `-` for standard input.
    file: Option<String>,
}

/// The exit code when the target would refuse the change (`on_invalid = "reject"`: the IdP gets
/// a 400 or a 409 and nothing is stored). 0: delivered, skipped, out of scope or not created yet;
/// 1: the preview itself failed. The same code as `reconcile`'s findings.
pub const EXIT_REFUSED: u8 = 3;

/// Prints the preview; `Ok(true)` when the target would refuse the change.
pub fn run(config: Config, args: PreviewArgs) -> anyhow::Result<bool> {
    let store = open_store(&config)?;
    let (tenant, target_config) = tenant_target(&config, &store, &args.tenant, &args.target)?;
    // Nothing is sent: the real secret is not needed (and may not be on this machine). The scope
    // is checked as `serve` checks it at load (strict).
    let target = Target::offline(&target_config, &adapter_registry(), &schema_registry())
        .map_err(|problems| anyhow::anyhow!("target {}: {}", target_config.name, problems.join("; ")))?;
    let mut schemas = schema_registry();
    scimgw_gateway::apply_attribute_policy(&mut schemas, &config);
    let Some(schema) = schemas.resource("User") else { bail!("the User resource type is missing") };

    // A stored user may have an account at the target already (its link); a body is a user the
    // target does not have yet.
    let (user, has_account): (Map<String, Value>, bool) = match (&args.user, &args.file) {
        (Some(id), _) => {
            // With its groups, which a scope may read.
            let Some(found) = store.get(&tenant.id, Kind::User, id, true).context("reading the user")? else {
                bail!("tenant {} has no user {id}", tenant.name);
            };
            let link = store.link(&tenant.id, target.name(), Kind::User, id).context("reading the user's link")?;
            (found.to_scim(None), link.is_some_and(|l| l.remote_id.is_some()))
        }
        (None, source) => {
            let text = match source.as_deref() {
                None | Some("-") => {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s).context("reading standard input")?;
                    s
                }
                Some(f) => std::fs::read_to_string(f).with_context(|| format!("reading {f}"))?,
            };
            let value: Value = serde_json::from_str(&text).context("the body is not JSON")?;
            // As the gateway would store it: canonical names, readOnly input dropped.
            let user = validate_resource(&schema, value)
                .map_err(|e| anyhow::anyhow!("the body is not a valid SCIM user: {}", e.detail))?;
            (user, false)
        }
    };
    let mut user = user;
    user.remove("meta");

    // The decision the gateway and the dispatcher would make; what follows only explains it.
    let decision = decide(&target, &user, &schema, AtTarget { has_account });
    // Read by the scope only (as the dispatcher does): the adapter's checks below get the user
    // without it.
    user.remove("groups");
    let kind = &target.config.kind;
    println!("target:   {} (kind {kind})", target.name());
    let in_scope = decision != Decision::OutOfScope;
    println!("scope:    {}", if in_scope { "in scope" } else { "OUT of scope (the target would not get this user)" });
    // A name the target derives that another user's account there has: the store refuses the
    // change (or skips this target), as the gateway's write would.
    let taken = match &decision {
        Decision::Send(payload) => match derived_account_name(&target, payload) {
            Some(name) => store
                .account_name_holder(&tenant.id, target.name(), name, args.user.as_deref().unwrap_or(""))
                .context("reading the target's account names")?
                .map(|holder| (name.to_owned(), holder)),
            None => None,
        },
        _ => None,
    };
    let refused = match &decision {
        Decision::Send(_) => taken.is_some() && target.config.on_invalid == OnInvalid::Reject,
        Decision::Invalid { on_invalid, .. } => *on_invalid == OnInvalid::Reject,
        Decision::OutOfScope | Decision::NotCreatedWhileInactive => false,
    };
    let verdict = match &decision {
        Decision::Send(_) if taken.is_some() => {
            let (name, holder) = taken.as_ref().map(|(n, h)| (n.as_str(), h.as_str())).unwrap_or_default();
            let why = format!("the name \"{name}\" at this target is already the account of user {holder}");
            match target.config.on_invalid {
                OnInvalid::Reject => format!("REFUSED: the IdP gets 409 uniqueness and nothing is stored: {why}"),
                OnInvalid::Skip => format!("SKIPPED at this target (stored, and sent to the other targets): {why}"),
            }
        }
        Decision::Send(_) => "delivered".to_owned(),
        Decision::OutOfScope => "out of scope: nothing is sent (an account the target has is deprovisioned)".to_owned(),
        Decision::Invalid { on_invalid: OnInvalid::Reject, .. } => {
            "REFUSED: the IdP gets 400 invalidValue and nothing is stored".to_owned()
        }
        Decision::Invalid { on_invalid: OnInvalid::Skip, .. } => {
            "SKIPPED at this target (stored, and sent to the other targets)".to_owned()
        }
        Decision::NotCreatedWhileInactive => {
            format!("not created yet: the user is inactive and {kind} creates no inactive users until it is active")
        }
    };
    println!("outcome:  {verdict}");
    println!();
    match &decision {
        Decision::Invalid { violations, .. } => {
            println!("rules broken:");
            for v in violations {
                println!("  {}: {}", v.attribute, v.rule);
            }
        }
        Decision::OutOfScope => println!("rules broken: not checked (out of scope)"),
        Decision::Send(_) | Decision::NotCreatedWhileInactive => println!("rules broken: none"),
    }
    if decision == Decision::OutOfScope {
        // Nothing goes to this target: a payload would read as what it gets.
        println!();
        println!("payload:  none (out of scope)");
        return Ok(false);
    }
    let warnings = target.adapter.warnings(&user);
    if !warnings.is_empty() {
        println!("warnings:");
        for w in &warnings {
            println!("  {}: {}", w.attribute, w.rule);
        }
    }
    let dropped = target.adapter.dropped(&user);
    println!("dropped (never sent):{}", if dropped.is_empty() { " nothing" } else { "" });
    for (attr, why) in &dropped {
        println!("  {attr} — {why}");
    }
    println!();
    // What would be sent were it not for the decision, so that a mapping can be checked anyway.
    let (label, payload) = match decision {
        Decision::Send(payload) => ("", Ok(payload)),
        Decision::Invalid { .. } => (" (if the rules held)", target.adapter.translate(&user)),
        Decision::NotCreatedWhileInactive => (" (once the user is active)", target.adapter.translate(&user)),
        Decision::OutOfScope => return Ok(false),
    };
    match payload {
        Ok(payload) => {
            println!("payload{label}:");
            println!("{}", serde_json::to_string_pretty(&payload)?);
        }
        Err(v) => println!("payload: none ({v})"),
    }
    Ok(refused)
}
