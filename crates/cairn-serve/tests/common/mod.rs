//! An in-process `cairn serve` on 127.0.0.1:0 for the tests, over stores in a temp dir.
#![allow(dead_code)]

use cairn::{Config, DynStore};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

pub const ACCESS_KEY: &str = "serve-test";
pub const SECRET_KEY: &str = "serve-test-secret";

/// A running gateway.
pub struct Gateway {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it gracefully and waits.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
    }
}

/// The key file for the encrypted stack (32 bytes as hex).
pub fn key_file(dir: &std::path::Path) -> String {
    let path = dir.join("serve-test.key");
    std::fs::write(&path, "22".repeat(32)).unwrap();
    format!("file:{}", path.display())
}

/// Starts a gateway with bucket `data` on a local store (zstd+AES if `layered`) and
/// `--root`-style buckets under `DIR/root`.
pub async fn start(layered: bool, anonymous: bool) -> Gateway {
    let dir = tempfile::tempdir().unwrap().keep();
    let mut opts = vec![];
    let key = key_file(&dir);
    if layered {
        opts.push(("compression", "zstd".to_string()));
        opts.push(("encryption_key", key));
    }
    let config = Config::from_pairs(opts.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
    let url = format!("file://{}", dir.join("data").display());
    let store: DynStore = cairn::open_with(&url, config).await.unwrap();
    let mut buckets = BTreeMap::new();
    buckets.insert("data".to_string(), store);
    let mut c = cairn_serve::Config::new(dir.join("state"));
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.buckets = buckets;
    c.root = Some(dir.join("root"));
    c.credentials = Some((ACCESS_KEY.into(), cairn::Secret::new(SECRET_KEY)));
    c.anonymous = anonymous;
    let server = cairn_serve::bind(c).await.unwrap();
    let addr = server.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    Gateway {
        addr,
        dir,
        stop: Some(tx),
        task: Some(task),
    }
}

/// cairn's own S3 store pointed at the gateway's bucket `data` under `prefix`.
pub async fn client(g: &Gateway, prefix: &str) -> DynStore {
    let url = format!(
        "s3://data/{prefix}?endpoint={}&region=us-east-1&path_style=true&provider=aws",
        g.endpoint()
    );
    let creds = Config::from_pairs([
        ("access_key_id", ACCESS_KEY),
        ("secret_access_key", SECRET_KEY),
        // The gateway's store keeps its own checksum manifests under `.cairn-manifests/`
        // and refuses a client's there (docs/design.md, "cairn serve").
        ("checksum", "false"),
    ])
    .unwrap();
    cairn::open_with(&url, creds)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"))
}
