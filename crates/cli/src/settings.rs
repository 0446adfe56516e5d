//! Loading the configuration: built-in defaults, then the TOML file, then `SCIMGW_…` environment
//! variables (`__` separates nested keys: `SCIMGW_STORE__URL`); then the relative paths in it
//! (`store.url`'s SQLite file, `tenants_dir`) made absolute, each against where it was written.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::{Figment, Source};
use scimgw_gateway::Config;

/// Where `--config` points when it is not given.
pub const DEFAULT_CONFIG: &str = "config/gateway.toml";

/// Loads the configuration. A missing file is an error when it was named explicitly; the
/// default file may be absent (built-in defaults then apply).
///
/// Relative paths are made absolute, so that every command finds the same store and tenants
/// wherever it runs from: a path from the file (or a default, when there is a file) against the
/// file's directory; a path from the environment, or any path when there is no file, against
/// the working directory.
pub fn load(explicit: Option<&Path>) -> anyhow::Result<Config> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    let file: Option<PathBuf> = match explicit {
        Some(path) => {
            if !path.is_file() {
                bail!("config file {} does not exist", path.display());
            }
            Some(path.to_owned())
        }
        None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.is_file()),
    };
    if let Some(path) = &file {
        figment = figment.merge(Toml::file(path));
    }
    let keys = top_level_keys()?;
    let env = Env::prefixed("SCIMGW_")
        .filter(move |k| {
            let top = k.as_str().split("__").next().unwrap_or("");
            keys.iter().any(|known| known.eq_ignore_ascii_case(top))
        })
        .split("__");
    figment = figment.merge(env.clone());
    let mut config: Config = figment.extract().context("configuration")?;
    let cwd = std::env::current_dir().context("reading the working directory")?;
    let file_dir = match &file {
        Some(path) => Some(
            std::path::absolute(path)
                .with_context(|| format!("locating {}", path.display()))?
                .parent()
                .map_or_else(|| cwd.clone(), Path::to_owned),
        ),
        None => None,
    };
    let from_env = Figment::from(env);
    let origin = |key: &str| {
        if from_env.contains(key) {
            Origin::Environment
        } else if matches!(figment.find_metadata(key).and_then(|m| m.source.as_ref()), Some(Source::File(_))) {
            Origin::File
        } else {
            Origin::Default
        }
    };
    let base = |origin: Origin| match (origin, &file_dir) {
        (Origin::File | Origin::Default, Some(dir)) => dir.clone(),
        _ => cwd.clone(),
    };

    let store_origin = origin("store.url");
    let written = config.store.sqlite_path();
    config.store.resolve_sqlite_path(&base(store_origin));
    // Before paths were resolved against the file, a relative store path meant one in the working
    // directory: refuse to start on an empty store beside an existing one (the silent failure
    // this resolution fixes), and say where each is.
    if let (Some(written), Some(resolved)) = (written.filter(|p| p.is_relative()), config.store.sqlite_path()) {
        let old = cwd.join(&written);
        if store_origin != Origin::Environment && !resolved.is_file() && old.is_file() && old != resolved {
            bail!(
                "store.url {} is relative to the config file's directory, which puts the store at {}; \
                 there is none there, but there is one at {} (where earlier versions looked): move it, \
                 or set store.url = \"sqlite://{}\"",
                written.display(),
                resolved.display(),
                old.display(),
                old.display()
            );
        }
    }

    let tenants_origin = origin("tenants_dir");
    if tenants_origin == Origin::Default && file_dir.is_some() {
        // The built-in `config/tenants` is the folder beside the default `config/gateway.toml`;
        // with a config file, that is `tenants` beside it.
        config.tenants_dir = "tenants".into();
    }
    let tenants = Path::new(&config.tenants_dir);
    if tenants.is_relative() {
        config.tenants_dir = base(tenants_origin).join(tenants).display().to_string();
    }

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

/// Where a setting's value came from, which decides what a relative path in it is relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Default,
    File,
    Environment,
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
    fn relative_paths_resolve_against_the_file_they_were_written_in_or_the_working_directory() {
        figment::Jail::expect_with(|jail| {
            let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
            std::fs::create_dir_all("etc/scimgw").map_err(|e| e.to_string())?;
            jail.create_file("etc/scimgw/gw.toml", "[store]\nurl = \"sqlite://data/scimgw.db\"\n")?;
            let c = load(Some(Path::new("etc/scimgw/gw.toml"))).map_err(|e| e.to_string())?;
            let etc = cwd.join("etc/scimgw");
            assert_eq!(c.store.url, format!("sqlite://{}", etc.join("data/scimgw.db").display()));
            assert_eq!(c.tenants_dir, etc.join("tenants").display().to_string(), "the default: beside the file");

            jail.create_file("etc/scimgw/gw.toml", "tenants_dir = \"targets\"\n")?;
            let c = load(Some(Path::new("etc/scimgw/gw.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.store.url, format!("sqlite://{}", etc.join("data/scimgw.db").display()));
            assert_eq!(c.tenants_dir, etc.join("targets").display().to_string());

            // From the environment: not from the file, so from the working directory.
            jail.set_env("SCIMGW_STORE__URL", "sqlite://here.db");
            jail.set_env("SCIMGW_TENANTS_DIR", "mine");
            let c = load(Some(Path::new("etc/scimgw/gw.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.store.url, format!("sqlite://{}", cwd.join("here.db").display()));
            assert_eq!(c.tenants_dir, cwd.join("mine").display().to_string());
            jail.set_env("SCIMGW_STORE__URL", "sqlite:///abs/x.db");
            assert_eq!(
                load(Some(Path::new("etc/scimgw/gw.toml"))).map_err(|e| e.to_string())?.store.url,
                "sqlite:///abs/x.db"
            );
            Ok(())
        });
    }

    #[test]
    fn without_a_config_file_paths_are_relative_to_the_working_directory() {
        figment::Jail::expect_with(|_| {
            let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
            let c = load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.store.url, format!("sqlite://{}", cwd.join("data/scimgw.db").display()));
            assert_eq!(c.tenants_dir, cwd.join("config/tenants").display().to_string());
            Ok(())
        });
    }

    #[test]
    fn a_store_left_where_earlier_versions_put_it_is_not_replaced_by_an_empty_one() {
        figment::Jail::expect_with(|jail| {
            std::fs::create_dir_all("conf").map_err(|e| e.to_string())?;
            jail.create_file("conf/gw.toml", "[store]\nurl = \"sqlite://old.db\"\n")?;
            jail.create_file("old.db", "")?;
            let e = load(Some(Path::new("conf/gw.toml"))).unwrap_err();
            assert!(format!("{e:#}").contains("where earlier versions looked"), "{e:#}");
            jail.create_file("conf/old.db", "")?;
            assert!(load(Some(Path::new("conf/gw.toml"))).is_ok(), "the store beside the file is the one");
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
