//! URL + options → a store with its default layers.

use crate::backend::{local::LocalStore, memory::MemoryStore};
use crate::config::{Config, Location, StoreUrl};
use crate::error::Result;
use crate::layer::retry::{RetryPolicy, RetryStore};
use crate::layer::PrefixStore;
use crate::store::DynStore;
use std::sync::Arc;

/// Opens the store at `url`, configured from the URL, the environment and the config file.
pub async fn open(url: &str) -> Result<DynStore> {
    open_with(url, Config::default()).await
}

/// Opens the store at `url` with explicit options, which take precedence over every other source.
pub async fn open_with(url: &str, options: Config) -> Result<DynStore> {
    let (location, config) = resolve(url, options)?;
    open_location(&location, &config).await
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

/// Opens a parsed location with a fully merged config.
pub async fn open_location(location: &Location, config: &Config) -> Result<DynStore> {
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
        Location::S3 { bucket, prefix } => {
            (crate::backend::s3::open(bucket, config).await?, prefix.as_str())
        }
    };
    // Stores that retry internally (S3) or cannot fail transiently (local, memory) are not
    // wrapped; anything else gets the config's retry policy.
    let caps = base.capabilities();
    let base: DynStore = if config.retry != Some(false) && !caps.retries_internally && !caps.local {
        Arc::new(RetryStore::new(base, RetryPolicy::from_config(config)))
    } else {
        base
    };
    if prefix.is_empty() {
        Ok(base)
    } else {
        Ok(Arc::new(PrefixStore::new(base, prefix)?))
    }
}
