//! # cairn-serve: any cairn store behind the S3 protocol
//!
//! [`bind`] opens a listener for a [`Config`]; [`Server::run`] serves until a shutdown future
//! resolves. Each bucket is a [`cairn::DynStore`]: a `--bucket NAME=URL` mapping (any cairn
//! URL, layered stacks and `s3://` included) or a directory under a root. The S3 side (XML,
//! SigV4, presigned URLs, error rendering) is the `s3s` crate's; this crate maps S3
//! operations onto cairn's `Store` calls and adds what a server needs around them: limits,
//! a memory budget, TLS, `/health`, an access log and graceful shutdown.
//!
//! The library `cairn` never depends on this crate; `cairn serve` (the CLI) calls it.
#![deny(missing_docs)]

mod buckets;
mod checksum;
mod errors;
mod gateway;
mod list;
mod memory;
mod multipart;
mod server;

pub use buckets::valid_name as valid_bucket_name;

use cairn::{DynStore, Secret};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The default port (S3 gateways commonly use 9000; this one avoids MinIO's).
pub const DEFAULT_PORT: u16 = 9010;

/// Everything `cairn serve` needs.
#[derive(Debug)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Fixed buckets: name to store.
    pub buckets: BTreeMap<String, DynStore>,
    /// A directory whose top-level directories are buckets on the local store.
    pub root: Option<PathBuf>,
    /// Where open multipart uploads are kept (default: `ROOT/.cairn-serve`).
    pub state_dir: PathBuf,
    /// SigV4 credentials clients must sign with.
    pub credentials: Option<(String, Secret)>,
    /// Allow unsigned requests.
    pub anonymous: bool,
    /// PEM certificate chain and private key files for TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Requests in flight across all connections; more get 503 SlowDown.
    pub max_requests: usize,
    /// Requests in flight on one connection (HTTP/2 multiplexes); more get 503 SlowDown.
    pub max_requests_per_connection: usize,
    /// Bytes of request bodies and part buffers held at once across all requests.
    pub memory_limit: u64,
    /// Log one line per request (target `cairn_serve::access`, level info).
    pub access_log: bool,
    /// How long in-flight requests may run after shutdown begins.
    pub grace: Duration,
}

impl Config {
    /// A config with defaults: 127.0.0.1:[`DEFAULT_PORT`], 256 requests in flight (16 per
    /// connection), a 256 MiB memory budget, 30 s grace.
    pub fn new(state_dir: PathBuf) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            buckets: BTreeMap::new(),
            root: None,
            state_dir,
            credentials: None,
            anonymous: false,
            tls: None,
            max_requests: 256,
            max_requests_per_connection: 16,
            memory_limit: 256 * 1024 * 1024,
            access_log: false,
            grace: Duration::from_secs(30),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is wrong; the message says which.
    #[error("{0}")]
    Config(String),
    /// Binding the address or reading a file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// A bound server, not yet serving.
pub struct Server {
    listener: tokio::net::TcpListener,
    shared: Arc<server::Shared>,
    tls: Option<server::Tls>,
    grace: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

/// Binds the listener and prepares the service; nothing is served until [`Server::run`].
pub async fn bind(config: Config) -> Result<Server, Error> {
    if config.credentials.is_none() && !config.anonymous {
        return Err(Error::Config(
            "no credentials: give --access-key and --secret-key (or CAIRN_SERVE_ACCESS_KEY and \
             CAIRN_SERVE_SECRET_KEY), or --anonymous to allow unsigned requests"
                .into(),
        ));
    }
    if config.buckets.is_empty() && config.root.is_none() {
        return Err(Error::Config(
            "no buckets: give --root DIR or --bucket NAME=URL".into(),
        ));
    }
    for name in config.buckets.keys() {
        if !buckets::valid_name(name) {
            return Err(Error::Config(format!(
                "{name:?} is not a valid bucket name (3-63 lowercase letters, digits, `-`, `.`)"
            )));
        }
    }
    if let Some(root) = &config.root {
        std::fs::create_dir_all(root).map_err(io(format!("creating {}", root.display())))?;
    }
    let uploads = multipart::Uploads::open(&config.state_dir).map_err(io(format!(
        "creating the state directory {}",
        config.state_dir.display()
    )))?;
    let tls = match &config.tls {
        Some((cert, key)) => Some(load_tls(cert, key)?),
        None => None,
    };
    let memory = memory::Memory::new(config.memory_limit);
    let gateway = gateway::Gateway::new(
        buckets::Buckets::new(config.buckets, config.root),
        uploads,
        memory.clone(),
    );
    let s3 = {
        let mut b = s3s::service::S3ServiceBuilder::new(gateway);
        if let Some((ak, sk)) = &config.credentials {
            b.set_auth(s3s::auth::SimpleAuth::from_single(
                ak.clone(),
                sk.expose().to_string(),
            ));
        }
        if config.anonymous {
            b.set_access(gateway::AllowAnonymous);
        }
        b.build()
    };
    let slow_down = {
        let mut b = s3s::service::S3ServiceBuilder::new(gateway::SlowDown);
        b.set_access(gateway::AllowAnonymous);
        b.build()
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(io(format!("listening on {}", config.listen)))?;
    let shared = Arc::new(server::Shared {
        s3,
        slow_down,
        global: Arc::new(tokio::sync::Semaphore::new(config.max_requests.max(1))),
        per_connection: config.max_requests_per_connection.max(1),
        memory,
        access_log: config.access_log,
    });
    Ok(Server {
        listener,
        shared,
        tls,
        grace: config.grace,
    })
}

impl Server {
    /// The address it listens on (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener")
    }

    /// Whether it speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The endpoint URL clients use.
    pub fn endpoint(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr())
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish (up to the
    /// grace period). Open multipart uploads stay on disk for the next start.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        server::run(self.listener, self.shared, self.tls, shutdown, self.grace).await
    }
}

fn load_tls(cert: &std::path::Path, key: &std::path::Path) -> Result<server::Tls, Error> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| Error::Config(format!("reading {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{} holds no PEM certificate",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Error::Config(format!("reading {}: {e}", key.display())))?;
    let mut config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Config(format!("TLS certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
