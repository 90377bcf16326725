//! Stores on moto and Garage reached through cairn's HTTP fault proxy (crates/cairn-faultproxy),
//! opened by URL like any user's, with `endpoint=` pointing at the proxy. The client signs for
//! the proxy's address and the proxy keeps the Host header, so Garage's SigV4 check holds.

#![allow(dead_code)]

use cairn::{Config, DynStore};
use cairn_faultproxy::{FaultProxy, Plan};

/// An S3 server started by scripts/servers/start.sh.
#[derive(Debug, Clone, Copy)]
pub struct Server {
    /// The env var infix: CAIRN_TEST_{env}_ENDPOINT, ...
    pub env: &'static str,
    /// cairn's provider name for it.
    pub provider: &'static str,
}

pub const MOTO: Server = Server {
    env: "MOTO",
    provider: "moto",
};
pub const GARAGE: Server = Server {
    env: "GARAGE",
    provider: "garage",
};

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start servers with scripts/servers/start.sh and source the env file")
    })
}

/// A number from env var `name`, or `default`.
pub fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

impl Server {
    pub fn var(&self, k: &str) -> String {
        env(&format!("CAIRN_TEST_{}_{k}", self.env))
    }

    /// A fault proxy in front of this server.
    pub async fn proxy(&self, plan: Plan) -> FaultProxy {
        FaultProxy::start(&self.var("ENDPOINT"), plan)
            .await
            .expect("fault proxy starts")
    }

    /// This server's bucket under `prefix`, through `endpoint`, with `extra` options.
    pub async fn open(&self, endpoint: &str, prefix: &str, extra: &[(&str, &str)]) -> DynStore {
        let url = format!(
            "s3://{}/{prefix}?endpoint={endpoint}&region={}&path_style=true&provider={}",
            self.var("BUCKET"),
            self.var("REGION"),
            self.provider,
        );
        let mut c = Config::from_pairs([
            ("access_key_id", self.var("ACCESS_KEY_ID").as_str()),
            ("secret_access_key", self.var("SECRET_ACCESS_KEY").as_str()),
        ])
        .unwrap();
        for (k, v) in extra {
            c.set(k, v).unwrap();
        }
        cairn::open_with(&url, c)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"))
    }

    /// The same prefix without the proxy: what the server really holds.
    pub async fn direct(&self, prefix: &str) -> DynStore {
        self.open(&self.var("ENDPOINT"), prefix, &[]).await
    }
}

/// `{run id}/{random}/{test}`: a fresh prefix per test run.
pub fn unique_prefix(test: &str) -> String {
    format!(
        "{}/{:08x}/{test}",
        env("CAIRN_TEST_RUN_ID"),
        rand::random::<u32>()
    )
}
