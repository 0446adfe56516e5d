//! Loading the configuration: built-in defaults, then the TOML file, then `SCIMGW_…` environment
//! variables (`__` separates nested keys: `SCIMGW_STORE__URL`).

use std::path::Path;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use scimgw_gateway::Config;

/// Where `--config` points when it is not given.
pub const DEFAULT_CONFIG: &str = "config/gateway.toml";

/// Loads the configuration. A missing file is an error when it was named explicitly; the
/// default file may be absent (built-in defaults then apply).
pub fn load(explicit: Option<&Path>) -> anyhow::Result<Config> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    match explicit {
        Some(path) => {
            if !path.is_file() {
                bail!("config file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file(path));
        }
        None => {
            if Path::new(DEFAULT_CONFIG).is_file() {
                figment = figment.merge(Toml::file(DEFAULT_CONFIG));
            }
        }
    }
    let keys = top_level_keys()?;
    figment = figment.merge(
        Env::prefixed("SCIMGW_")
            .filter(move |k| {
                let top = k.as_str().split("__").next().unwrap_or("");
                keys.iter().any(|known| known.eq_ignore_ascii_case(top))
            })
            .split("__"),
    );
    let config: Config = figment.extract().context("configuration")?;
    if let Err(problems) = config.validate() {
        bail!("configuration: {}", problems.join("; "));
    }
    Ok(config)
}

/// The configuration's top-level keys, read off `Config` itself: environment variables outside
/// them (`SCIMGW_TEST_DATABASE_URL`, say) belong to other tools and are ignored rather than
/// rejected as unknown keys. (A hand-kept list once missed `strict_attributes`.)
fn top_level_keys() -> anyhow::Result<Vec<String>> {
    match serde_json::to_value(Config::default()).context("listing the configuration's keys")? {
        serde_json::Value::Object(fields) => Ok(fields.into_iter().map(|(k, _)| k).collect()),
        _ => bail!("the configuration is not a table"),
    }
}

#[cfg(test)]
#[expect(clippy::result_large_err, reason = "figment's Jail API returns figment's own error type")]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_file_then_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "gw.toml",
                r#"
                    listen = "127.0.0.1:9100"
                    max_page_size = 500
                    [store]
                    url = "sqlite://from-file.db"
                "#,
            )?;
            jail.set_env("SCIMGW_STORE__URL", "postgres://env@localhost/db");
            jail.set_env("SCIMGW_LISTEN", "127.0.0.1:9200");
            jail.set_env("SCIMGW_ADMIN_LISTEN", "127.0.0.1:9300");
            jail.set_env("SCIMGW_TEST_DATABASE_URL", "postgres://ignored");
            let c = load(Some(Path::new("gw.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.listen, "127.0.0.1:9200");
            assert_eq!(c.admin_listen.as_deref(), Some("127.0.0.1:9300"));
            assert_eq!(c.store.url, "postgres://env@localhost/db");
            assert_eq!(c.max_page_size, 500);
            assert_eq!(c.default_page_size, 100);
            Ok(())
        });
    }

    /// Every top-level option is read from the environment, `SCIMGW_STRICT_ATTRIBUTES` (which
    /// README documents) included: a hand-kept list of keys once missed it, silently.
    #[test]
    fn every_top_level_option_is_read_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SCIMGW_STRICT_ATTRIBUTES", "true");
            jail.set_env("SCIMGW_DEFAULT_PAGE_SIZE", "7");
            let c = load(None).map_err(|e| e.to_string())?;
            assert!(c.strict_attributes, "SCIMGW_STRICT_ATTRIBUTES=true was ignored");
            assert_eq!(c.default_page_size, 7);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "listen = \"127.0.0.1:1\"\nmax_pagesize = 3\n")?;
            let e = load(Some(Path::new("bad.toml"))).unwrap_err();
            assert!(format!("{e:#}").contains("max_pagesize"), "{e:#}");
            jail.create_file("bad2.toml", "listen = \"nowhere\"\n")?;
            let e = load(Some(Path::new("bad2.toml"))).unwrap_err();
            assert!(format!("{e:#}").contains("listen"), "{e:#}");
            jail.create_file("bad3.toml", "admin_listen = \"nowhere\"\n")?;
            let e = load(Some(Path::new("bad3.toml"))).unwrap_err();
            assert!(format!("{e:#}").contains("admin_listen: \"nowhere\""), "{e:#}");
            jail.create_file("bad4.toml", "listen = \"127.0.0.1:9000\"\nadmin_listen = \"127.0.0.1:9000\"\n")?;
            let e = load(Some(Path::new("bad4.toml"))).unwrap_err();
            assert!(format!("{e:#}").contains("port of its own"), "{e:#}");
            let e = load(Some(Path::new("missing.toml"))).unwrap_err();
            assert!(format!("{e:#}").contains("does not exist"), "{e:#}");
            Ok(())
        });
    }
}
