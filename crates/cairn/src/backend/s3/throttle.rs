//! Backpressure for S3: every HTTP request object_store sends takes a slot of one
//! [`Aimd`] limit per store, and its answer moves the limit (503 SlowDown and 429 cut it,
//! other answers raise it).
//!
//! This sits at the HTTP layer because object_store retries inside one store call: a
//! SlowDown that its retry absorbs never reaches cairn's layers, and a retry is one more
//! request in flight. One limit here covers sync, `cp -r`, multipart parts and ranged reads
//! alike, however many tasks the transfer engine runs.

use crate::transfer::aimd::{Aimd, Permit};
use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse,
    HttpResponseBody, HttpService,
};
use std::sync::Arc;

/// Requests in flight per store before any throttling: high enough never to bind a transfer
/// (object concurrency × part concurrency), so nothing waits until a server pushes back.
pub(crate) const CEILING: usize = 1024;

/// Wraps `inner`'s clients so each request holds a slot of `limit` until its answer arrives
/// (no limit: `adaptive_concurrency=false`, requests pass as they come).
#[derive(Debug)]
pub(crate) struct ThrottleConnector<C> {
    pub inner: C,
    pub limit: Option<Arc<Aimd>>,
}

impl<C: HttpConnector> HttpConnector for ThrottleConnector<C> {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = self.inner.connect(options)?;
        Ok(match &self.limit {
            Some(limit) => HttpClient::new(Throttled {
                inner,
                limit: limit.clone(),
            }),
            None => inner,
        })
    }
}

#[derive(Debug)]
struct Throttled {
    inner: HttpClient,
    limit: Arc<Aimd>,
}

#[async_trait::async_trait]
impl HttpService for Throttled {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        // In a task of its own, so a slot comes back as soon as the answer does, whether or
        // not the caller is being polled: a listing page fetched ahead sits unpolled while its
        // consumer waits elsewhere, and with the limit cut low, the slot it held would stall
        // every other request (a futurelock). Dropping the caller still cancels the request.
        let (inner, limit) = (self.inner.clone(), Arc::clone(&self.limit));
        let task = tokio::spawn(async move {
            let permit = limit.acquire().await;
            let resp = inner.execute(req).await?;
            judge(permit, resp).await
        });
        let mut task = CancelOnDrop(task);
        match (&mut task.0).await {
            Ok(r) => r,
            Err(e) => Err(HttpError::new(
                object_store::client::HttpErrorKind::Unknown,
                e,
            )),
        }
    }
}

/// Aborts the request's task when its caller goes away.
struct CancelOnDrop(tokio::task::JoinHandle<Result<HttpResponse, HttpError>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// S3's codes for "slow down", as `backend/s3/error.rs` maps them to `RateLimited`.
const THROTTLE_CODES: [&str; 5] = [
    "SlowDown",
    "TooManyRequests",
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
];

/// Ends `permit` by what `resp` says: 429, and 503 whose S3 code asks to slow down, are
/// throttles. So is a 503 with no body (a HEAD's): it may be SlowDown, and slowing down is the
/// safe guess. 503 ServiceUnavailable is a server that cannot serve, not one that asks for
/// less, so it moves nothing, nor do other 5xx and broken connections.
async fn judge(permit: Permit, resp: HttpResponse) -> Result<HttpResponse, HttpError> {
    match resp.status().as_u16() {
        429 => permit.throttled(),
        503 => {
            // An error body is a few hundred bytes; read it here and hand the same bytes on.
            let (parts, body) = resp.into_parts();
            let bytes = body.bytes().await?;
            if bytes.is_empty() || throttle_code(&bytes) {
                permit.throttled();
            } else {
                drop(permit);
            }
            return Ok(HttpResponse::from_parts(
                parts,
                HttpResponseBody::from(bytes),
            ));
        }
        500..=599 => drop(permit),
        _ => permit.success(),
    }
    Ok(resp)
}

/// Whether an S3 error body's `<Code>` is a throttle. A substring test, as object_store's own
/// retry does for SlowDown: the element is flat text and an XML parser adds nothing here.
fn throttle_code(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    THROTTLE_CODES
        .iter()
        .any(|c| text.contains(&format!("<Code>{c}</Code>")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> HttpResponse {
        let mut r = HttpResponse::new(HttpResponseBody::from(body.to_string()));
        *r.status_mut() = status.try_into().unwrap();
        r
    }

    /// Answers every request with 200 once the test opens its gate.
    #[derive(Debug)]
    struct Gated(Arc<tokio::sync::Semaphore>);

    #[async_trait::async_trait]
    impl HttpService for Gated {
        async fn call(&self, _req: HttpRequest) -> Result<HttpResponse, HttpError> {
            self.0.acquire().await.expect("gate").forget();
            Ok(response(200, ""))
        }
    }

    fn request() -> HttpRequest {
        let mut r = HttpRequest::new(object_store::client::HttpRequestBody::empty());
        *r.uri_mut() = "http://127.0.0.1/bucket/key".parse().unwrap();
        r
    }

    /// A request whose caller is never polled again after sending it (a listing page
    /// fetched ahead) gives its slot back when its answer arrives: with a limit of one, the
    /// next request would otherwise wait forever.
    #[tokio::test]
    async fn a_parked_callers_slot_comes_back_when_its_answer_does() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let limit = Aimd::new(1, 1);
        let client = Throttled {
            inner: HttpClient::new(Gated(gate.clone())),
            limit: limit.clone(),
        };
        let mut parked = Box::pin(client.call(request()));
        assert!(futures::poll!(&mut parked).is_pending());
        gate.add_permits(2);
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), client.call(request()))
            .await
            .expect("the slot came back")
            .unwrap();
        assert_eq!(next.status().as_u16(), 200);
        // Dropping a caller cancels its request and frees its slot too.
        let mut cancelled = Box::pin(client.call(request()));
        assert!(futures::poll!(&mut cancelled).is_pending());
        drop(cancelled);
        drop(parked);
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while limit.in_flight() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("every slot is free");
    }

    #[tokio::test]
    async fn slowdown_and_429_cut_the_limit_unavailable_does_not() {
        let err = |code: &str| format!("<Error><Code>{code}</Code><Message>m</Message></Error>");
        for (status, body, cut) in [
            (503, err("SlowDown"), true),
            (503, String::new(), true),
            (429, String::new(), true),
            (503, err("ServiceUnavailable"), false),
            (500, err("InternalError"), false),
            (404, err("NoSuchKey"), false),
            (200, String::new(), false),
        ] {
            let limit = Aimd::new(1, 100);
            let held: Vec<_> = (0..9).map(|_| limit.try_acquire().unwrap()).collect();
            let permit = limit.try_acquire().unwrap();
            let r = judge(permit, response(status, &body)).await.unwrap();
            assert_eq!(r.status().as_u16(), status);
            // The body is handed on whole.
            assert_eq!(r.into_body().bytes().await.unwrap(), body.as_bytes());
            assert_eq!(limit.limit(), if cut { 7 } else { 100 }, "{status} {body}");
            drop(held);
        }
    }
}
