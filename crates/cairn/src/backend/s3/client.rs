//! One [`Config`] → resolved S3 settings → both clients (object_store's `AmazonS3` for data,
//! aws-sdk-s3 for administration), so the two can never disagree on endpoint, region,
//! addressing, credentials, timeouts or retries.

use super::credentials::Credentials;
use super::quirks::Quirks;
use crate::config::{Config, Secret};
use crate::error::{Error, Result};
use crate::layer::retry::RetryPolicy;
use crate::transfer::aimd::Aimd;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::{ClientOptions, RetryConfig};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Server-side encryption requested for writes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Sse {
    None,
    Aes256,
    Kms(Option<String>),
    Customer(Secret),
}

impl fmt::Debug for Sse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sse::None => f.write_str("none"),
            Sse::Aes256 => f.write_str("AES256"),
            Sse::Kms(k) => write!(f, "aws:kms({k:?})"),
            Sse::Customer(_) => f.write_str("sse-c(***)"),
        }
    }
}

/// How upload bodies are protected on the wire (config `payload_signing`).
///
/// A SigV4-signed payload costs one SHA-256 pass per byte on the client (and one on the
/// server), on top of the checksum layer's own whole-object SHA-256. Over TLS or loopback no
/// one can tamper with the body unseen, so `auto` drops the signature there and keeps a
/// server-checked CRC64-NVME per request against accidental corruption: the same trade the
/// AWS SDKs and botocore make over HTTPS, at a fraction of the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Payload {
    /// SigV4 hashes every body; where the server checks it, `x-amz-checksum-sha256` reuses
    /// that hash.
    Signed,
    /// `UNSIGNED-PAYLOAD`, and the server checks `x-amz-checksum-crc64nvme`.
    UnsignedCrc64,
    /// `UNSIGNED-PAYLOAD` and no server-side check (`never` on a provider without CRC64-NVME):
    /// only TCP's checksum, TLS if any, and cairn's SHA-256 on every read guard the bytes.
    Unsigned,
}

impl Payload {
    fn resolve(mode: Option<&str>, quirks: &Quirks, endpoint: Option<&str>) -> Result<Payload> {
        let crc = quirks.server_crc64nvme;
        Ok(match mode.map(str::to_ascii_lowercase).as_deref() {
            None | Some("auto") if crc && private_wire(endpoint) => Payload::UnsignedCrc64,
            None | Some("auto") | Some("always") => Payload::Signed,
            Some("never") if crc => Payload::UnsignedCrc64,
            Some("never") => Payload::Unsigned,
            Some(other) => {
                return Err(Error::invalid(format!(
                    "payload_signing must be auto, always or never, not {other:?}"
                )))
            }
        })
    }
}

/// Whether a request body to `endpoint` can only be changed by the endpoint itself: TLS
/// protects it (AWS's default endpoint is https), or it never leaves this machine.
fn private_wire(endpoint: Option<&str>) -> bool {
    let Some(e) = endpoint else { return true };
    let Ok(url) = url::Url::parse(e) else {
        return false;
    };
    url.scheme() == "https" || loopback(&url)
}

/// Whether `url`'s host is this machine: 127.0.0.0/8, ::1 or `localhost`.
fn loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether plain http may be used for `endpoint`: TLS is the default for every host but this
/// machine, and plain http to another host needs an explicit `allow_http=true`.
pub(crate) fn check_tls(endpoint: Option<&str>, allow_http: Option<bool>) -> Result<bool> {
    let Some(e) = endpoint.filter(|e| e.starts_with("http://")) else {
        return Ok(allow_http.unwrap_or(false));
    };
    let local = url::Url::parse(e).is_ok_and(|u| loopback(&u));
    match allow_http {
        Some(true) => Ok(true),
        None if local => Ok(true),
        Some(false) => Err(Error::invalid(format!(
            "endpoint {e} is plain http but allow_http is false"
        ))
        .with_hint("use an https:// endpoint or set allow_http=true")),
        None => Err(Error::invalid(format!(
            "endpoint {e} is plain http to a host other than this machine: requests and \
             data would cross the network unencrypted"
        ))
        .with_hint(
            "use an https:// endpoint, or set allow_http=true (URL option `?allow_http=true`, \
             `-o allow_http=true`, Python `allow_http=True`) to accept plain http",
        )),
    }
}

/// Everything the S3 clients need, resolved from a [`Config`]. Holds no secret in Debug.
#[derive(Clone)]
pub(crate) struct Settings {
    pub bucket: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub path_style: bool,
    pub allow_http: bool,
    pub quirks: &'static Quirks,
    pub pool_size: Option<usize>,
    pub connect_timeout: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retry: RetryPolicy,
    /// Follow the server's throttling with an AIMD limit on requests in flight.
    pub adaptive: bool,
    pub sse: Sse,
    pub payload: Payload,
    pub credentials: Credentials,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("provider", &self.quirks.name)
            .field("sse", &self.sse)
            .field("payload", &self.payload)
            .field("credentials", &self.credentials)
            .finish()
    }
}

/// The region when the config names none: AWS_REGION / AWS_DEFAULT_REGION, then the profile,
/// then us-east-1. Instance metadata is not asked: it stalls off EC2 and endpoints rarely care.
async fn default_region(profile: Option<&str>) -> String {
    use aws_config::meta::region::RegionProviderChain;
    let mut prof = aws_config::profile::ProfileFileRegionProvider::builder();
    if let Some(p) = profile {
        prof = prof.profile_name(p);
    }
    let chain = RegionProviderChain::first_try(
        aws_config::environment::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(prof.build());
    chain
        .region()
        .await
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".to_string())
}

fn parse_sse(config: &Config) -> Result<Sse> {
    let kind = config.sse.as_deref().map(str::to_ascii_lowercase);
    let sse = match kind.as_deref() {
        None | Some("none") => Sse::None,
        Some("aes256") => Sse::Aes256,
        Some("aws:kms") => Sse::Kms(config.sse_kms_key_id.clone()),
        Some("sse-c") => {
            let key = config.sse_customer_key.clone().ok_or_else(|| {
                Error::invalid("sse = \"sse-c\" needs sse_customer_key")
                    .with_hint("a base64-encoded 256-bit key, e.g. from `openssl rand -base64 32`")
            })?;
            use base64::Engine;
            let raw = base64::engine::general_purpose::STANDARD.decode(key.expose().trim());
            if raw.map(|r| r.len()) != Ok(32) {
                // Never echo the key itself.
                return Err(
                    Error::invalid("sse_customer_key is not a base64-encoded 256-bit key")
                        .with_hint("generate one with `openssl rand -base64 32`"),
                );
            }
            Sse::Customer(key)
        }
        Some(other) => {
            return Err(Error::invalid(format!(
                "sse must be aes256, aws:kms, sse-c or none, not {other:?}"
            )))
        }
    };
    if config.sse_kms_key_id.is_some() && !matches!(sse, Sse::Kms(_)) {
        return Err(Error::invalid(
            "sse_kms_key_id is set but sse is not \"aws:kms\"",
        ));
    }
    if config.sse_customer_key.is_some() && !matches!(sse, Sse::Customer(_)) {
        return Err(Error::invalid(
            "sse_customer_key is set but sse is not \"sse-c\"",
        ));
    }
    Ok(sse)
}

impl Settings {
    /// Resolves `config` for `bucket`: defaults, provider quirks, region chain, credentials.
    pub(crate) async fn resolve(bucket: &str, config: &Config) -> Result<Settings> {
        let endpoint = config
            .endpoint
            .as_ref()
            .map(|e| e.trim_end_matches('/').to_string());
        let quirks = Quirks::resolve(config.provider.as_deref(), endpoint.as_deref())?;
        let allow_http = check_tls(endpoint.as_deref(), config.allow_http)?;
        let region = match &config.region {
            Some(r) => r.clone(),
            None => default_region(config.profile.as_deref()).await,
        };
        // Virtual-host style needs DNS for bucket.endpoint; a custom endpoint rarely has it.
        let path_style = config
            .path_style
            .unwrap_or(quirks.path_style || endpoint.is_some());
        let payload = Payload::resolve(
            config.payload_signing.as_deref(),
            quirks,
            endpoint.as_deref(),
        )?;
        let credentials = Credentials::resolve(config, &region).await?;
        Ok(Settings {
            bucket: bucket.to_string(),
            endpoint,
            region,
            path_style,
            allow_http,
            quirks,
            pool_size: config.pool_size,
            connect_timeout: config.connect_timeout,
            timeout: config.timeout,
            retry: RetryPolicy::from_config(config),
            adaptive: config.adaptive_concurrency.unwrap_or(true),
            sse: parse_sse(config)?,
            payload,
            credentials,
        })
    }

    fn client_options(&self) -> ClientOptions {
        let mut o = ClientOptions::new().with_allow_http(self.allow_http);
        if let Some(n) = self.pool_size {
            o = o.with_pool_max_idle_per_host(n);
        }
        if let Some(t) = self.connect_timeout {
            o = o.with_connect_timeout(t);
        }
        if let Some(t) = self.timeout {
            o = o.with_timeout(t);
        }
        o
    }

    fn retry_config(&self) -> RetryConfig {
        self.retry.object_store_config()
    }

    /// The data-plane client.
    pub(crate) fn object_store(&self) -> Result<AmazonS3> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_credentials(self.credentials.object_store.clone())
            .with_virtual_hosted_style_request(!self.path_style)
            .with_allow_http(self.allow_http)
            .with_client_options(self.client_options())
            .with_retry(self.retry_config())
            .with_http_connector(super::throttle::ThrottleConnector {
                inner: super::http_metrics::CountingConnector,
                limit: self
                    .adaptive
                    .then(|| Aimd::new(1, super::throttle::CEILING)),
            })
            .with_conditional_put(S3ConditionalPut::ETagMatch);
        if let super::quirks::CopyIfNotExists::Header(h) = self.quirks.copy_if_not_exists {
            b = b.with_copy_if_not_exists(object_store::aws::S3CopyIfNotExists::Header(
                h.to_string(),
                "*".to_string(),
            ));
        }
        if let Some(e) = &self.endpoint {
            b = b.with_endpoint(e);
        }
        // Wherever the server can check a body, give it something to check: a body corrupted in
        // transit is then refused instead of stored.
        use object_store::aws::Checksum;
        b = match self.payload {
            Payload::Signed if self.quirks.server_checksum => {
                b.with_checksum_algorithm(Checksum::SHA256)
            }
            Payload::Signed => b,
            Payload::UnsignedCrc64 => b
                .with_unsigned_payload(true)
                .with_checksum_algorithm(Checksum::CRC64NVME),
            Payload::Unsigned => b.with_unsigned_payload(true),
        };
        b = match &self.sse {
            Sse::None => b,
            Sse::Aes256 => b.with_config(
                AmazonS3ConfigKey::from_str("aws_server_side_encryption").expect("known key"),
                "AES256",
            ),
            Sse::Kms(Some(k)) => b.with_sse_kms_encryption(k),
            Sse::Kms(None) => b.with_config(
                AmazonS3ConfigKey::from_str("aws_server_side_encryption").expect("known key"),
                "aws:kms",
            ),
            Sse::Customer(k) => b.with_ssec_encryption(k.expose()),
        };
        b.build().map_err(|e| {
            // Builder errors name config values, never credentials (those came in as a provider).
            Error::invalid(format!("S3 configuration: {e}"))
                .with_store(format!("s3://{}", self.bucket))
        })
    }

    /// The administration client. Checksums only when an operation requires them: Garage
    /// rejects aws-sdk-s3's default streaming trailer checksums.
    pub(crate) fn sdk(&self) -> aws_sdk_s3::Client {
        use aws_sdk_s3::config::{
            retry::RetryConfig as SdkRetry, timeout::TimeoutConfig, BehaviorVersion, Region,
            RequestChecksumCalculation, ResponseChecksumValidation,
        };
        let mut timeouts = TimeoutConfig::builder();
        if let Some(t) = self.connect_timeout {
            timeouts = timeouts.connect_timeout(t);
        }
        if let Some(t) = self.timeout {
            timeouts = timeouts.operation_attempt_timeout(t);
        }
        // The SDK's retries have no time budget of their own: the retry budget, one more
        // wait (as object_store may overrun it) and one attempt bound them.
        timeouts = timeouts.operation_timeout(
            self.retry.budget
                + self.retry.max_delay
                + self.timeout.unwrap_or(Duration::from_secs(60)),
        );
        let retry = SdkRetry::standard()
            .with_max_attempts(self.retry.max_attempts.max(1))
            .with_initial_backoff(self.retry.base)
            .with_max_backoff(self.retry.max_delay);
        let mut b = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .credentials_provider(self.credentials.sdk.clone())
            .force_path_style(self.path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .retry_config(retry)
            .timeout_config(timeouts.build());
        if let Some(e) = &self.endpoint {
            b = b.endpoint_url(e);
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(mode: Option<&str>, provider: &str, endpoint: Option<&str>) -> Payload {
        Payload::resolve(
            mode,
            Quirks::for_provider(Some(provider)).unwrap(),
            endpoint,
        )
        .unwrap()
    }

    #[test]
    fn auto_signs_payloads_only_where_the_wire_is_open() {
        use Payload::*;
        // TLS or loopback, and a server that checks CRC64-NVME: one CRC pass instead of a SHA-256.
        assert_eq!(payload(None, "aws", None), UnsignedCrc64);
        assert_eq!(
            payload(None, "aws", Some("https://s3.example.com")),
            UnsignedCrc64
        );
        assert_eq!(
            payload(Some("auto"), "garage", Some("http://127.0.0.1:3900")),
            UnsignedCrc64
        );
        assert_eq!(
            payload(None, "garage", Some("http://localhost:3900")),
            UnsignedCrc64
        );
        assert_eq!(
            payload(None, "aws", Some("http://[::1]:9000")),
            UnsignedCrc64
        );
        // Plain http across a network: signed.
        assert_eq!(
            payload(None, "garage", Some("http://10.0.0.5:3900")),
            Signed
        );
        assert_eq!(
            payload(None, "aws", Some("http://storage.lan:9000")),
            Signed
        );
        // A server that checks no CRC64-NVME keeps the signature even over TLS.
        assert_eq!(
            payload(None, "r2", Some("https://x.r2.cloudflarestorage.com")),
            Signed
        );
        assert_eq!(payload(None, "moto", Some("http://127.0.0.1:5000")), Signed);
        // Explicit choices win.
        assert_eq!(payload(Some("always"), "aws", None), Signed);
        assert_eq!(
            payload(Some("never"), "garage", Some("http://10.0.0.5:3900")),
            UnsignedCrc64
        );
        assert_eq!(
            payload(Some("never"), "moto", Some("http://127.0.0.1:5000")),
            Unsigned
        );
    }

    #[test]
    fn plain_http_is_refused_off_this_machine_unless_allowed() {
        // This machine: http without the flag (the test servers).
        for e in [
            "http://127.0.0.1:3900",
            "http://127.8.9.10:1",
            "http://localhost:9000",
            "http://LOCALHOST",
            "http://[::1]:9000",
        ] {
            assert!(check_tls(Some(e), None).unwrap(), "{e}");
            assert!(check_tls(Some(e), Some(true)).unwrap(), "{e}");
            let err = check_tls(Some(e), Some(false)).unwrap_err();
            assert!(err.to_string().contains("allow_http is false"), "{err}");
        }
        // Another host: refused unless allow_http=true, and the error says what to do.
        for e in [
            "http://10.0.0.5:3900",
            "http://storage.lan:9000",
            "http://128.0.0.1",
            "http://[::2]:9000",
            "http://localhost.evil.com",
            "http://s3.amazonaws.com",
        ] {
            let err = check_tls(Some(e), None).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{e}");
            let msg = err.to_string();
            assert!(msg.contains(e) && msg.contains("unencrypted"), "{msg}");
            assert!(msg.contains("set allow_http=true"), "{msg}");
            assert!(check_tls(Some(e), Some(false)).is_err(), "{e}");
            assert!(check_tls(Some(e), Some(true)).unwrap(), "{e}");
        }
        // TLS and AWS's own (https) endpoint need no flag; object_store gets http off.
        assert!(!check_tls(Some("https://10.0.0.5"), None).unwrap());
        assert!(!check_tls(None, None).unwrap());
    }

    #[tokio::test]
    async fn settings_refuse_http_from_the_url_and_from_the_environment() {
        let url =
            Config::from_pairs([("endpoint", "http://10.1.2.3:9000"), ("region", "x")]).unwrap();
        let env = Config::from_env_with(|k| {
            (k == "AWS_ENDPOINT_URL").then(|| "http://storage.lan:9000".to_string())
        })
        .unwrap();
        for c in [url, env] {
            let mut c = c;
            c.region = Some("x".into());
            let Err(e) = Settings::resolve("b", &c).await else {
                panic!("plain http to another host was accepted");
            };
            assert!(e.to_string().contains("unencrypted"), "{e}");
            c.allow_http = Some(true);
            c.access_key_id = Some("AKIDTEST".into());
            c.secret_access_key = Some(crate::config::Secret::new("s"));
            assert!(Settings::resolve("b", &c).await.unwrap().allow_http);
        }
    }

    #[test]
    fn a_bad_payload_signing_value_names_the_choices() {
        let q = Quirks::for_provider(None).unwrap();
        let e = Payload::resolve(Some("sometimes"), q, None).unwrap_err();
        assert!(e.to_string().contains("auto, always or never"), "{e}");
        let e = Config::from_pairs([("payload_signing", "sometimes")]).unwrap_err();
        assert!(e.to_string().contains("auto, always or never"), "{e}");
    }
}
