//! # cairn: one storage API over local disk, memory and any S3-compatible service
//!
//! - [`Store`] is the short contract a backend implements; [`StoreExt`] holds the calls users
//!   write (`put`, `get`, `head`, `exists`, `delete_many`, `list_objects`, `copy`, `rename`).
//! - Backends: [`backend::local::LocalStore`] (the embedded default, no config),
//!   [`backend::memory::MemoryStore`], and the S3 store (object_store's `AmazonS3` underneath).
//! - Layers wrap any store: see [`layer`] and docs/design.md for the order.
//! - [`open`] turns a URL plus options into a ready store with the default layers.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use cairn::{Key, StoreExt};
//! let store = cairn::open("memory://").await?;
//! let key = Key::new("reports/2026/run.json")?;
//! store.put(&key, &b"{}"[..]).await?;
//! assert_eq!(store.get(&key).await?, &b"{}"[..]);
//! # Ok::<(), cairn::Error>(())
//! # }).unwrap();
//! ```
#![deny(missing_docs)]

pub mod archive;
pub mod backend;
pub mod config;
pub mod digest;
pub mod error;
pub mod key;
pub mod layer;
pub mod listing;
pub mod metrics;
mod open;
pub mod ops;
pub mod provider;
pub mod server_side;
pub mod stats;
pub mod store;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod tmpfile;
pub mod transfer;

pub use config::{Config, Location, Secret, StoreUrl};
pub use error::{Error, ErrorKind, Result};
pub use key::Key;
pub use open::{
    open, open_admin, open_from_env, open_tier, open_with, tier_url, url_from_env, Tiered,
};
pub use store::*;
