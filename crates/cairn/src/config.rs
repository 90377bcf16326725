//! One config shape for URLs, env, config files, CLI flags and Python keyword arguments.
//!
//! Precedence, highest first: explicit options (CLI flags, Python kwargs) > URL query parameters >
//! environment > config file (`$CAIRN_CONFIG` or `~/.config/cairn/config.toml`) > defaults.
//! Every source goes through [`Config::set`], so names, aliases and errors are the same everywhere.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A secret string: never shown by Debug, Display or Serialize-to-human output.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for handing to a credential provider only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Every setting a store can take. `None` means "not set here; use a lower source or the default".
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// S3 endpoint URL, e.g. `http://127.0.0.1:3900` (default: AWS).
    pub endpoint: Option<String>,
    /// S3 region (default: from the AWS chain, else `us-east-1`).
    pub region: Option<String>,
    /// Static access key id (default: the AWS credential chain).
    pub access_key_id: Option<String>,
    /// Static secret access key.
    pub secret_access_key: Option<Secret>,
    /// Static session token.
    pub session_token: Option<Secret>,
    /// AWS profile name for the credential chain.
    pub profile: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), needed by MinIO, Garage, Ceph and moto.
    pub path_style: Option<bool>,
    /// Allow plain `http://` endpoints. Default: only to this machine (127.0.0.0/8, ::1,
    /// `localhost`); any other host needs `true`, TLS is the default.
    pub allow_http: Option<bool>,
    /// Provider quirks: `aws`, `r2`, `minio`, `garage`, `ceph`, `moto` (default: `aws`).
    pub provider: Option<String>,
    /// Idle connections kept per host.
    pub pool_size: Option<usize>,
    /// TCP connect timeout, e.g. `5s`.
    #[serde(with = "opt_duration")]
    pub connect_timeout: Option<Duration>,
    /// Per-request timeout, e.g. `30s`.
    #[serde(with = "opt_duration")]
    pub timeout: Option<Duration>,
    /// SigV4 payload signing of upload bodies: `auto`, `always` or `never` (default `auto`:
    /// unsigned with a server-checked CRC64-NVME over https or loopback, signed otherwise).
    pub payload_signing: Option<String>,
    /// Most retries of a transient failure.
    pub max_retries: Option<usize>,
    /// Lower the S3 requests in flight under 503 SlowDown / 429 and raise them again after
    /// (AIMD, default true); `false` keeps them at the transfer's concurrency.
    pub adaptive_concurrency: Option<bool>,
    /// Total time budget for retries of one request, e.g. `30s`.
    #[serde(with = "opt_duration")]
    pub retry_timeout: Option<Duration>,
    /// Server-side encryption: `aes256`, `aws:kms`, or `sse-c`.
    pub sse: Option<String>,
    /// KMS key id for `sse = "aws:kms"`.
    pub sse_kms_key_id: Option<String>,
    /// Base64 256-bit customer key for `sse = "sse-c"`.
    pub sse_customer_key: Option<Secret>,
    /// Root directory of the local store (default: [`crate::backend::local::default_root`]).
    pub root: Option<PathBuf>,
    /// Verify SHA-256 on every read (default: true).
    pub checksum: Option<bool>,
    /// Retry transient faults (default: true).
    pub retry: Option<bool>,
    /// `zstd`, `gzip` or `none` (default: none).
    pub compression: Option<String>,
    /// zstd or gzip level.
    pub compression_level: Option<i32>,
    /// Client-side encryption key source: `env:VAR` or `file:PATH` (default: none).
    pub encryption_key: Option<String>,
    /// Tiered store (`tier+URL`): the hot directory.
    pub hot: Option<PathBuf>,
    /// Tiered store: bytes the hot tier aims to hold, e.g. `10GiB`.
    pub hot_max: Option<u64>,
    /// Tiered store: objects the hot tier aims to hold.
    pub hot_max_entries: Option<u64>,
    /// Tiered store: `write-through` (default) or `write-back`.
    pub mode: Option<String>,
    /// Tiered store: revalidate hot entries against cold after this long (default `30s`).
    #[serde(with = "opt_duration")]
    pub ttl: Option<Duration>,
    /// Tiered store: objects never change; never revalidate.
    pub immutable: Option<bool>,
    /// Tiered store: write-back bytes not yet flushed before writes go synchronous.
    pub dirty_max: Option<u64>,
    /// Tiered store: clean entries not read for this long leave hot, e.g. `7d`.
    #[serde(with = "opt_duration")]
    pub demote_after: Option<Duration>,
    /// Tiered store: key prefixes kept hot (repeatable, or a comma list).
    pub pin: Option<Vec<String>>,
    /// Tiered store: concurrent uploads of the write-back flusher (default 4).
    pub flush_concurrency: Option<usize>,
    /// Tiered store: how long a write-back write waits before the flusher uploads it
    /// (default `1s`; `0s` uploads at once).
    #[serde(with = "opt_duration")]
    pub flush_delay: Option<Duration>,
}

/// The names [`Config::set`] accepts (canonical names; aliases are listed in the README).
pub const KEYS: &[&str] = &[
    "endpoint",
    "region",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "profile",
    "path_style",
    "allow_http",
    "provider",
    "pool_size",
    "connect_timeout",
    "timeout",
    "payload_signing",
    "max_retries",
    "adaptive_concurrency",
    "retry_timeout",
    "sse",
    "sse_kms_key_id",
    "sse_customer_key",
    "root",
    "checksum",
    "retry",
    "compression",
    "compression_level",
    "encryption_key",
    "hot",
    "hot_max",
    "hot_max_entries",
    "mode",
    "ttl",
    "immutable",
    "dirty_max",
    "demote_after",
    "pin",
    "flush_concurrency",
    "flush_delay",
];

fn canonical(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase().replace('-', "_");
    let n = n.strip_prefix("aws_").unwrap_or(&n).to_string();
    match n.as_str() {
        "endpoint_url" | "s3_endpoint" | "endpoint" => "endpoint".into(),
        "default_region" | "region" => "region".into(),
        "access_key" | "key_id" => "access_key_id".into(),
        "secret_key" | "secret" => "secret_access_key".into(),
        "token" => "session_token".into(),
        "force_path_style" | "virtual_hosted_style_request" => n,
        "pool" | "pool_max_idle_per_host" => "pool_size".into(),
        "request_timeout" | "timeout_secs" => "timeout".into(),
        "retries" => "max_retries".into(),
        _ => n,
    }
}

fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::invalid(format!(
            "{name} must be true or false, not {v:?}"
        ))),
    }
}

/// `value` lowercased if it is one of `choices`, else an error naming them all.
fn one_of(name: &str, value: &str, choices: &[&str]) -> Result<String> {
    let v = value.to_ascii_lowercase();
    if choices.contains(&v.as_str()) {
        return Ok(v);
    }
    let (last, rest) = choices.split_last().expect("choices are given");
    Err(Error::invalid(format!(
        "{name} must be {} or {last}, not {value:?}",
        rest.join(", ")
    )))
}

fn parse_num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T> {
    v.trim()
        .parse()
        .map_err(|_| Error::invalid(format!("{name} must be a whole number, not {v:?}")))
}

fn parse_duration(name: &str, v: &str) -> Result<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
    }
    humantime::parse_duration(v).map_err(|_| {
        Error::invalid(format!(
            "{name} must be a duration like `30s` or `500ms`, not {v:?}"
        ))
    })
}

impl Config {
    /// Sets one option by name (aliases accepted), parsing the value. Unknown names and bad
    /// values are `InvalidInput` errors that name the option; secrets are never echoed.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let key = canonical(name);
        let s = || Some(value.to_string());
        match key.as_str() {
            "endpoint" => {
                url::Url::parse(value).map_err(|e| {
                    Error::invalid(format!("endpoint {value:?} is not a URL: {e}"))
                        .with_hint("write it like http://127.0.0.1:9000 or https://s3.example.com")
                })?;
                self.endpoint = s()
            }
            "region" => self.region = s(),
            "access_key_id" => self.access_key_id = s(),
            "secret_access_key" => self.secret_access_key = Some(Secret::new(value)),
            "session_token" => self.session_token = Some(Secret::new(value)),
            "profile" => self.profile = s(),
            "path_style" | "force_path_style" => self.path_style = Some(parse_bool(name, value)?),
            "virtual_hosted_style_request" => self.path_style = Some(!parse_bool(name, value)?),
            "allow_http" => self.allow_http = Some(parse_bool(name, value)?),
            "provider" => {
                let p = value.to_ascii_lowercase();
                if !crate::provider::PROVIDERS.contains(&p.as_str()) {
                    return Err(Error::invalid(format!(
                        "unknown provider {value:?}; use one of {}",
                        crate::provider::PROVIDERS.join(", ")
                    )));
                }
                self.provider = Some(p)
            }
            "pool_size" => self.pool_size = Some(parse_num(name, value)?),
            "connect_timeout" => self.connect_timeout = Some(parse_duration(name, value)?),
            "timeout" => self.timeout = Some(parse_duration(name, value)?),
            "payload_signing" => {
                self.payload_signing = Some(one_of(&key, value, &["auto", "always", "never"])?)
            }
            "max_retries" => self.max_retries = Some(parse_num(name, value)?),
            "adaptive_concurrency" => self.adaptive_concurrency = Some(parse_bool(name, value)?),
            "retry_timeout" => self.retry_timeout = Some(parse_duration(name, value)?),
            "sse" => {
                self.sse = Some(one_of(
                    &key,
                    value,
                    &["aes256", "aws:kms", "sse-c", "none"],
                )?)
            }
            "sse_kms_key_id" => self.sse_kms_key_id = s(),
            "sse_customer_key" => self.sse_customer_key = Some(Secret::new(value)),
            "root" => self.root = Some(PathBuf::from(value)),
            "checksum" => self.checksum = Some(parse_bool(name, value)?),
            "retry" => self.retry = Some(parse_bool(name, value)?),
            "compression" => {
                self.compression = Some(one_of(&key, value, &["zstd", "gzip", "none"])?)
            }
            "compression_level" => self.compression_level = Some(parse_num(name, value)?),
            "encryption_key" => self.encryption_key = s(),
            "hot" => self.hot = Some(PathBuf::from(value)),
            "hot_max" => self.hot_max = Some(crate::layer::tier::parse_size(name, value)?),
            "hot_max_entries" => self.hot_max_entries = Some(parse_num(name, value)?),
            "mode" => self.mode = Some(one_of(&key, value, &["write-through", "write-back"])?),
            "ttl" => self.ttl = Some(parse_duration(name, value)?),
            "immutable" => self.immutable = Some(parse_bool(name, value)?),
            "dirty_max" => self.dirty_max = Some(crate::layer::tier::parse_size(name, value)?),
            "demote_after" => self.demote_after = Some(parse_duration(name, value)?),
            "pin" => {
                let pins = self.pin.get_or_insert_with(Vec::new);
                for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    crate::key::validate_prefix(p)?;
                    pins.push(p.to_string());
                }
            }
            "flush_concurrency" => self.flush_concurrency = Some(parse_num(name, value)?),
            "flush_delay" => self.flush_delay = Some(parse_duration(name, value)?),
            _ => {
                return Err(Error::invalid(format!("unknown option {name:?}"))
                    .with_hint(format!("valid options: {}", KEYS.join(", "))))
            }
        }
        Ok(())
    }

    /// Builds a config from name/value pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut c = Config::default();
        for (k, v) in pairs {
            c.set(k, v)?;
        }
        Ok(c)
    }

    /// Reads the environment: the AWS_* standard and the S3_* names the use cases use.
    ///
    /// AWS_ACCESS_KEY_ID, AWS_PROFILE and the rest of the credential chain are left to aws-config,
    /// which reads them itself; only the S3_* aliases become static settings here.
    pub fn from_env() -> Result<Self> {
        Self::from_env_with(|k| std::env::var(k).ok())
    }

    /// [`Config::from_env`] over any lookup function (for tests).
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        const VARS: &[(&str, &str)] = &[
            ("AWS_ENDPOINT_URL_S3", "endpoint"),
            ("AWS_ENDPOINT_URL", "endpoint"),
            ("S3_ENDPOINT_URL", "endpoint"),
            ("AWS_REGION", "region"),
            ("AWS_DEFAULT_REGION", "region"),
            ("S3_REGION", "region"),
            ("S3_ACCESS_KEY_ID", "access_key_id"),
            ("S3_SECRET_ACCESS_KEY", "secret_access_key"),
            ("S3_PATH_STYLE", "path_style"),
            ("CAIRN_PROVIDER", "provider"),
            ("CAIRN_ROOT", "root"),
            ("CAIRN_COMPRESSION", "compression"),
            ("CAIRN_ENCRYPTION_KEY", "encryption_key"),
        ];
        let mut c = Config::default();
        // Earlier names win: walk in reverse so they are set last.
        for (var, key) in VARS.iter().rev() {
            if let Some(v) = get(var).filter(|v| !v.is_empty()) {
                c.set(key, &v).map_err(|e| {
                    Error::invalid(format!("environment variable {var}: {}", e.message()))
                })?;
            }
        }
        Ok(c)
    }

    /// Reads a TOML config file.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::from(e).with_hint(format!("could not read config file {}", path.display()))
        })?;
        toml::from_str(&text).map_err(|e| {
            Error::invalid(format!("config file {}: {}", path.display(), e.message()))
                .with_hint(format!("valid keys: {}", KEYS.join(", ")))
        })
    }

    /// The default config file if it exists: `$CAIRN_CONFIG`, else `~/.config/cairn/config.toml`.
    pub fn from_default_file() -> Result<Self> {
        if let Some(p) = std::env::var_os("CAIRN_CONFIG").filter(|p| !p.is_empty()) {
            return Self::from_file(std::path::Path::new(&p));
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
        match base.map(|b| b.join("cairn/config.toml")) {
            Some(p) if p.exists() => Self::from_file(&p),
            _ => Ok(Config::default()),
        }
    }

    /// The tiered-store options that are set (they mean nothing on a store without a tier).
    pub fn tier_options(&self) -> Vec<&'static str> {
        [
            ("hot", self.hot.is_some()),
            ("hot_max", self.hot_max.is_some()),
            ("hot_max_entries", self.hot_max_entries.is_some()),
            ("mode", self.mode.is_some()),
            ("ttl", self.ttl.is_some()),
            ("immutable", self.immutable.is_some()),
            ("dirty_max", self.dirty_max.is_some()),
            ("demote_after", self.demote_after.is_some()),
            ("pin", self.pin.is_some()),
            ("flush_concurrency", self.flush_concurrency.is_some()),
            ("flush_delay", self.flush_delay.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, set)| set.then_some(n))
        .collect()
    }

    /// Fills every unset field of `self` from `lower`.
    pub fn or(self, lower: Config) -> Config {
        let hi = serde_json::to_value(&self).expect("config serializes");
        let lo = serde_json::to_value(&lower).expect("config serializes");
        let (serde_json::Value::Object(mut hi), serde_json::Value::Object(lo)) = (hi, lo) else {
            unreachable!("config is a struct")
        };
        for (k, v) in lo {
            if hi.get(&k).is_none_or(|x| x.is_null()) {
                hi.insert(k, v);
            }
        }
        serde_json::from_value(serde_json::Value::Object(hi)).expect("merged config deserializes")
    }
}

mod opt_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(f64),
            Text(String),
        }
        Ok(match Option::<Raw>::deserialize(d)? {
            None => None,
            Some(Raw::Secs(s)) => Some(Duration::from_secs_f64(s)),
            Some(Raw::Text(t)) => {
                Some(super::parse_duration("duration", &t).map_err(serde::de::Error::custom)?)
            }
        })
    }
}

/// Where a URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `memory://` (one process-wide store per name after `memory://`).
    Memory,
    /// A directory: `file:///abs`, a plain path, or `local://` for the default root.
    Local {
        /// The directory (None: the default root).
        root: Option<PathBuf>,
        /// Key prefix under the root, "" for none.
        prefix: String,
    },
    /// `s3://bucket/prefix`.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket, "" for none (no trailing `/`).
        prefix: String,
    },
}

/// A parsed URL: where, plus the options from its query string.
#[derive(Debug, Clone)]
pub struct StoreUrl {
    /// Where the store is.
    pub location: Location,
    /// Options from `?k=v&...`.
    pub options: Config,
}

fn check_bucket(b: &str) -> Result<()> {
    let ok = (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        && b.as_bytes()[0].is_ascii_alphanumeric()
        && b.as_bytes()[b.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!("invalid bucket name {b:?}"))
            .with_hint("bucket names are 3-63 characters of a-z, 0-9, `-` and `.`"))
    }
}

fn clean_prefix(p: &str) -> Result<String> {
    let p = p.trim_matches('/');
    if !p.is_empty() {
        crate::key::Key::new(p)?;
    }
    Ok(p.to_string())
}

impl StoreUrl {
    /// Parses `s3://bucket/prefix?k=v`, `file:///abs`, `local://prefix`, `memory://` or a plain
    /// path. Malformed input is an `InvalidInput` error saying what is wrong.
    pub fn parse(url: &str) -> Result<StoreUrl> {
        let url = url.trim();
        if url.is_empty() {
            return Err(Error::invalid("empty store URL")
                .with_hint("use s3://bucket/prefix, file:///path, local://, memory:// or a path"));
        }
        let Some((scheme, _)) = url.split_once("://") else {
            return Ok(StoreUrl {
                location: Location::Local {
                    root: Some(PathBuf::from(url)),
                    prefix: String::new(),
                },
                options: Config::default(),
            });
        };
        // The url crate folds `..` and `.` away; refuse them before it can.
        let raw_path = url[scheme.len() + 3..]
            .split(['?', '#'])
            .next()
            .unwrap_or("");
        for seg in percent_decode(raw_path)?.split('/') {
            if seg == ".." || seg == "." {
                return Err(Error::invalid(format!("URL {url:?} has a `{seg}` segment"))
                    .with_hint("store URLs cannot climb out of their bucket or root"));
            }
        }
        let parsed = url::Url::parse(url).map_err(|e| {
            Error::invalid(format!("invalid URL {url:?}: {e}"))
                .with_hint("use s3://bucket/prefix, file:///path, local://, memory:// or a path")
        })?;
        let mut options = Config::default();
        for (k, v) in parsed.query_pairs() {
            options.set(&k, &v).map_err(|e| {
                Error::invalid(format!("URL option {k:?}: {}", e.message()))
                    .with_hint(e.hint().unwrap_or("").to_string())
            })?;
        }
        let path = percent_decode(parsed.path())?;
        let location = match scheme.to_ascii_lowercase().as_str() {
            "s3" | "s3a" => {
                let bucket = parsed.host_str().unwrap_or("").to_string();
                if bucket.is_empty() {
                    return Err(Error::invalid(format!("URL {url:?} has no bucket"))
                        .with_hint("write s3://BUCKET/optional/prefix"));
                }
                check_bucket(&bucket)?;
                Location::S3 {
                    bucket,
                    prefix: clean_prefix(&path)?,
                }
            }
            "file" => {
                if parsed
                    .host_str()
                    .is_some_and(|h| !h.is_empty() && h != "localhost")
                {
                    return Err(Error::invalid(format!("file URL {url:?} names a host"))
                        .with_hint("use file:///absolute/path (three slashes)"));
                }
                Location::Local {
                    root: Some(PathBuf::from(path)),
                    prefix: String::new(),
                }
            }
            "local" => {
                let host = percent_decode(parsed.host_str().unwrap_or(""))?;
                let joined = format!("{host}{path}");
                Location::Local {
                    root: None,
                    prefix: clean_prefix(&joined)?,
                }
            }
            "memory" | "mem" => Location::Memory,
            other => {
                return Err(
                    Error::invalid(format!("unsupported URL scheme {other:?} in {url:?}"))
                        .with_hint("use s3://, file://, local://, memory:// or a plain path"),
                )
            }
        };
        Ok(StoreUrl { location, options })
    }
}

fn percent_decode(p: &str) -> Result<String> {
    let bytes = p.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| Error::invalid("URL path is not UTF-8 after decoding"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_scheme() {
        let u = StoreUrl::parse(
            "s3://my-bucket/a/b/?endpoint=http://127.0.0.1:9000&path_style=true&region=eu-west-1",
        )
        .unwrap();
        assert_eq!(
            u.location,
            Location::S3 {
                bucket: "my-bucket".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(u.options.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(u.options.path_style, Some(true));
        assert_eq!(u.options.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            StoreUrl::parse("memory://").unwrap().location,
            Location::Memory
        );
        assert_eq!(
            StoreUrl::parse("file:///tmp/x").unwrap().location,
            Location::Local {
                root: Some("/tmp/x".into()),
                prefix: "".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("./rel/dir").unwrap().location,
            Location::Local {
                root: Some("./rel/dir".into()),
                prefix: "".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("local://reports/2026").unwrap().location,
            Location::Local {
                root: None,
                prefix: "reports/2026".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("local://über/x").unwrap().location,
            Location::Local {
                root: None,
                prefix: "über/x".into()
            }
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, needle) in [
            ("s3://", "no bucket"),
            ("s3://UPPER/x", "invalid bucket"),
            ("s3://bkt/a/../x", "`..`"),
            ("local://a/./b", "`.`"),
            ("s3://bkt/%2E%2E/x", "`..`"),
            ("gopher://x", "unsupported URL scheme"),
            ("s3://bkt?path_style=maybe", "true or false"),
            ("s3://bkt?endpoint=notaurl", "not a URL"),
            ("s3://bkt?bogus=1", "unknown option"),
            ("file://host/x", "names a host"),
        ] {
            let e = StoreUrl::parse(url).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
            assert!(e.to_string().contains(needle), "{url}: {e}");
        }
    }

    #[test]
    fn env_aliases_and_precedence() {
        let env = |k: &str| match k {
            "S3_ENDPOINT_URL" => Some("http://s3-alias:1".to_string()),
            "AWS_ENDPOINT_URL" => Some("http://aws:1".to_string()),
            "S3_REGION" => Some("r-s3".to_string()),
            "S3_SECRET_ACCESS_KEY" => Some("hunter2".to_string()),
            _ => None,
        };
        let c = Config::from_env_with(env).unwrap();
        assert_eq!(
            c.endpoint.as_deref(),
            Some("http://aws:1"),
            "AWS_* wins over S3_*"
        );
        assert_eq!(c.region.as_deref(), Some("r-s3"));
        let flags = Config::from_pairs([("region", "flag-region")]).unwrap();
        let merged = flags.or(c);
        assert_eq!(merged.region.as_deref(), Some("flag-region"));
        assert_eq!(merged.endpoint.as_deref(), Some("http://aws:1"));
        assert!(!format!("{merged:?}").contains("hunter2"));
    }

    #[test]
    fn config_file_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "region = \"x\"\ntimeout = \"5s\"\n").unwrap();
        let c = Config::from_file(&p).unwrap();
        assert_eq!(c.timeout, Some(Duration::from_secs(5)));
        std::fs::write(&p, "regoin = \"x\"\n").unwrap();
        let e = Config::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("regoin"), "{e}");
    }

    #[test]
    fn secrets_never_print() {
        let c = Config::from_pairs([("secret_access_key", "s3cr3t"), ("session_token", "t0k3n")])
            .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3t") && !dbg.contains("t0k3n"), "{dbg}");
        let e = Config::from_pairs([("secret_access_key", "s3cr3t"), ("max_retries", "s3cr3t")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_retries"));
    }
}
