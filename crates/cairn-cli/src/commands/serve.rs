//! `cairn serve`: the S3 gateway (crate cairn-serve) over stores named by URL or a root dir.

use crate::args::ServeArgs;
use crate::commands::Ctx;
use crate::error::{usage, Report, Result};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `--serve-config FILE`: the same settings as the flags; flags win.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    root: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    #[serde(default)]
    buckets: BTreeMap<String, String>,
}

pub async fn run(ctx: &Ctx, a: &ServeArgs) -> Result {
    let file: FileConfig = match &a.serve_config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Report::new(format!("reading {}: {e}", p.display())))?;
            toml::from_str(&text).map_err(|e| Report::new(format!("{}: {e}", p.display())))?
        }
        None => FileConfig::default(),
    };
    let mut urls = file.buckets.clone();
    for b in &a.buckets {
        let Some((name, url)) = b.split_once('=') else {
            return Err(usage(
                format!("--bucket {b:?} is not NAME=URL"),
                "write --bucket reports=file:///srv/reports",
            ));
        };
        urls.insert(name.to_string(), url.to_string());
    }
    let root = ctx.config.root.clone().or(file.root);
    // No buckets named at all: the local default store's directories are the buckets.
    let root = match (&root, urls.is_empty()) {
        (None, true) => Some(cairn::backend::local::default_root()),
        _ => root,
    };
    let listen_explicit = a.listen.as_ref().or(file.listen.as_ref());
    let listen: SocketAddr = match listen_explicit {
        Some(l) => l.parse().map_err(|e| {
            usage(
                format!("--listen {l:?}: {e}"),
                "write an address and port, e.g. 127.0.0.1:9010",
            )
        })?,
        None => SocketAddr::from(([127, 0, 0, 1], cairn_serve::DEFAULT_PORT)),
    };
    let mut stores = BTreeMap::new();
    for (name, url) in &urls {
        if !cairn_serve::valid_bucket_name(name) {
            return Err(usage(
                format!("bucket name {name:?} is not valid"),
                "use 3-63 lowercase letters, digits, `-` and `.`",
            ));
        }
        let store = cairn::open_with(url, ctx.config.clone()).await?;
        stores.insert(name.to_string(), store);
    }
    let state_dir = a
        .state_dir
        .clone()
        .or(file.state_dir)
        .or_else(|| root.as_ref().map(|r| r.join(".cairn").join("serve")))
        .unwrap_or_else(|| cairn::backend::local::default_root().join(".cairn/serve"));
    let credentials = match (&a.access_key, &a.secret_key) {
        (Some(ak), Some(sk)) => Some((ak.clone(), cairn::Secret::new(sk.clone()))),
        (None, None) => None,
        _ => {
            return Err(usage(
                "--access-key and --secret-key go together",
                "give both (or CAIRN_SERVE_ACCESS_KEY and CAIRN_SERVE_SECRET_KEY), or neither with --anonymous",
            ))
        }
    };
    let mut config = cairn_serve::Config::new(state_dir);
    config.listen = listen;
    config.buckets = stores;
    config.root = root.clone();
    config.credentials = credentials;
    config.anonymous = a.anonymous;
    config.tls = a.tls_cert.clone().zip(a.tls_key.clone());
    config.max_requests = a.max_requests;
    config.max_requests_per_connection = a.max_requests_per_connection;
    config.memory_limit = a.memory_limit;
    config.access_log = true;
    config.grace = std::time::Duration::from_secs(a.grace);
    let metrics = match &a.metrics {
        None => None,
        Some(m) => {
            let addr: SocketAddr = m.parse().map_err(|e| {
                usage(
                    format!("--metrics {m:?}: {e}"),
                    "write an address and port, e.g. 127.0.0.1:9464",
                )
            })?;
            cairn::metrics::install_prometheus(Some(addr))?;
            Some(addr)
        }
    };
    // Before the startup line: a SIGTERM right after it must already stop gracefully.
    let signals = Signals::install();
    let server = cairn_serve::bind(config).await.map_err(|e| {
        let hint = match e {
            cairn_serve::Error::Config(_) => "see `cairn serve --help`",
            cairn_serve::Error::Io { .. } => "pick another --listen address or check the paths",
        };
        Report::new(e.to_string()).hint(hint)
    })?;
    if !listen.ip().is_loopback() && !server.is_tls() {
        ctx.printer.warn(format!(
            "listening on {listen} without TLS: signatures are checked, but bodies and \
             metadata cross the network in clear; give --tls-cert and --tls-key"
        ));
    }
    let endpoint = server.endpoint();
    let mut what: Vec<String> = urls.keys().cloned().collect();
    if let Some(r) = &root {
        what.push(format!("directories of {}", r.display()));
    }
    ctx.printer.line(format!(
        "cairn serve: listening on {endpoint} (buckets: {})",
        what.join(", ")
    ))?;
    let keys = if a.access_key.is_some() {
        " AWS_ACCESS_KEY_ID=<--access-key> AWS_SECRET_ACCESS_KEY=<--secret-key>"
    } else {
        ""
    };
    ctx.printer
        .line(format!("  export AWS_ENDPOINT_URL={endpoint}{keys}"))?;
    if let Some(m) = metrics {
        ctx.printer.line(format!("  metrics: http://{m}/metrics"))?;
    }
    ctx.printer.flush()?;
    server.run(signals.next()).await;
    ctx.printer.info("cairn serve: stopped");
    Ok(())
}

/// SIGTERM and SIGINT, taken over from their default (ending the process).
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    /// The first of either.
    async fn next(self) {
        async fn recv(s: Option<tokio::signal::unix::Signal>) {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            () = recv(self.term) => {}
            () = recv(self.int) => {}
        }
    }
}
