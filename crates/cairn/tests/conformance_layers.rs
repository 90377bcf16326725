//! The conformance suite through cairn's layer stack, on memory and local (a temp dir).
//!
//! Stacks are built by `layer::stack::apply` from a `Config`, as `cairn::open` builds them,
//! with the key read from a file through the `file:` key provider.

use cairn::{Config, DynStore};
use std::sync::{Arc, OnceLock};

/// A key file shared by every test in this binary (leaked: it must outlive them all).
fn key_spec() -> String {
    static SPEC: OnceLock<String> = OnceLock::new();
    SPEC.get_or_init(|| {
        let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        let path = dir.path().join("key");
        std::fs::write(&path, hex_key()).unwrap();
        format!("file:{}", path.display())
    })
    .clone()
}

fn hex_key() -> String {
    (0u8..32)
        .map(|b| format!("{:02x}", b.wrapping_mul(37).wrapping_add(11)))
        .collect()
}

fn full(compression: &str) -> Config {
    Config {
        compression: Some(compression.into()),
        encryption_key: Some(key_spec()),
        ..Default::default()
    }
}

fn stacked(base: DynStore, config: &Config) -> DynStore {
    cairn::layer::stack::apply(base, config).unwrap()
}

fn local_base() -> DynStore {
    // Leaked on purpose: the directory must outlive the store for the whole test.
    let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    Arc::new(cairn::backend::local::LocalStore::new(dir.path()).unwrap())
}

/// checksum + zstd + encryption over memory.
mod memory_full {
    use super::*;
    cairn::conformance_tests!(|_name: &'static str| async {
        stacked(
            Arc::new(cairn::backend::memory::MemoryStore::new()),
            &full("zstd"),
        )
    });
}

/// checksum + zstd + encryption over a local directory.
mod local_full {
    use super::*;
    cairn::conformance_tests!(|_name: &'static str| async { stacked(local_base(), &full("zstd")) });
}

/// checksum + gzip + encryption over memory.
mod memory_gzip {
    use super::*;
    cairn::conformance_tests!(|_name: &'static str| async {
        stacked(
            Arc::new(cairn::backend::memory::MemoryStore::new()),
            &full("gzip"),
        )
    });
}

/// checksum + zstd + encryption over local with a URL prefix, through `cairn::open_with`.
mod local_open_prefixed {
    use super::*;
    cairn::conformance_tests!(|_name: &'static str| async {
        let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        let config = Config {
            root: Some(dir.path().to_path_buf()),
            ..full("zstd")
        };
        cairn::open_with("local://run/1", config).await.unwrap()
    });
}

/// The default stack (checksum only) over memory, through `cairn::open`.
mod memory_default_open {
    cairn::conformance_tests!(|_name: &'static str| async {
        cairn::open("memory://").await.unwrap()
    });
}
