//! The one mapping from S3 failures to [`ErrorKind`].
//!
//! Both clients (object_store for data, aws-sdk-s3 for administration) reduce their errors
//! to a [`Failure`] (HTTP status, S3 error code, message, transport fault) and hand it to
//! [`classify`]. From object_store, the status comes from its typed variants (`NotFound`,
//! `Precondition`, `AlreadyExists`, `NotModified`, `PermissionDenied`, `Unauthenticated`,
//! `NotSupported`) and the transport fault from its public `HttpError` kind. Two things have
//! no typed route in object_store 0.14: the status of a `Generic` error (5xx, 429, 400, ...),
//! because its `RetryError` is not exported, and S3's own error code, which is the XML body
//! of the response. Those are read from the source chain's text, and only those.

use super::quirks::Quirks;
use crate::error::{Error, ErrorKind};
use std::fmt;

/// A failure below HTTP: the request got no usable response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// Connecting failed or the request could not be sent: the server did not see it.
    Connect,
    /// The connection broke after the request was sent: it may have been applied.
    Interrupted,
    /// The request or connect timed out.
    Timeout,
    /// The response could not be read or decoded.
    Other,
}

/// What the request was about, so a bare 404 can mean "no bucket" rather than "no key".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// An object request.
    Object,
    /// A bucket-level request (list, head bucket, admin).
    Bucket,
}

/// A failed S3 request, reduced to what the mapping needs.
#[derive(Debug, Default, Clone)]
pub(crate) struct Failure {
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub transport: Option<Transport>,
    /// The client already retried this failure until its retry budget ran out.
    pub retried: bool,
}

/// The kind, whether retrying may help, and a hint to show when the kind's default won't do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Classified {
    pub kind: ErrorKind,
    pub temporary: bool,
    pub hint: Option<&'static str>,
}

/// THE mapping: every S3 error of both clients goes through here.
pub(crate) fn classify(f: &Failure, scope: Scope, quirks: &Quirks) -> Classified {
    use ErrorKind::*;
    let c = |kind: ErrorKind, temporary: bool| Classified {
        kind,
        temporary,
        hint: None,
    };
    if let Some(code) = f.code.as_deref() {
        let by_code = match code {
            "NoSuchBucket" => Some(c(BucketNotFound, false)),
            "NoSuchKey" | "NoSuchVersion" | "NoSuchUpload" => Some(c(NotFound, false)),
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "InvalidToken"
            | "TokenRefreshRequired"
            | "MissingSecurityHeader"
            | "InvalidSecurity"
            | "AuthorizationHeaderMalformed" => Some(c(Unauthenticated, false)),
            "AccessDenied" | "AllAccessDisabled" | "AccountProblem" => {
                let msg = f.message.as_deref().unwrap_or("");
                if quirks
                    .unauthenticated_messages
                    .iter()
                    .any(|m| msg.contains(m))
                {
                    Some(c(Unauthenticated, false))
                } else {
                    Some(c(PermissionDenied, false))
                }
            }
            "PreconditionFailed" => Some(c(PreconditionFailed, false)),
            // S3 asks for a retry when two conditional writes race.
            "ConditionalRequestConflict" => Some(c(PreconditionFailed, true)),
            "SlowDown"
            | "TooManyRequests"
            | "RequestLimitExceeded"
            | "Throttling"
            | "ThrottlingException" => Some(c(RateLimited, true)),
            // Not a request to slow down: the service cannot answer (Garage without quorum).
            "ServiceUnavailable" => Some(c(Unavailable, true)),
            "RequestTimeout" => Some(c(Timeout, true)),
            "InternalError" => Some(c(Unexpected, true)),
            "NotImplemented" | "MethodNotAllowed" => Some(Classified {
                kind: Unsupported,
                temporary: false,
                hint: Some("this S3 server does not implement the operation"),
            }),
            "BucketAlreadyExists" | "BucketAlreadyOwnedByYou" => Some(c(AlreadyExists, false)),
            "BucketNotEmpty" => Some(Classified {
                kind: PreconditionFailed,
                temporary: false,
                hint: Some(
                    "the bucket still holds objects; empty it first (e.g. `cairn rb --force`)",
                ),
            }),
            "BadDigest" | "InvalidDigest" | "XAmzContentSHA256Mismatch" => Some(Classified {
                kind: Integrity,
                temporary: false,
                hint: Some(
                    "the server refused a body that changed on the way, so nothing was stored; \
                     retry, and if it repeats check proxies and the network",
                ),
            }),
            "PermanentRedirect" | "IllegalLocationConstraintException" => Some(Classified {
                kind: InvalidInput,
                temporary: false,
                hint: Some("the bucket is in another region; set `region`"),
            }),
            "InvalidRange" => Some(c(InvalidInput, false)),
            "InvalidBucketName" | "InvalidArgument" | "InvalidRequest" | "EntityTooLarge"
            | "EntityTooSmall" | "InvalidPart" | "InvalidPartOrder" | "KeyTooLongError"
            | "MalformedXML" | "MetadataTooLarge" => Some(c(InvalidInput, false)),
            _ => None,
        };
        if let Some(k) = by_code {
            return k;
        }
    }
    if let Some(status) = f.status {
        return match status {
            404 if scope == Scope::Bucket => c(BucketNotFound, false),
            404 => c(NotFound, false),
            401 => c(Unauthenticated, false),
            403 => c(PermissionDenied, false),
            412 | 304 => c(PreconditionFailed, false),
            409 => c(AlreadyExists, false),
            408 => c(Timeout, true),
            429 => c(RateLimited, true),
            // A 503 whose code is not SlowDown (or a HEAD's, which has no body), or a
            // gateway that found no upstream (502) or none in time (504).
            502..=504 => c(Unavailable, true),
            501 => c(Unsupported, false),
            500..=599 => c(Unexpected, true),
            301 | 307 => Classified {
                kind: InvalidInput,
                temporary: false,
                hint: Some(
                    "the bucket is in another region or behind another endpoint; set `region`",
                ),
            },
            400..=499 => c(InvalidInput, false),
            _ => c(Unexpected, false),
        };
    }
    match f.transport {
        Some(Transport::Connect | Transport::Interrupted) => c(Network, true),
        Some(Transport::Timeout) => c(Timeout, true),
        Some(Transport::Other) => c(Network, true),
        None => c(Unexpected, false),
    }
}

/// Reads `<Tag>value</Tag>` from an S3 error body (or text that embeds one).
pub(crate) fn xml_tag(text: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some(text[start..end].trim().to_string()).filter(|s| !s.is_empty())
}

/// The HTTP status in object_store's "non-2xx status code: 404 Not Found" text: the only
/// route to the status of a `Generic` error, since object_store keeps `RetryError` private.
fn status_in(text: &str) -> Option<u16> {
    let i = text.find("status code: ")? + "status code: ".len();
    text.get(i..i + 3)?.parse().ok()
}

/// The status object_store's typed variants stand for (it sets them from the response).
fn typed_status(e: &object_store::Error) -> Option<u16> {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => Some(404),
        E::Precondition { .. } => Some(412),
        E::NotModified { .. } => Some(304),
        E::AlreadyExists { .. } => Some(409),
        E::PermissionDenied { .. } => Some(403),
        E::Unauthenticated { .. } => Some(401),
        E::NotSupported { .. } | E::NotImplemented { .. } => Some(501),
        _ => None,
    }
}

/// Whether object_store's request loop retries a failure like this one (until its budget
/// runs out) before handing it over: server errors, 429 and 408 always; connection faults
/// always; timeouts and interrupted requests when it marks the request idempotent
/// (`client_idempotent`). A conditional put that timed out may have been applied, so
/// calling it spent is right for it too: nothing should repeat it blindly. A response that
/// could not be decoded is not retried there.
pub(crate) fn client_retries(
    status: Option<u16>,
    transport: Option<Transport>,
    client_idempotent: bool,
) -> bool {
    match (status, transport) {
        (Some(s), _) => s == 408 || s == 429 || (500..=599).contains(&s),
        (None, Some(Transport::Connect)) => true,
        (None, Some(Transport::Timeout | Transport::Interrupted)) => client_idempotent,
        (None, _) => false,
    }
}

/// Whether object_store repeats operation `op`'s request after a timeout or a broken reply.
/// It does for reads and overwriting puts, but sends a single-object DELETE (not a "safe"
/// method, and not marked idempotent) once; S3 deletes are idempotent (a missing key answers
/// 204), so cairn's retry layer repeats it instead of calling the budget spent.
fn client_idempotent(op: &str) -> bool {
    op != "delete"
}

impl Failure {
    /// Reduces an object_store error: its typed variant and transport fault, then what only
    /// the source chain's text holds (the status of a `Generic` error, the S3 error code).
    pub(crate) fn from_object_store(e: &object_store::Error) -> Failure {
        let mut f = Failure::default();
        let mut text = String::new();
        let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = src {
            if f.transport.is_none() {
                if let Some(h) = s.downcast_ref::<object_store::client::HttpError>() {
                    use object_store::client::HttpErrorKind as K;
                    f.transport = Some(match h.kind() {
                        K::Connect | K::Request => Transport::Connect,
                        K::Interrupted => Transport::Interrupted,
                        K::Timeout => Transport::Timeout,
                        _ => Transport::Other,
                    });
                }
            }
            text.push_str(&s.to_string());
            text.push('\n');
            src = s.source();
        }
        // S3's error code is the response body's `<Code>`; DeleteObjects per-key failures are
        // a private object_store type whose only trace is "... (code: AccessDenied)".
        f.code = xml_tag(&text, "Code").or_else(|| {
            let i = text.find("(code: ")? + "(code: ".len();
            let end = text[i..].find(')')? + i;
            Some(text[i..end].to_string())
        });
        f.message = xml_tag(&text, "Message");
        f.status = typed_status(e).or_else(|| status_in(&text));
        if f.status.is_some() {
            f.transport = None;
        }
        f.retried = client_retries(f.status, f.transport, true);
        f
    }

    /// The short message shown to users: the S3 code and message, else the fault.
    pub(crate) fn summary(&self) -> String {
        match (&self.code, &self.message) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.clone(),
            (None, Some(m)) => m.clone(),
            (None, None) => match (self.status, self.transport) {
                (Some(s), _) => format!("HTTP {s}"),
                (None, Some(Transport::Connect)) => "could not connect to the endpoint".into(),
                (None, Some(Transport::Interrupted)) => {
                    "the connection broke before the response".into()
                }
                (None, Some(Transport::Timeout)) => "the request timed out".into(),
                (None, Some(Transport::Other)) => "the response could not be read".into(),
                (None, None) => String::new(),
            },
        }
    }
}

/// Builds a cairn error from an object_store error, with the operation, store and key.
pub(crate) fn from_object_store(
    e: object_store::Error,
    op: &'static str,
    store: &dyn fmt::Display,
    key: Option<&str>,
    scope: Scope,
    quirks: &Quirks,
) -> Error {
    let err = describe(&e, op, store, key, scope, quirks);
    match Redacted::chain(&e) {
        Some(redacted) => err.with_source(redacted),
        None => err.with_source(e),
    }
}

/// Tags of an S3 error body that echo what the request carried: AWS answers a rejected session
/// token with the token (`Token-0`) and a signature mismatch with the canonical request, whose
/// headers hold the session token and any SSE-C key. object_store puts the whole body in its
/// error text, which the CLI prints as causes; these tags' contents never leave.
fn echo_tag(name: &str) -> bool {
    name.starts_with("Token-")
        || matches!(
            name,
            "CanonicalRequest"
                | "CanonicalRequestBytes"
                | "StringToSign"
                | "StringToSignBytes"
                | "SignatureProvided"
        )
}

/// `text` with the contents of every [`echo_tag`] element replaced, or None if it has none.
fn redact_echoes(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    let mut changed = false;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else { break };
        let name = &after[..close];
        let end_tag = format!("</{name}>");
        let body = &after[close + 1..];
        match body.find(&end_tag) {
            Some(end) if echo_tag(name) => {
                out.push_str(&rest[..open + 1 + close + 1]);
                out.push_str("[redacted]");
                out.push_str(&end_tag);
                rest = &body[end + end_tag.len()..];
                changed = true;
            }
            _ => {
                out.push_str(&rest[..open + 1]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// An error chain's text with [`redact_echoes`] applied at every level, standing in for an
/// object_store error whose response body echoed a credential.
#[derive(Debug)]
struct Redacted {
    text: String,
    source: Option<Box<Redacted>>,
}

impl Redacted {
    /// The redacted copy of `e`'s chain, or None when no level of it echoes anything.
    fn chain(e: &(dyn std::error::Error + 'static)) -> Option<Redacted> {
        let mut levels = Vec::new();
        let mut changed = false;
        let mut src = Some(e);
        while let Some(s) = src {
            let text = s.to_string();
            levels.push(match redact_echoes(&text) {
                Some(r) => {
                    changed = true;
                    r
                }
                None => text,
            });
            src = s.source();
        }
        if !changed {
            return None;
        }
        levels.into_iter().rev().fold(None, |source, text| {
            Some(Redacted {
                text,
                source: source.map(Box::new),
            })
        })
    }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Redacted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// Like [`from_object_store`] but borrowing the error (no source attached), for one
/// failure that applies to many keys.
pub(crate) fn describe(
    e: &object_store::Error,
    op: &'static str,
    store: &dyn fmt::Display,
    key: Option<&str>,
    scope: Scope,
    quirks: &Quirks,
) -> Error {
    use object_store::Error as E;
    let mut err = match e {
        // object_store's own refusal of a path it cannot express.
        E::InvalidPath { source } => {
            Error::invalid(format!("S3 key cannot be expressed: {source}"))
        }
        _ => {
            let mut f = Failure::from_object_store(e);
            f.retried = client_retries(f.status, f.transport, client_idempotent(op));
            let mut c = classify(&f, scope, quirks);
            // object_store already turned a failed create-only write into AlreadyExists and a
            // missing object under if-match into Precondition; its reading wins over the status.
            match e {
                E::AlreadyExists { .. } => c.kind = ErrorKind::AlreadyExists,
                E::Precondition { .. } if c.kind == ErrorKind::NotFound => {
                    c.kind = ErrorKind::PreconditionFailed
                }
                _ => {}
            }
            let mut err = Error::new(c.kind, f.summary()).set_temporary(c.temporary);
            // object_store's client retried it already: its budget is spent.
            if c.temporary && f.retried {
                err = err.set_persistent();
            }
            if let Some(h) = c.hint {
                err = err.with_hint(h);
            }
            err
        }
    };
    err = err.with_operation(op).with_store(store);
    if let Some(k) = key {
        err = err.with_key(k);
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_credentials_are_redacted_at_every_level() {
        let body = "<Error><Code>InvalidToken</Code><Message>bad</Message>\
                    <Token-0>TOKENMARK</Token-0><CanonicalRequest>GET\nx-amz-security-token:TOKENMARK\n\
                    </CanonicalRequest><RequestId>R</RequestId></Error>";
        assert_eq!(
            redact_echoes(body).unwrap(),
            "<Error><Code>InvalidToken</Code><Message>bad</Message>\
             <Token-0>[redacted]</Token-0><CanonicalRequest>[redacted]</CanonicalRequest>\
             <RequestId>R</RequestId></Error>"
        );
        assert_eq!(redact_echoes("<Code>NoSuchKey</Code> a < b"), None);
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "request failed: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other(format!("403: {body}")));
        let r = Redacted::chain(&e).unwrap();
        let inner = std::error::Error::source(&r).unwrap().to_string();
        assert!(r.to_string().ends_with(&inner), "{r}");
        assert!(!format!("{r} {r:?}").contains("TOKENMARK"), "{r:?}");
        assert!(Redacted::chain(&std::io::Error::other("<Code>X</Code>")).is_none());
    }

    fn q(name: &str) -> &'static Quirks {
        Quirks::for_provider(Some(name)).unwrap()
    }

    fn f(status: u16, code: &str, msg: &str) -> Failure {
        Failure {
            status: Some(status),
            code: Some(code.into()).filter(|c: &String| !c.is_empty()),
            message: Some(msg.into()),
            transport: None,
            retried: false,
        }
    }

    #[test]
    fn codes_and_statuses_map_to_kinds() {
        use ErrorKind::*;
        let aws = q("aws");
        let cases = [
            (f(404, "NoSuchKey", ""), Scope::Object, NotFound, false),
            (
                f(404, "NoSuchBucket", ""),
                Scope::Object,
                BucketNotFound,
                false,
            ),
            (f(404, "", ""), Scope::Bucket, BucketNotFound, false),
            (f(404, "", ""), Scope::Object, NotFound, false),
            (
                f(403, "InvalidAccessKeyId", ""),
                Scope::Object,
                Unauthenticated,
                false,
            ),
            (
                f(403, "SignatureDoesNotMatch", ""),
                Scope::Object,
                Unauthenticated,
                false,
            ),
            (
                f(403, "AccessDenied", "No such key: GK1"),
                Scope::Object,
                Unauthenticated,
                false,
            ),
            (f(403, "", ""), Scope::Object, PermissionDenied, false),
            (
                f(412, "PreconditionFailed", ""),
                Scope::Object,
                PreconditionFailed,
                false,
            ),
            (f(409, "", ""), Scope::Object, AlreadyExists, false),
            (f(503, "SlowDown", ""), Scope::Object, RateLimited, true),
            (f(429, "", ""), Scope::Object, RateLimited, true),
            (f(500, "InternalError", ""), Scope::Object, Unexpected, true),
            (f(502, "", ""), Scope::Object, Unavailable, true),
            (f(504, "", ""), Scope::Object, Unavailable, true),
            (f(503, "", ""), Scope::Object, Unavailable, true),
            // Garage with too few nodes for a quorum.
            (
                f(503, "ServiceUnavailable", "Could not reach quorum of 2"),
                Scope::Object,
                Unavailable,
                true,
            ),
            (
                f(503, "ServiceUnavailable", ""),
                Scope::Bucket,
                Unavailable,
                true,
            ),
            (
                f(503, "SlowDown", "Please reduce"),
                Scope::Bucket,
                RateLimited,
                true,
            ),
            (f(500, "", ""), Scope::Object, Unexpected, true),
            (f(400, "RequestTimeout", ""), Scope::Object, Timeout, true),
            (
                f(501, "NotImplemented", ""),
                Scope::Bucket,
                Unsupported,
                false,
            ),
            (f(400, "BadDigest", ""), Scope::Object, Integrity, false),
            (
                f(400, "InvalidArgument", ""),
                Scope::Object,
                InvalidInput,
                false,
            ),
        ];
        for (failure, scope, kind, temporary) in cases {
            let c = classify(&failure, scope, aws);
            assert_eq!((c.kind, c.temporary), (kind, temporary), "{failure:?}");
        }
        let connect = Failure {
            transport: Some(Transport::Connect),
            ..Default::default()
        };
        assert_eq!(classify(&connect, Scope::Object, aws).kind, Network);
        assert!(classify(&connect, Scope::Object, aws).temporary);
        let timeout = Failure {
            transport: Some(Transport::Timeout),
            ..Default::default()
        };
        assert_eq!(classify(&timeout, Scope::Object, aws).kind, Timeout);
    }

    #[test]
    fn garage_reports_bad_credentials_as_access_denied() {
        let g = q("garage");
        for msg in [
            "Forbidden: No such key: GK123",
            "Forbidden: Invalid signature",
        ] {
            assert_eq!(
                classify(&f(403, "AccessDenied", msg), Scope::Bucket, g).kind,
                ErrorKind::Unauthenticated
            );
        }
        let denied = f(
            403,
            "AccessDenied",
            "Operation is not allowed for this key.",
        );
        assert_eq!(
            classify(&denied, Scope::Bucket, g).kind,
            ErrorKind::PermissionDenied
        );
    }

    fn os(e: object_store::Error) -> Error {
        describe(&e, "get", &"s3://b", Some("k"), Scope::Object, q("aws"))
    }

    fn src(msg: &str) -> Box<dyn std::error::Error + Send + Sync> {
        msg.to_string().into()
    }

    #[test]
    fn typed_variants_decide_the_kind_whatever_the_text() {
        use object_store::Error as E;
        // Texts that would read as other statuses: the variant wins.
        let p = || "k".to_string();
        let cases = [
            (
                E::NotFound {
                    path: p(),
                    source: src("status code: 503"),
                },
                ErrorKind::NotFound,
            ),
            (
                E::Precondition {
                    path: p(),
                    source: src("status code: 500"),
                },
                ErrorKind::PreconditionFailed,
            ),
            (
                E::NotModified {
                    path: p(),
                    source: src(""),
                },
                ErrorKind::PreconditionFailed,
            ),
            (
                E::AlreadyExists {
                    path: p(),
                    source: src(""),
                },
                ErrorKind::AlreadyExists,
            ),
            (
                E::PermissionDenied {
                    path: p(),
                    source: src("status code: 404"),
                },
                ErrorKind::PermissionDenied,
            ),
            (
                E::Unauthenticated {
                    path: p(),
                    source: src(""),
                },
                ErrorKind::Unauthenticated,
            ),
            (E::NotSupported { source: src("") }, ErrorKind::Unsupported),
        ];
        for (e, kind) in cases {
            let err = os(e);
            assert_eq!(err.kind(), kind, "{err}");
            assert!(!err.is_temporary() && !err.is_persistent(), "{err}");
        }
    }

    #[test]
    fn a_server_error_from_the_retrying_client_is_persistent() {
        // What object_store hands over once its request loop gave up on a 503.
        let e = object_store::Error::Generic {
            store: "S3",
            source: src(
                "Error performing GET http://h/b/k in 1s, after 3 retries, max_retries: 3, \
                 retry_timeout: 30s  - Server returned non-2xx status code: 503 Service \
                 Unavailable: <Error><Code>SlowDown</Code><Message>Reduce your request rate\
                 </Message></Error>",
            ),
        };
        let err = os(e);
        assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
        assert!(err.is_persistent() && !err.is_temporary(), "{err}");
        // Garage without quorum: a 503 that is not SlowDown.
        let e = object_store::Error::Generic {
            store: "S3",
            source: src(
                "Error performing PUT http://h/b/k in 9s, after 10 retries, max_retries: 10, \
                 retry_timeout: 30s  - Server returned non-2xx status code: 503 Service \
                 Unavailable: <Error><Code>ServiceUnavailable</Code><Message>Could not reach \
                 quorum of 2. 1 of 3 request succeeded</Message></Error>",
            ),
        };
        let err = os(e);
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.is_persistent() && !err.is_temporary(), "{err}");
        assert!(err.to_string().contains("quorum"), "{err}");
        assert!(!err.to_string().contains("concurrency"), "{err}");
        // A reply that could not be decoded is not retried by object_store: still temporary.
        let f = Failure {
            transport: Some(Transport::Other),
            ..Default::default()
        };
        assert!(!f.retried && !client_retries(None, Some(Transport::Other), true));
        assert!(client_retries(None, Some(Transport::Connect), true));
        assert!(client_retries(Some(500), None, true) && !client_retries(Some(404), None, true));
        // A single DELETE that timed out or lost its reply was sent once: not spent.
        for t in [Transport::Timeout, Transport::Interrupted] {
            assert!(client_retries(None, Some(t), client_idempotent("get")));
            assert!(!client_retries(None, Some(t), client_idempotent("delete")));
        }
    }

    #[test]
    fn reads_status_and_code_from_text() {
        let text = "Error performing GET http://h/b?list-type=2 in 2ms - Server returned non-2xx \
                    status code: 404 Not Found: <?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code>\
                    <Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(status_in(text), Some(404));
        assert_eq!(xml_tag(text, "Code").as_deref(), Some("NoSuchBucket"));
        assert_eq!(
            xml_tag(text, "Message").as_deref(),
            Some("The specified bucket does not exist")
        );
        assert_eq!(xml_tag("no xml", "Code"), None);
    }
}
