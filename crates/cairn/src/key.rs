//! Validated object keys.
//!
//! A [`Key`] is relative, UTF-8, at most 1024 bytes, with no empty, `.` or `..` segments and no
//! control characters. Every store can express such a key, and a local store can never be led
//! outside its root by one.

use crate::error::{Error, Result};
use std::fmt;

/// The longest key S3 accepts, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// A validated object key such as `reports/2026/11/run.json`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(String);

impl Key {
    /// Validates `key`, explaining what is wrong when it is not a valid key.
    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        validate(&key).map_err(|why| {
            Error::invalid(format!("invalid key {:?}: {why}", truncate(&key))).with_hint(
                "keys are relative paths like `dir/file.txt` without `.`/`..` or empty segments",
            )
        })?;
        Ok(Key(key))
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The part before the last `/`, or "" at the top level.
    pub fn parent(&self) -> &str {
        self.0.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
    }

    /// Appends a relative path (itself validated) to this key.
    pub fn join(&self, rest: &str) -> Result<Key> {
        Key::new(format!("{}/{}", self.0, rest))
    }

    /// The key without `prefix` (a directory-style prefix, with or without trailing `/`).
    pub fn strip_prefix(&self, prefix: &str) -> Option<&str> {
        if prefix.is_empty() {
            return Some(&self.0);
        }
        let rest = self.0.strip_prefix(prefix)?;
        if prefix.ends_with('/') {
            Some(rest)
        } else {
            rest.strip_prefix('/')
        }
    }

    /// Builds a key without validation, for range bounds and trusted internal strings.
    pub(crate) fn unchecked(s: impl Into<String>) -> Key {
        Key(s.into())
    }

    /// Consumes the key into its string.
    pub fn into_string(self) -> String {
        self.0
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= 80 {
        return s.to_string();
    }
    let mut end = 80;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Why `name` cannot be a key, None if it can: the reason a listing gives for an entry it
/// cannot name.
pub(crate) fn why_invalid(name: &str) -> Option<String> {
    validate(name).err()
}

fn validate(key: &str) -> std::result::Result<(), String> {
    if key.is_empty() {
        return Err("it is empty".into());
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!(
            "it is {} bytes; the limit is {MAX_KEY_LEN}",
            key.len()
        ));
    }
    if key.starts_with('/') {
        return Err("it is absolute (starts with `/`)".into());
    }
    if let Some(c) = key.chars().find(|c| c.is_control()) {
        return Err(format!("it contains the control character {c:?}"));
    }
    if key.contains('\\') {
        return Err("it contains `\\`; use `/` to separate segments".into());
    }
    for seg in key.split('/') {
        match seg {
            "" => return Err("it has an empty segment (`//` or a trailing `/`)".into()),
            "." | ".." => return Err(format!("it has a `{seg}` segment")),
            _ => {}
        }
    }
    Ok(())
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:?})", self.0)
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Key {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self> {
        Key::new(s)
    }
}

impl TryFrom<String> for Key {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Key::new(s)
    }
}

impl std::str::FromStr for Key {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Key::new(s)
    }
}

/// Validates a listing prefix: "" or a key-like string that may end in `/` or a partial segment.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if trimmed.is_empty() {
        return Err(Error::invalid(
            "invalid prefix \"/\": prefixes are relative",
        ));
    }
    Key::new(trimmed).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_and_unicode_keys() {
        for k in [
            "a",
            "a/b/c.txt",
            "über/ファイル 1.txt",
            "a b/+=,;@!$&'()",
            "..a/b..",
            ".hidden",
        ] {
            assert!(Key::new(k).is_ok(), "{k}");
        }
    }

    #[test]
    fn rejects_escaping_and_malformed_keys() {
        for k in [
            "", "/abs", "a//b", "a/", "..", "../x", "a/../b", "./a", "a/.", "a\nb", "a\\b", "x\0",
        ] {
            let e = Key::new(k).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{k}");
        }
        assert!(Key::new("a".repeat(1025)).is_err());
        assert!(Key::new("a".repeat(1024)).is_ok());
    }

    #[test]
    fn error_says_what_and_why() {
        let msg = Key::new("a/../b").unwrap_err().to_string();
        assert!(msg.contains("`..` segment"), "{msg}");
        assert!(msg.contains("hint"), "{msg}");
    }

    #[test]
    fn strip_prefix_is_segment_aware() {
        let k = Key::new("a/b/c").unwrap();
        assert_eq!(k.strip_prefix("a"), Some("b/c"));
        assert_eq!(k.strip_prefix("a/"), Some("b/c"));
        assert_eq!(k.strip_prefix(""), Some("a/b/c"));
        assert_eq!(Key::new("ab/c").unwrap().strip_prefix("a"), None);
    }

    proptest! {
        #[test]
        fn valid_keys_never_escape(s in "\\PC{0,40}") {
            if let Ok(k) = Key::new(s.clone()) {
                prop_assert!(!k.as_str().starts_with('/'));
                prop_assert!(k.as_str().split('/').all(|seg| !seg.is_empty() && seg != "." && seg != ".."));
                let p = std::path::Path::new("/root").join(k.as_str());
                prop_assert!(p.starts_with("/root"));
                prop_assert!(p.components().all(|c| !matches!(c, std::path::Component::ParentDir)));
            }
        }

        #[test]
        fn segments_roundtrip(segs in proptest::collection::vec("[a-zA-Z0-9_ü-]{1,8}", 1..6)) {
            let joined = segs.join("/");
            let k = Key::new(joined.clone()).unwrap();
            prop_assert_eq!(k.as_str(), joined.as_str());
            prop_assert_eq!(k.file_name(), segs.last().unwrap().as_str());
        }
    }
}
