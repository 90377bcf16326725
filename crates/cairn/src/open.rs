//! URL + options → a store with its default layers.

use crate::backend::{local::LocalStore, memory::MemoryStore};
use crate::config::{Config, Location, StoreUrl};
use crate::error::Result;
use crate::layer::retry::{RetryPolicy, RetryStore};
use crate::layer::{ObservedStore, PrefixStore, TieredStore};
use crate::store::DynStore;
use std::sync::Arc;

/// Opens the store at `url`, configured from the URL, the environment and the config file.
pub async fn open(url: &str) -> Result<DynStore> {
    open_with(url, Config::default()).await
}

/// Opens the store at `url` with explicit options, which take precedence over every other source.
pub async fn open_with(url: &str, options: Config) -> Result<DynStore> {
    if tier_url(url).is_some() {
        return Ok(open_tier(url, options).await?.store);
    }
    let (location, config) = resolve(url, options)?;
    if let Some(name) = config.tier_options().first() {
        return Err(crate::Error::invalid(format!(
            "{name}= applies to tiered stores, and {url:?} is not one"
        ))
        .with_hint(format!("write tier+{url} to put a hot tier in front of it")));
    }
    open_location(&location, &config).await
}

/// The cold store's URL of a `tier+URL`, or `None` for another URL.
pub fn tier_url(url: &str) -> Option<&str> {
    let u = url.trim();
    (u.len() > 5 && u[..5].eq_ignore_ascii_case("tier+")).then(|| &u[5..])
}

/// A store opened from a `tier+URL`: the stack to use, and the tier inside it.
#[derive(Debug, Clone)]
pub struct Tiered {
    /// The whole stack: the URL's layers and prefix over the tier. Use this for data.
    pub store: DynStore,
    /// The tier under the layers, for status, flush, evict and verify. Its keys are the
    /// stored keys: the URL's prefix included, and the checksum layer's manifests beside them.
    pub tier: TieredStore,
    /// The URL's prefix (`""` for none), which the tier's keys start with.
    pub prefix: String,
}

impl Tiered {
    /// The tier's key (or key prefix) for `path`, a key or prefix under the URL's prefix.
    pub fn stored_prefix(&self, path: &str) -> String {
        stored_key(&self.prefix, path)
    }
}

/// `path` under `prefix` as [`PrefixStore`] joins them: `{prefix}/{path}`.
fn stored_key(prefix: &str, path: &str) -> String {
    match prefix.trim_matches('/') {
        "" => path.to_string(),
        pre => format!("{pre}/{path}"),
    }
}

/// Opens `tier+URL` (e.g. `tier+s3://bucket/prefix?hot=/var/cache/cairn&mode=write-back`):
/// the store at URL as the cold tier, with the hot tier in the `hot` directory.
///
/// The tier sits under the layers (backend → retry → tier → checksum → encryption →
/// compression → prefix), so the hot copy holds exactly the stored bytes and records, and a
/// flush is a byte copy.
pub async fn open_tier(url: &str, options: Config) -> Result<Tiered> {
    let cold_url = tier_url(url).ok_or_else(|| {
        crate::Error::invalid(format!("{url:?} is not a tier+ URL"))
            .with_hint("write tier+s3://bucket/prefix?hot=/var/cache/cairn")
    })?;
    let (location, config) = resolve(cold_url, options)?;
    let hot = config.hot.clone().ok_or_else(|| {
        crate::Error::invalid(format!("{url:?} names no hot directory"))
            .with_hint("add ?hot=/path/to/cache (or the `hot` option)")
    })?;
    let mut policy = crate::layer::TierPolicy::from_config(&config)?;
    let (cold, prefix) = open_backend(&location, &config).await?;
    // Pins name keys as the URL's user does: under its prefix.
    for p in &mut policy.pins {
        *p = stored_key(&prefix, p);
    }
    let tier = TieredStore::open(hot, cold, policy).await?;
    let store = wrap(Arc::new(tier.clone()), &config, &prefix)?;
    Ok(Tiered {
        store,
        tier,
        prefix,
    })
}

/// The bucket-administration client for the bucket in an `s3://` URL, configured like
/// [`open_with`] (options > URL query > environment > config file), with the bucket name.
/// It lives here, not in the S3 backend, so the backend never depends on URL resolution.
pub async fn open_admin(
    url: &str,
    options: Config,
) -> Result<(crate::backend::s3::admin::Admin, String)> {
    let (location, config) = resolve(url, options)?;
    let Location::S3 { bucket, .. } = location else {
        return Err(
            crate::Error::invalid(format!("{url:?} is not an s3:// URL"))
                .with_hint("bucket commands need s3://BUCKET"),
        );
    };
    let store = crate::backend::s3::S3Store::new(&bucket, &config).await?;
    Ok((store.admin(), bucket))
}

/// Parses `url` and merges its config: options > URL query > environment > config file.
pub(crate) fn resolve(url: &str, options: Config) -> Result<(Location, Config)> {
    let parsed = StoreUrl::parse(url)?;
    let config = options
        .or(parsed.options)
        .or(Config::from_env()?)
        .or(Config::from_default_file()?);
    Ok((parsed.location, config))
}

/// Opens a parsed location with a fully merged config: the backend, wrapped in the default
/// layers ([`crate::layer::stack::apply`]), scoped to the URL's prefix.
pub async fn open_location(location: &Location, config: &Config) -> Result<DynStore> {
    let (base, prefix) = open_backend(location, config).await?;
    wrap(base, config, &prefix)
}

/// The bare backend of `location`, observed and (where it does not retry itself) retried,
/// and the location's prefix.
async fn open_backend(location: &Location, config: &Config) -> Result<(DynStore, String)> {
    let (base, prefix): (DynStore, &str) = match location {
        Location::Memory => (Arc::new(MemoryStore::new()), ""),
        Location::Local { root, prefix } => {
            let root = root.clone().or_else(|| config.root.clone());
            let store = match root {
                Some(r) => LocalStore::new(r)?,
                None => LocalStore::open_default()?,
            };
            (Arc::new(store), prefix.as_str())
        }
        Location::S3 { bucket, prefix } => (
            crate::backend::s3::open(bucket, config).await?,
            prefix.as_str(),
        ),
    };
    // Every call that reaches the backend is one span and one count (retries included).
    let base: DynStore = Arc::new(ObservedStore::new(base));
    // Stores that retry internally (S3) or cannot fail transiently (local, memory) are not
    // wrapped; anything else gets the config's retry policy.
    let caps = base.capabilities();
    let base: DynStore = if config.retry != Some(false) && !caps.retries_internally && !caps.local {
        Arc::new(RetryStore::new(base, RetryPolicy::from_config(config)))
    } else {
        base
    };
    Ok((base, prefix.to_string()))
}

/// The default layers over `base`, then the prefix.
fn wrap(base: DynStore, config: &Config, prefix: &str) -> Result<DynStore> {
    let base = crate::layer::stack::apply(base, config)?;
    if prefix.is_empty() {
        Ok(base)
    } else {
        Ok(Arc::new(PrefixStore::new(base, prefix)?))
    }
}

/// The store URL the use cases' environment names: `STORAGE_TYPE=local|s3` (default `local`),
/// `S3_BUCKET_NAME` and `S3_PREFIX`. `local` is the local default store (under `S3_PREFIX`).
pub fn url_from_env() -> Result<String> {
    url_from_env_with(|k| std::env::var(k).ok())
}

/// [`url_from_env`] over any lookup function (for tests).
pub fn url_from_env_with(get: impl Fn(&str) -> Option<String>) -> Result<String> {
    let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let prefix = get("S3_PREFIX")
        .map(|p| p.trim_matches('/').to_string())
        .unwrap_or_default();
    let kind = get("STORAGE_TYPE")
        .unwrap_or_else(|| "local".into())
        .to_ascii_lowercase();
    match kind.as_str() {
        "local" => Ok(format!("local://{prefix}")),
        "s3" => {
            let bucket = get("S3_BUCKET_NAME").ok_or_else(|| {
                crate::Error::invalid("STORAGE_TYPE=s3 but S3_BUCKET_NAME is not set")
                    .with_hint("set S3_BUCKET_NAME (and S3_ENDPOINT_URL for non-AWS servers)")
            })?;
            Ok(format!("s3://{bucket}/{prefix}"))
        }
        other => Err(
            crate::Error::invalid(format!("STORAGE_TYPE={other:?} is not local or s3"))
                .with_hint("set STORAGE_TYPE to local or s3"),
        ),
    }
}

/// Opens the store the environment names (see [`url_from_env`]).
pub async fn open_from_env() -> Result<DynStore> {
    open(&url_from_env()?).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_case_env_names_pick_the_store() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(url_from_env_with(env(&[])).unwrap(), "local://");
        assert_eq!(
            url_from_env_with(env(&[
                ("STORAGE_TYPE", "s3"),
                ("S3_BUCKET_NAME", "b1"),
                ("S3_PREFIX", "/app/")
            ]))
            .unwrap(),
            "s3://b1/app"
        );
        assert_eq!(
            url_from_env_with(env(&[("S3_PREFIX", "p")])).unwrap(),
            "local://p"
        );
        let e = url_from_env_with(env(&[("STORAGE_TYPE", "s3")])).unwrap_err();
        assert!(e.to_string().contains("S3_BUCKET_NAME"), "{e}");
        assert!(url_from_env_with(env(&[("STORAGE_TYPE", "gcs")])).is_err());
    }
}
