//! Every HTTP request object_store sends, counted: object_store retries inside one store call,
//! so this is where S3 retries become visible (`cairn_http_requests_total` minus the store
//! calls of [`crate::layer::observe`]).
//!
//! `cairn_http_requests_total{method, status}`: status is the HTTP code, or `error` when no
//! response came (a reset, a timeout).

use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService,
    ReqwestConnector,
};

/// object_store's own reqwest connector, with a counting client.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingConnector;

impl HttpConnector for CountingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Counting(inner)))
    }
}

#[derive(Debug)]
struct Counting(HttpClient);

#[async_trait::async_trait]
impl HttpService for Counting {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let method = req.method().as_str().to_string();
        let r = self.0.execute(req).await;
        let status = match &r {
            Ok(resp) => resp.status().as_u16().to_string(),
            Err(_) => "error".to_string(),
        };
        metrics::counter!("cairn_http_requests_total", "method" => method, "status" => status)
            .increment(1);
        r
    }
}
