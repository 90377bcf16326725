//! Key templates: `{prefix}/{name}/{yyyy}/{mm}/{timestamp}-{kind}.{ext}` rendered on save and
//! matched back on list, so the key alone says what an entry is.

use crate::error::{Error, Result};
use crate::key::Key;
use chrono::{DateTime, NaiveDateTime, Utc};

const TS_FORMAT: &str = "%Y%m%dT%H%M%S%.3fZ";
const TS_LEN: usize = 20; // 20261123T072200.123Z
const VARS: &[&str] = &[
    "prefix",
    "name",
    "kind",
    "ext",
    "yyyy",
    "mm",
    "dd",
    "timestamp",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Lit(String),
    Var(&'static str),
}

/// A parsed key template.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    tokens: Vec<Token>,
}

/// What a key says about its entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The archive name.
    pub name: String,
    /// The kind ("" if the template has no `{kind}`).
    pub kind: String,
    /// The save time.
    pub timestamp: DateTime<Utc>,
}

impl Template {
    /// Parses a template; it must contain `{name}` and `{timestamp}`.
    pub fn parse(src: &str) -> Result<Template> {
        let mut tokens = Vec::new();
        let mut rest = src;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest.find('}').ok_or_else(|| bad(src, "an unclosed `{`"))?;
                    let var = &rest[1..end];
                    let v = VARS
                        .iter()
                        .find(|v| **v == var)
                        .ok_or_else(|| bad(src, &format!("unknown placeholder {{{var}}}")))?;
                    if matches!(tokens.last(), Some(Token::Var(_))) {
                        return Err(bad(src, "two placeholders with nothing between them"));
                    }
                    tokens.push(Token::Var(v));
                    rest = &rest[end + 1..];
                }
                Some(i) => {
                    tokens.push(Token::Lit(rest[..i].to_string()));
                    rest = &rest[i..];
                }
                None => {
                    tokens.push(Token::Lit(rest.to_string()));
                    rest = "";
                }
            }
        }
        for need in ["name", "timestamp"] {
            if !tokens.contains(&Token::Var(need)) {
                return Err(bad(src, &format!("no {{{need}}} placeholder")));
            }
        }
        Ok(Template {
            source: src.to_string(),
            tokens,
        })
    }

    /// Tokens with an empty `{prefix}` and its following `/` removed.
    fn tokens_for(&self, prefix: &str) -> Vec<Token> {
        let mut out = Vec::with_capacity(self.tokens.len());
        let mut skip_slash = false;
        for t in &self.tokens {
            match t {
                Token::Var("prefix") if prefix.is_empty() => skip_slash = true,
                Token::Lit(l) if skip_slash => {
                    skip_slash = false;
                    let l = l.strip_prefix('/').unwrap_or(l);
                    if !l.is_empty() {
                        out.push(Token::Lit(l.to_string()));
                    }
                }
                t => {
                    skip_slash = false;
                    out.push(t.clone());
                }
            }
        }
        out
    }

    /// The key for one save.
    pub fn render(
        &self,
        prefix: &str,
        name: &str,
        kind: &str,
        ext: &str,
        at: DateTime<Utc>,
    ) -> Result<Key> {
        let mut s = String::new();
        for t in self.tokens_for(prefix) {
            match t {
                Token::Lit(l) => s.push_str(&l),
                Token::Var(v) => s.push_str(&value(v, prefix, name, kind, ext, at)),
            }
        }
        Key::new(s).map_err(|e| {
            Error::invalid(format!(
                "template {:?} made a bad key: {}",
                self.source,
                e.message()
            ))
        })
    }

    /// The longest literal key prefix shared by every key for `name` (or every name).
    pub fn scan_prefix(&self, prefix: &str, name: Option<&str>) -> String {
        let mut s = String::new();
        for t in self.tokens_for(prefix) {
            match t {
                Token::Lit(l) => s.push_str(&l),
                Token::Var("prefix") => s.push_str(prefix),
                Token::Var("name") if name.is_some() => s.push_str(name.unwrap()),
                Token::Var(_) => break,
            }
        }
        s
    }

    /// Matches a key back to its parts, or None if the key is not this template's.
    pub fn parse_key(&self, prefix: &str, key: &str) -> Option<Parsed> {
        let tokens = self.tokens_for(prefix);
        let mut vals: Vec<(&'static str, String)> = Vec::new();
        if !matches(&tokens, key, prefix, &mut vals) {
            return None;
        }
        let get = |n: &str| vals.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
        let ts = get("timestamp")?;
        let naive = NaiveDateTime::parse_from_str(&ts, TS_FORMAT).ok()?;
        Some(Parsed {
            name: get("name")?,
            kind: get("kind").unwrap_or_default(),
            timestamp: naive.and_utc(),
        })
    }
}

fn bad(src: &str, why: &str) -> Error {
    Error::invalid(format!("archive key template {src:?} has {why}"))
        .with_hint("placeholders: {prefix} {name} {kind} {ext} {yyyy} {mm} {dd} {timestamp}")
}

fn value(v: &str, prefix: &str, name: &str, kind: &str, ext: &str, at: DateTime<Utc>) -> String {
    match v {
        "prefix" => prefix.to_string(),
        "name" => name.to_string(),
        "kind" => kind.to_string(),
        "ext" => ext.to_string(),
        "yyyy" => at.format("%Y").to_string(),
        "mm" => at.format("%m").to_string(),
        "dd" => at.format("%d").to_string(),
        "timestamp" => at.format(TS_FORMAT).to_string(),
        _ => unreachable!("placeholders are checked at parse"),
    }
}

/// Backtracking match of `key` against tokens, collecting placeholder values.
fn matches(
    tokens: &[Token],
    key: &str,
    prefix: &str,
    vals: &mut Vec<(&'static str, String)>,
) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return key.is_empty();
    };
    match first {
        Token::Lit(l) => key
            .strip_prefix(l.as_str())
            .is_some_and(|k| matches(rest, k, prefix, vals)),
        Token::Var(v) => {
            let fixed = match *v {
                "prefix" => Some(prefix.len()),
                "yyyy" => Some(4),
                "mm" | "dd" => Some(2),
                "timestamp" => Some(TS_LEN),
                _ => None,
            };
            let candidates: Vec<usize> = match fixed {
                Some(n) => vec![n],
                None => (1..=key.len())
                    .filter(|i| key.is_char_boundary(*i))
                    .collect(),
            };
            for n in candidates {
                // A fixed width may end inside a character of a hostile key: no match.
                let Some((val, tail)) = key.split_at_checked(n) else {
                    continue;
                };
                let ok_chars = match *v {
                    "prefix" => val == prefix,
                    "name" => true,
                    "yyyy" | "mm" | "dd" => val.bytes().all(|b| b.is_ascii_digit()),
                    _ => !val.contains('/'),
                };
                if !ok_chars {
                    continue;
                }
                vals.push((v, val.to_string()));
                if matches(rest, tail, prefix, vals) {
                    return true;
                }
                vals.pop();
            }
            false
        }
    }
}
