//! `scimgw preview`: a dry run of one target's adapter on a user. Nothing is stored or sent.

use std::io::Read;

use anyhow::{Context, bail};
use clap::Args;
use scimgw_adapter::{OnInvalid, Secret};
use scimgw_delivery::{adapter_registry, schema_registry};
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

pub fn run(config: Config, args: PreviewArgs) -> anyhow::Result<()> {
    let store = open_store(&config)?;
    let (tenant, target) = tenant_target(&config, &store, &args.tenant, &args.target)?;
    let registry = adapter_registry();
    let Some(construct) = registry.get(&target.kind) else {
        bail!("target {}: unknown kind \"{}\"", target.name, target.kind);
    };
    // Nothing is sent: the real secret is not needed (and may not be on this machine).
    let adapter =
        construct(&target, Secret::new("preview")).map_err(|e| anyhow::anyhow!("target {}: {e}", target.name))?;
    let mut schemas = schema_registry();
    scimgw_gateway::apply_attribute_policy(&mut schemas, &config);
    let Some(schema) = schemas.resource("User") else { bail!("the User resource type is missing") };

    let user: Map<String, Value> = match (&args.user, &args.file) {
        (Some(id), _) => {
            let Some(found) = store.get(&tenant.id, Kind::User, id, false).context("reading the user")? else {
                bail!("tenant {} has no user {id}", tenant.name);
            };
            found.to_scim(None)
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
            validate_resource(&schema, value)
                .map_err(|e| anyhow::anyhow!("the body is not a valid SCIM user: {}", e.detail))?
        }
    };
    let mut user = user;
    user.remove("meta");

    // The scope is checked as `serve` checks it at load (strict), and matched on the user as
    // the endpoint stored it.
    let in_scope = match target.scope_filter(&schema_registry()) {
        Ok(None) => true,
        Ok(Some(f)) => f.matches(&Value::Object(user.clone()), &schema),
        Err(e) => bail!("target {}: {e}", target.name),
    };
    let violations = adapter.validate(&user);
    println!("target:   {} (kind {})", target.name, target.kind);
    println!("scope:    {}", if in_scope { "in scope" } else { "OUT of scope (the target would not get this user)" });
    let verdict = match (violations.is_empty(), target.on_invalid) {
        (true, _) => "delivered",
        (false, OnInvalid::Reject) => "REFUSED: the IdP gets 400 invalidValue and nothing is stored",
        (false, OnInvalid::Skip) => "SKIPPED at this target (stored, and sent to the other targets)",
    };
    println!("outcome:  {verdict}");
    if !adapter.creates_inactive() && user.get("active") == Some(&Value::Bool(false)) {
        println!(
            "note:     the user is inactive: {} creates no inactive users (an existing one is deactivated)",
            target.kind
        );
    }
    println!();
    println!("rules broken:{}", if violations.is_empty() { " none" } else { "" });
    for v in &violations {
        println!("  {}: {}", v.attribute, v.rule);
    }
    let warnings = adapter.warnings(&user);
    if !warnings.is_empty() {
        println!("warnings:");
        for w in &warnings {
            println!("  {}: {}", w.attribute, w.rule);
        }
    }
    let dropped = adapter.dropped(&user);
    println!("dropped (never sent):{}", if dropped.is_empty() { " nothing" } else { "" });
    for (attr, why) in &dropped {
        println!("  {attr} — {why}");
    }
    println!();
    match adapter.translate(&user) {
        Ok(payload) => {
            println!("payload{}:", if violations.is_empty() { "" } else { " (if the rules held)" });
            println!("{}", serde_json::to_string_pretty(&payload)?);
        }
        Err(v) => println!("payload: none ({v})"),
    }
    Ok(())
}
