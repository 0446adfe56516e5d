//! `scimgw audit`: the tenant's audit trail — which key changed which resource, how, to which
//! version, and when.

use anyhow::{Context, bail};
use chrono::{DateTime, Duration, Utc};
use clap::Args;
use scimgw_store::AuditOrder;
use serde_json::{Value, json};

use super::{open_store, print_table};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The tenant, by name.
    #[arg(long)]
    tenant: String,
    /// Only events at or after this: an RFC 3339 time (2026-12-04T09:00:00Z) or an age such as
    /// 90s, 15m, 2h or 7d.
    #[arg(long, value_parser = parse_since)]
    since: Option<DateTime<Utc>>,
    /// At most this many events, the newest (newest first); how many older ones were left out is
    /// said on stderr.
    #[arg(long, default_value_t = 1000)]
    limit: i64,
    /// Print JSON for scripts.
    #[arg(long)]
    json: bool,
}

/// An RFC 3339 time, or an age (`<n>s`, `m`, `h`, `d`) before now.
fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: i64 = number.parse().map_err(|_| format!("\"{text}\" is neither an RFC 3339 time nor an age like 15m"))?;
    let age = match unit {
        "s" => Duration::try_seconds(n),
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        _ => return Err(format!("\"{text}\": the age's unit must be s, m, h or d")),
    };
    age.and_then(|a| Utc::now().checked_sub_signed(a)).ok_or_else(|| format!("\"{text}\" is too far back"))
}

/// `scimgw audit --tenant T [--since …] [--limit N]`: the newest events first.
pub fn run(config: scimgw_gateway::Config, args: AuditArgs) -> anyhow::Result<()> {
    if args.limit < 1 {
        bail!("--limit must be at least 1");
    }
    let store = open_store(&config)?;
    let Some(tenant) = store.tenant_by_name(&args.tenant).context("reading the tenant")? else {
        bail!("no tenant named {}", args.tenant);
    };
    let page = store
        .audit_events_in(&tenant.id, args.since, args.limit, AuditOrder::NewestFirst)
        .context("reading the audit trail")?;
    // On stderr, so that `--json` stays one parseable document; printed before the table so that
    // it is not lost below a long one.
    let left_out = page.matched.saturating_sub(page.events.len() as u64);
    if left_out > 0 {
        eprintln!(
            "… {} older event{} not shown (--limit {}; use --since or a larger --limit)",
            thousands(left_out),
            if left_out == 1 { "" } else { "s" },
            args.limit
        );
    }
    let events = page.events;
    if args.json {
        let out: Vec<Value> = events
            .iter()
            .map(|e| {
                json!({
                    "at": e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    "key_id": e.key_id,
                    "request_id": e.request_id,
                    "operation": e.operation,
                    "resource_type": e.resource_type,
                    "resource_id": e.resource_id,
                    "version": e.version,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
        return Ok(());
    }
    if events.is_empty() {
        println!("no changes recorded for {}{}", tenant.name, if args.since.is_some() { " in that time" } else { "" });
        return Ok(());
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                e.key_id.clone(),
                e.operation.clone(),
                format!("{} {}", e.resource_type, e.resource_id),
                e.version.to_string(),
                e.request_id.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(&["AT (UTC)", "KEY", "OPERATION", "RESOURCE", "VERSION", "REQUEST"], &rows);
    Ok(())
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_time_or_an_age() {
        let t = parse_since("2026-12-04T09:00:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-04T09:00:00+00:00");
        let age = Utc::now() - parse_since("15m").unwrap();
        assert!((age.num_seconds() - 900).abs() <= 2, "{age}");
        assert!(parse_since("2d").is_ok());
        for bad in ["", "m", "15", "15w", "yesterday", "99999999999999999d"] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234), "1,234");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
