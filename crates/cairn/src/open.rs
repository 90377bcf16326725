//! URL + options → a store with its default layers.

use crate::backend::{local::LocalStore, memory::MemoryStore};
use crate::config::{Config, Location, StoreUrl};
use crate::error::Result;
use crate::layer::PrefixStore;
use crate::store::DynStore;
use std::sync::Arc;

/// Opens the store at `url`, configured from the URL, the environment and the config file.
pub async fn open(url: &str) -> Result<DynStore> {
    open_with(url, Config::default()).await
}

/// Opens the store at `url` with explicit options, which take precedence over every other source.
pub async fn open_with(url: &str, options: Config) -> Result<DynStore> {
    let parsed = StoreUrl::parse(url)?;
    let config = options
        .or(parsed.options)
        .or(Config::from_env()?)
        .or(Config::from_default_file()?);
    open_location(&parsed.location, &config).await
}

/// Opens a parsed location with a fully merged config: the backend, wrapped in the default
/// layers ([`crate::layer::stack::apply`]), scoped to the URL's prefix.
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
    let base = crate::layer::stack::apply(base, config)?;
    if prefix.is_empty() {
        Ok(base)
    } else {
        Ok(Arc::new(PrefixStore::new(base, prefix)?))
    }
}
