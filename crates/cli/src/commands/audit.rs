//! `scimgw audit`: the audit trail — which key changed which resource of the tenant, how, to
//! which version, and when; beside it what operators did (tenant, key, retry, resync, repair,
//! reload), by whom.

use anyhow::{Context, bail};
use chrono::{DateTime, Duration, Utc};
use clap::Args;
use scimgw_store::AuditOrder;
use serde_json::{Value, json};

use super::{open_store, print_table};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The tenant, by name: its API changes and the operator actions about it. Without it, every
    /// operator action (of all tenants and none).
    #[arg(long)]
    tenant: Option<String>,
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
    let tenant = match &args.tenant {
        Some(name) => store.tenant_by_name(name).context("reading the tenant")?,
        None => None,
    };
    // A removed tenant's API events went with it; its operator actions stay.
    let (api, api_matched) = match &tenant {
        Some(tenant) => {
            let page = store
                .audit_events_in(&tenant.id, args.since, args.limit, AuditOrder::NewestFirst)
                .context("reading the audit trail")?;
            (page.events, page.matched)
        }
        None => (Vec::new(), 0),
    };
    let about = args.tenant.as_deref().map(|name| (name, tenant.as_ref().map(|t| t.id.as_str())));
    let (operator, operator_matched) = store
        .operator_events(about, args.since, args.limit, AuditOrder::NewestFirst)
        .context("reading the operator trail")?;
    if let Some(name) = &args.tenant
        && tenant.is_none()
        && operator_matched == 0
    {
        bail!("no tenant named {name}, and no operator action about one");
    }
    let mut events: Vec<Event> =
        api.into_iter().map(Event::Api).chain(operator.into_iter().map(Event::Operator)).collect();
    events.sort_by_key(|e| std::cmp::Reverse(e.at()));
    events.truncate(usize::try_from(args.limit).unwrap_or(usize::MAX));
    let matched = api_matched + operator_matched;
    // On stderr, so that `--json` stays one parseable document; printed before the table so that
    // it is not lost below a long one.
    let left_out = matched.saturating_sub(events.len() as u64);
    if left_out > 0 {
        eprintln!(
            "… {} older event{} not shown (--limit {}; use --since or a larger --limit)",
            thousands(left_out),
            if left_out == 1 { "" } else { "s" },
            args.limit
        );
    }
    if args.json {
        let out: Vec<Value> = events.iter().map(Event::to_json).collect();
        println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
        return Ok(());
    }
    if events.is_empty() {
        let whose = args.tenant.clone().unwrap_or_else(|| "operator actions".to_owned());
        println!("nothing recorded for {whose}{}", if args.since.is_some() { " in that time" } else { "" });
        return Ok(());
    }
    let rows: Vec<Vec<String>> = events.iter().map(Event::row).collect();
    print_table(&["AT (UTC)", "WHO", "OPERATION", "WHAT", "VERSION", "REQUEST"], &rows);
    Ok(())
}

/// An API change or an operator action, on one trail.
enum Event {
    Api(scimgw_store::AuditEvent),
    Operator(scimgw_store::OperatorEvent),
}

impl Event {
    fn at(&self) -> DateTime<Utc> {
        match self {
            Event::Api(e) => e.at,
            Event::Operator(e) => e.at,
        }
    }

    fn row(&self) -> Vec<String> {
        let at = self.at().format("%Y-%m-%d %H:%M:%S%.3f").to_string();
        match self {
            Event::Api(e) => vec![
                at,
                format!("key {}", e.key_id),
                e.operation.clone(),
                format!("{} {}", e.resource_type, e.resource_id),
                e.version.to_string(),
                e.request_id.clone().unwrap_or_else(|| "-".into()),
            ],
            Event::Operator(e) => vec![
                at,
                format!("operator {}", e.actor),
                e.operation.clone(),
                match (&e.tenant_name, &e.target) {
                    (Some(t), Some(target)) => format!("{t}/{target}: {}", e.detail),
                    (Some(t), None) => format!("{t}: {}", e.detail),
                    _ => e.detail.clone(),
                },
                "-".into(),
                "-".into(),
            ],
        }
    }

    fn to_json(&self) -> Value {
        let at = self.at().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        match self {
            Event::Api(e) => json!({
                "kind": "api",
                "at": at,
                "key_id": e.key_id,
                "request_id": e.request_id,
                "operation": e.operation,
                "resource_type": e.resource_type,
                "resource_id": e.resource_id,
                "version": e.version,
            }),
            Event::Operator(e) => json!({
                "kind": "operator",
                "at": at,
                "actor": e.actor,
                "operation": e.operation,
                "tenant": e.tenant_name,
                "target": e.target,
                "detail": e.detail,
            }),
        }
    }
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
