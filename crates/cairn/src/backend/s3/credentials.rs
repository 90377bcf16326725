//! Credentials for both S3 clients from one source: static keys from the config, or
//! aws-config's default chain (env, profile incl. SSO and credential_process, web identity,
//! ECS, IMDS) handed to object_store through its `CredentialProvider` trait.

use crate::config::Config;
use crate::error::{Error, Result};
use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use futures::future::{BoxFuture, FutureExt, Shared};
use object_store::aws::{AwsCredential, AwsCredentialProvider};
use object_store::StaticCredentialProvider;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Credentials refresh this long before they expire, so no request signs with a stale key.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// One credential source, shaped for each client.
#[derive(Clone)]
pub(crate) struct Credentials {
    /// For object_store (data plane).
    pub object_store: AwsCredentialProvider,
    /// For aws-sdk-s3 (administration).
    pub sdk: SharedCredentialsProvider,
    /// "static" or "chain", for Debug.
    pub source: &'static str,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({})", self.source)
    }
}

impl Credentials {
    /// Static keys when the config has them, else the default chain (built lazily: nothing
    /// is fetched until the first request).
    pub(crate) async fn resolve(config: &Config, region: &str) -> Result<Credentials> {
        match (&config.access_key_id, &config.secret_access_key) {
            (Some(id), Some(secret)) => {
                let token = config
                    .session_token
                    .as_ref()
                    .map(|t| t.expose().to_string());
                let os = AwsCredential {
                    key_id: id.clone(),
                    secret_key: secret.expose().to_string(),
                    token: token.clone(),
                };
                let sdk = aws_credential_types::Credentials::new(
                    id.clone(),
                    secret.expose(),
                    token,
                    None,
                    "cairn-static",
                );
                Ok(Credentials {
                    object_store: Arc::new(StaticCredentialProvider::new(os)),
                    sdk: SharedCredentialsProvider::new(sdk),
                    source: "static",
                })
            }
            (Some(_), None) => Err(Error::invalid(
                "access_key_id is set but secret_access_key is not",
            )
            .with_hint("set both, or neither to use the AWS credential chain")),
            (None, Some(_)) => Err(Error::invalid(
                "secret_access_key is set but access_key_id is not",
            )
            .with_hint("set both, or neither to use the AWS credential chain")),
            (None, None) => {
                let mut b =
                    aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                        .region(aws_config::Region::new(region.to_string()));
                if let Some(p) = &config.profile {
                    b = b.profile_name(p);
                }
                let chain = SharedCredentialsProvider::new(b.build().await);
                Ok(Credentials {
                    object_store: Arc::new(ChainProvider::new(chain.clone())),
                    sdk: chain,
                    source: "chain",
                })
            }
        }
    }
}

/// aws-config's chain as an object_store credential provider, cached until near expiry.
///
/// No caller ever holds a lock across an await. A fresh credential is read under a plain
/// mutex. A refresh runs in a task of its own, which every caller awaits through one shared
/// handle. A queued async lock would hand itself to a waiter that may never be polled again,
/// such as a listing page fetched ahead while its consumer waits for room in a channel, and
/// then every request of the process would wait on it (a futurelock: sync hung this way).
pub(crate) struct ChainProvider {
    inner: SharedCredentialsProvider,
    state: Arc<Mutex<CacheState>>,
}

/// What a refresh gives its waiters; the expiry goes into the cache, where only it is read.
type Fetched = std::result::Result<Arc<AwsCredential>, String>;

#[derive(Default)]
struct CacheState {
    cached: Option<(Arc<AwsCredential>, Option<SystemTime>)>,
    /// The refresh in flight, shared by everyone who found the cache stale.
    refresh: Option<Shared<BoxFuture<'static, Fetched>>>,
}

impl ChainProvider {
    pub(crate) fn new(inner: SharedCredentialsProvider) -> Self {
        ChainProvider {
            inner,
            state: Default::default(),
        }
    }

    /// The cached credential while fresh; else the refresh in flight, or a new one. The task
    /// stores what it fetched, so the cache is filled even if every caller waiting for it is
    /// dropped.
    fn cached_or_refresh(
        &self,
    ) -> std::result::Result<Arc<AwsCredential>, Shared<BoxFuture<'static, Fetched>>> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((c, exp)) = s.cached.as_ref() {
            if fresh(*exp) {
                return Ok(Arc::clone(c));
            }
        }
        if let Some(r) = &s.refresh {
            return Err(r.clone());
        }
        let (inner, state) = (self.inner.clone(), Arc::clone(&self.state));
        let task = tokio::spawn(async move {
            let fetched = inner
                .provide_credentials()
                .await
                .map_err(|e| format!("no AWS credentials: {}", error_chain(&e)));
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            s.refresh = None;
            let creds = fetched?;
            let c = Arc::new(AwsCredential {
                key_id: creds.access_key_id().to_string(),
                secret_key: creds.secret_access_key().to_string(),
                token: creds.session_token().map(str::to_string),
            });
            s.cached = Some((Arc::clone(&c), creds.expiry()));
            Ok(c)
        });
        let shared = async move {
            task.await
                .unwrap_or_else(|e| Err(format!("the credential refresh stopped: {e}")))
        }
        .boxed()
        .shared();
        s.refresh = Some(shared.clone());
        Err(shared)
    }
}

impl fmt::Debug for ChainProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainProvider(aws-config default chain)")
    }
}

fn fresh(expiry: Option<SystemTime>) -> bool {
    expiry.is_none_or(|e| e > SystemTime::now() + REFRESH_MARGIN)
}

#[async_trait]
impl object_store::CredentialProvider for ChainProvider {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        match self.cached_or_refresh() {
            Ok(c) => Ok(c),
            Err(pending) => pending
                .await
                .map_err(|e| object_store::Error::Unauthenticated {
                    path: String::new(),
                    source: e.into(),
                }),
        }
    }
}

/// A credential error's message with its causes (they name the providers tried).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::CredentialProvider;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    struct Counting(Arc<AtomicUsize>, Option<SystemTime>);

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            aws_credential_types::provider::future::ProvideCredentials::ready(Ok(
                aws_credential_types::Credentials::new(
                    format!("AK{n}"),
                    "sekrit",
                    None,
                    self.1,
                    "test",
                ),
            ))
        }
    }

    #[tokio::test]
    async fn chain_adapter_caches_until_expiry() {
        let calls = Arc::new(AtomicUsize::new(0));
        let long = Some(SystemTime::now() + Duration::from_secs(3600));
        let p = ChainProvider::new(SharedCredentialsProvider::new(Counting(
            calls.clone(),
            long,
        )));
        assert_eq!(p.get_credential().await.unwrap().key_id, "AK0");
        assert_eq!(p.get_credential().await.unwrap().key_id, "AK0");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "cached while fresh");

        let calls = Arc::new(AtomicUsize::new(0));
        let soon = Some(SystemTime::now() + Duration::from_secs(60));
        let p = ChainProvider::new(SharedCredentialsProvider::new(Counting(
            calls.clone(),
            soon,
        )));
        p.get_credential().await.unwrap();
        assert_eq!(
            p.get_credential().await.unwrap().key_id,
            "AK1",
            "refreshed near expiry"
        );
        assert!(!format!("{p:?}").contains("sekrit"));
    }

    /// Credentials that wait for the test to open a gate.
    #[derive(Debug)]
    struct Gated(Arc<tokio::sync::Semaphore>);

    impl ProvideCredentials for Gated {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let gate = self.0.clone();
            aws_credential_types::provider::future::ProvideCredentials::new(async move {
                let _open = gate.acquire().await.expect("gate");
                Ok(aws_credential_types::Credentials::new(
                    "AK", "sekrit", None, None, "test",
                ))
            })
        }
    }

    /// A caller that started or joined a refresh and is then never polled again (a listing
    /// page fetched ahead, its consumer busy elsewhere) must not stall everyone else. With a
    /// queued async lock held across the fetch, the last call here waited forever.
    #[tokio::test]
    async fn a_caller_that_is_never_polled_again_does_not_block_the_others() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let p = ChainProvider::new(SharedCredentialsProvider::new(Gated(gate.clone())));
        let mut first = Box::pin(p.get_credential());
        let mut second = Box::pin(p.get_credential());
        assert!(
            futures::poll!(&mut first).is_pending(),
            "the fetch waits on the gate"
        );
        assert!(futures::poll!(&mut second).is_pending());
        gate.add_permits(1);
        // `first` and `second` stay parked, unpolled, from here on.
        let third = tokio::time::timeout(Duration::from_secs(10), p.get_credential())
            .await
            .expect("a third caller is not blocked by the parked ones")
            .unwrap();
        assert_eq!(third.key_id, "AK");
        drop((first, second));
    }

    #[tokio::test]
    async fn half_static_keys_are_rejected() {
        let c = Config::from_pairs([("access_key_id", "AK")]).unwrap();
        let e = Credentials::resolve(&c, "us-east-1").await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
    }
}
