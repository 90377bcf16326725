//! A seeded HTTP fault proxy on 127.0.0.1, in front of an S3 server (moto, Garage).
//!
//! Requests are forwarded unchanged, Host header included, so a client that signs for the
//! proxy's address keeps a valid SigV4 signature on servers that check it. A [`Plan`] picks a
//! fault per request from the seed and the request's sequence number: connection resets,
//! 500, 503 SlowDown and 503 ServiceUnavailable (with S3's XML error body), 429, stalls past
//! the client's timeout, object GET bodies cut short of their Content-Length, and object GET
//! bodies with a bit flipped. [`Plan::slowdown_above`] answers SlowDown whenever too many
//! requests are in flight, as S3 does under load. [`FaultProxy::counts`] says what was injected.
//!
//! This crate does not depend on cairn, so cairn's tests can use it.

#![deny(missing_docs)]

mod counts;
mod plan;
mod proxy;

pub use counts::Counts;
pub use plan::{Fault, Plan, Rule};
pub use proxy::FaultProxy;
