//! User metadata and content type ↔ object_store attributes (`x-amz-meta-*` headers).
//!
//! HTTP header values are ASCII, and servers trim their whitespace, so a value that would not
//! survive is sent as an RFC 2047 encoded word (`=?UTF-8?B?<base64>?=`), the form S3 itself
//! uses when it returns non-ASCII metadata. Reads decode it back.
//!
//! Some servers drop header names containing `_` (moto's WSGI server; nginx by default).
//! For them ([`Quirks::underscore_headers`](super::quirks::Quirks) false) a name outside
//! `[a-z0-9-]` travels as `cairn-name-<hex>`; reads decode that form from any server.

use crate::error::{Error, Result};
use crate::store::{Metadata, PutOptions};
use base64::Engine;
use object_store::{Attribute, AttributeValue, Attributes};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn looks_encoded(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    lower.starts_with("=?utf-8?") && v.ends_with("?=")
}

/// The header-safe form of a metadata value.
pub(crate) fn encode_value(v: &str) -> String {
    let plain = v.bytes().all(|b| (0x20..0x7f).contains(&b)) && v.trim() == v && !looks_encoded(v);
    if plain {
        v.to_string()
    } else {
        format!("=?UTF-8?B?{}?=", B64.encode(v.as_bytes()))
    }
}

/// The original value from its header form; anything not ours is returned as is.
pub(crate) fn decode_value(v: &str) -> String {
    let head = v.get(..10).unwrap_or("");
    if v.len() >= 12 && head.eq_ignore_ascii_case("=?utf-8?b?") && v.ends_with("?=") {
        if let Some(s) = B64
            .decode(&v[10..v.len() - 2])
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        {
            return s;
        }
    }
    v.to_string()
}

/// Marks a metadata name sent hex-encoded.
const NAME_PREFIX: &str = "cairn-name-";

fn encode_name(name: &str, underscore_headers: bool) -> String {
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if (plain || underscore_headers) && !name.starts_with(NAME_PREFIX) {
        name.to_string()
    } else {
        format!("{NAME_PREFIX}{}", hex::encode(name))
    }
}

fn decode_name(name: &str) -> String {
    name.strip_prefix(NAME_PREFIX)
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| name.to_string())
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(
            Error::invalid(format!("metadata name {name:?} cannot be sent to S3"))
                .with_hint("metadata names are lowercase ASCII letters, digits, `-`, `_` and `.`"),
        )
    }
}

/// Attributes for a put: content type, storage class and user metadata.
/// `underscore_headers`: the server keeps header names with `_` (else such names are encoded).
pub(crate) fn to_attributes(opts: &PutOptions, underscore_headers: bool) -> Result<Attributes> {
    let mut a = Attributes::new();
    if let Some(ct) = &opts.content_type {
        if !ct.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(Error::invalid(format!(
                "content type {ct:?} is not printable ASCII"
            )));
        }
        a.insert(Attribute::ContentType, AttributeValue::from(ct.clone()));
    }
    if let Some(sc) = &opts.storage_class {
        a.insert(Attribute::StorageClass, AttributeValue::from(sc.clone()));
    }
    for (k, v) in &opts.metadata {
        check_name(k)?;
        let name = encode_name(k, underscore_headers);
        a.insert(
            Attribute::Metadata(name.into()),
            AttributeValue::from(encode_value(v)),
        );
    }
    Ok(a)
}

/// Content type and user metadata from a get or head.
pub(crate) fn from_attributes(a: &Attributes) -> (Option<String>, Metadata) {
    let mut ct = None;
    let mut md = Metadata::new();
    for (k, v) in a {
        match k {
            Attribute::ContentType => ct = Some(v.to_string()),
            Attribute::Metadata(name) => {
                md.insert(decode_name(&name.to_ascii_lowercase()), decode_value(v));
            }
            _ => {}
        }
    }
    (ct, md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_roundtrip_through_headers() {
        for v in [
            "plain",
            "snapshot ünïcode",
            " padded ",
            "",
            "=?UTF-8?B?eA==?=",
            "tab\there",
            "日本",
        ] {
            let enc = encode_value(v);
            assert!(enc.bytes().all(|b| (0x20..0x7f).contains(&b)), "{enc}");
            assert_eq!(decode_value(&enc), v);
        }
        assert_eq!(encode_value("plain"), "plain", "ASCII stays readable");
    }

    #[test]
    fn bad_names_are_invalid_input() {
        let opts = PutOptions::default().meta("Upper", "x");
        assert_eq!(
            to_attributes(&opts, true).unwrap_err().kind(),
            crate::ErrorKind::InvalidInput
        );
        let opts = PutOptions::default().meta("has space", "x");
        assert!(to_attributes(&opts, true).is_err());
        assert!(to_attributes(&PutOptions::default().meta("agent_id", "a-1"), true).is_ok());
    }

    #[test]
    fn names_with_underscores_survive_servers_that_drop_them() {
        let opts = PutOptions::default()
            .meta("agent_id", "a-1")
            .meta("plain-name", "p");
        let a = to_attributes(&opts, false).unwrap();
        let names: Vec<String> = a
            .iter()
            .filter_map(|(k, _)| match k {
                Attribute::Metadata(n) => Some(n.to_string()),
                _ => None,
            })
            .collect();
        assert!(names.iter().all(|n| !n.contains('_')), "{names:?}");
        assert!(
            names.contains(&"plain-name".to_string()),
            "plain names stay readable"
        );
        let (_, md) = from_attributes(&a);
        assert_eq!(md, opts.metadata);
        // A user name that looks encoded is encoded too, so decoding stays unambiguous.
        assert_eq!(
            decode_name(&encode_name("cairn-name-6869", true)),
            "cairn-name-6869"
        );
    }
}
