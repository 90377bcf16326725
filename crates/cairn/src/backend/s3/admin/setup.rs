//! Presets: named bucket settings (versioning, encryption, lifecycle) from a data file
//! (`presets/buckets.toml`), planned against what the bucket has now and applied idempotently.

use super::{Admin, Encryption, LifecycleRule, Versioning};
use crate::error::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const PRESETS: &str = include_str!("../../../../presets/buckets.toml");

/// A named set of bucket settings; a setting it leaves out is left as it is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// What it is for.
    pub description: String,
    /// Versioning on (`true`) or suspended.
    #[serde(default)]
    pub versioning: Option<bool>,
    /// Default encryption: `aes256`, `aws:kms` or `off`.
    #[serde(default)]
    pub encryption: Option<String>,
    /// The KMS key for `aws:kms`.
    #[serde(default)]
    pub kms_key: Option<String>,
    /// Lifecycle rules (replace the bucket's).
    #[serde(default)]
    pub lifecycle: Vec<LifecycleRule>,
}

/// Every preset, by name.
pub fn presets() -> BTreeMap<String, Preset> {
    toml::from_str(PRESETS).expect("presets/buckets.toml is checked by a unit test")
}

/// The preset called `name`.
pub fn preset(name: &str) -> Result<Preset> {
    let all = presets();
    all.get(name).cloned().ok_or_else(|| {
        Error::invalid(format!("no preset {name:?}")).with_hint(format!(
            "use one of {}",
            all.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })
}

/// One setting a plan changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `versioning`, `encryption` or `lifecycle`.
    pub setting: &'static str,
    /// What the bucket has now, in words.
    pub from: String,
    /// What it will have.
    pub to: String,
    /// Why this server cannot take it as asked, if it cannot.
    pub unsupported: Option<String>,
    #[serde(skip)]
    step: Step,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Versioning(bool),
    Encryption(Encryption),
    Lifecycle(Vec<LifecycleRule>),
}

/// What applying a preset would change, found by reading the bucket's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The preset's name.
    pub preset: String,
    /// The settings that differ.
    pub changes: Vec<Change>,
    /// The settings already as the preset wants them.
    pub unchanged: Vec<&'static str>,
}

impl Plan {
    /// The changes this server cannot take, as one sentence each.
    pub fn unsupported(&self) -> Vec<String> {
        self.changes
            .iter()
            .filter_map(|c| c.unsupported.clone())
            .collect()
    }
}

fn versioning_words(v: Versioning) -> String {
    match v {
        Versioning::Off => "off",
        Versioning::Enabled => "on",
        Versioning::Suspended => "suspended",
        Versioning::Unsupported => "not implemented",
    }
    .into()
}

/// An encryption setting in words.
pub fn encryption_words(e: &Encryption) -> String {
    match e {
        Encryption::None => "none".into(),
        Encryption::Sse {
            algorithm,
            kms_key_id: Some(k),
        } => format!("{algorithm} (key {k})"),
        Encryption::Sse { algorithm, .. } => algorithm.clone(),
        Encryption::Unsupported => "not implemented".into(),
    }
}

/// Lifecycle rules in words, e.g. `2 rules (tier-and-expire, abort-incomplete-multipart)`.
pub fn lifecycle_words(rules: &[LifecycleRule]) -> String {
    match rules.len() {
        0 => "none".into(),
        n => format!(
            "{n} rule{} ({})",
            if n == 1 { "" } else { "s" },
            rules
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn same_rules(a: &[LifecycleRule], b: &[LifecycleRule]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(|x, y| x.id.cmp(&y.id));
    b.sort_by(|x, y| x.id.cmp(&y.id));
    a == b
}

impl Admin {
    /// Compares the bucket's settings with `preset` (reads only).
    pub async fn plan(&self, name: &str, preset: &Preset) -> Result<Plan> {
        let features = self.ctx.quirks.bucket;
        let provider = self.ctx.quirks.name;
        let mut plan = Plan {
            preset: name.to_string(),
            changes: Vec::new(),
            unchanged: Vec::new(),
        };
        if let Some(on) = preset.versioning {
            let now = match self.get_versioning().await {
                Ok(v) => v,
                Err(e) if e.kind() == ErrorKind::Unsupported => Versioning::Unsupported,
                Err(e) => return Err(e),
            };
            let want = if on {
                Versioning::Enabled
            } else {
                Versioning::Suspended
            };
            let same = now == want || (!on && now == Versioning::Off);
            if same {
                plan.unchanged.push("versioning");
            } else {
                plan.changes.push(Change {
                    setting: "versioning",
                    from: versioning_words(now),
                    to: versioning_words(want),
                    unsupported: (!features.versioning || now == Versioning::Unsupported)
                        .then(|| format!("{provider} does not implement versioning")),
                    step: Step::Versioning(on),
                });
            }
        }
        if let Some(name) = &preset.encryption {
            let want = Encryption::parse(name, preset.kms_key.clone())?;
            let now = if features.encryption {
                match self.get_encryption().await {
                    Ok(v) => v,
                    Err(e) if e.kind() == ErrorKind::Unsupported => Encryption::Unsupported,
                    Err(e) => return Err(e),
                }
            } else {
                Encryption::Unsupported
            };
            if now == want {
                plan.unchanged.push("encryption");
            } else {
                plan.changes.push(Change {
                    setting: "encryption",
                    from: encryption_words(&now),
                    to: encryption_words(&want),
                    unsupported: (now == Encryption::Unsupported).then(|| {
                        format!("{provider} does not implement default bucket encryption")
                    }),
                    step: Step::Encryption(want),
                });
            }
        }
        if !preset.lifecycle.is_empty() {
            let now = self.get_lifecycle().await?;
            // Where transitions are dropped, what the server can hold is the preset without them.
            let mut holdable = preset.lifecycle.clone();
            if !features.lifecycle_transitions {
                holdable.iter_mut().for_each(|r| r.transitions.clear());
            }
            if same_rules(&now, &preset.lifecycle) || same_rules(&now, &holdable) {
                plan.unchanged.push("lifecycle");
            } else {
                let moves: Vec<String> = preset
                    .lifecycle
                    .iter()
                    .flat_map(|r| r.transitions.iter().map(|t| t.storage_class.clone()))
                    .collect();
                plan.changes.push(Change {
                    setting: "lifecycle",
                    from: lifecycle_words(&now),
                    to: lifecycle_words(&preset.lifecycle),
                    unsupported: (!features.lifecycle_transitions && !moves.is_empty()).then(
                        || {
                            format!(
                                "{provider} keeps no lifecycle transitions (to {})",
                                moves.join(", ")
                            )
                        },
                    ),
                    step: Step::Lifecycle(preset.lifecycle.clone()),
                });
            }
        }
        Ok(plan)
    }

    /// Applies a plan. Unless `skip_unsupported`, a plan with a change this server cannot
    /// take fails before anything is changed; with it, those changes are left out (for a
    /// lifecycle: its transitions are, and the rest is applied). Every change is read back.
    pub async fn apply(&self, plan: &Plan, skip_unsupported: bool) -> Result<Vec<Change>> {
        let refused = plan.unsupported();
        if !refused.is_empty() && !skip_unsupported {
            return Err(Error::unsupported(format!(
                "this server cannot take the {:?} preset: {}; nothing was changed",
                plan.preset,
                refused.join("; ")
            ))
            .with_store(&*self.ctx.name)
            .with_operation("setup")
            .with_hint("`--skip-unsupported` applies the rest"));
        }
        let mut done = Vec::new();
        for c in &plan.changes {
            match (&c.step, &c.unsupported) {
                (Step::Versioning(_) | Step::Encryption(_), Some(_)) => continue,
                (Step::Versioning(on), None) => {
                    self.put_versioning(*on).await?;
                    let want = if *on {
                        Versioning::Enabled
                    } else {
                        Versioning::Suspended
                    };
                    let got = self.get_versioning().await?;
                    if got != want {
                        return Err(Error::unsupported(format!(
                            "versioning reads {} after it was set {}",
                            versioning_words(got),
                            versioning_words(want)
                        ))
                        .with_store(&*self.ctx.name));
                    }
                }
                (Step::Encryption(want), None) => {
                    self.put_encryption(want).await?;
                    let got = self.get_encryption().await?;
                    if &got != want {
                        return Err(Error::unsupported(format!(
                            "encryption reads {} after it was set to {}",
                            encryption_words(&got),
                            encryption_words(want)
                        ))
                        .with_store(&*self.ctx.name));
                    }
                }
                (Step::Lifecycle(rules), unsupported) => {
                    let mut rules = rules.clone();
                    if unsupported.is_some() {
                        rules.iter_mut().for_each(|r| r.transitions.clear());
                        rules.retain(|r| {
                            r.expiration_days.is_some()
                                || r.noncurrent_expiration_days.is_some()
                                || r.abort_incomplete_multipart_days.is_some()
                        });
                    }
                    self.put_lifecycle(&rules).await?; // reads back itself
                }
            }
            done.push(c.clone());
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_presets_file_parses_and_every_rule_is_valid() {
        let all = presets();
        assert!(all.contains_key("analysis"), "{:?}", all.keys());
        for (name, p) in &all {
            for r in &p.lifecycle {
                super::super::lifecycle::check(r).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
        let a = &all["analysis"];
        assert_eq!(a.versioning, Some(true));
        assert_eq!(a.encryption.as_deref(), Some("aes256"));
        let days: Vec<u32> = a.lifecycle[0].transitions.iter().map(|t| t.days).collect();
        assert_eq!(days, [30, 90]);
        assert_eq!(a.lifecycle[0].expiration_days, Some(365));
        assert_eq!(a.lifecycle[1].abort_incomplete_multipart_days, Some(7));
    }

    #[test]
    fn an_unknown_preset_names_the_known_ones() {
        let e = preset("nope").unwrap_err();
        assert!(format!("{e:#}").contains("analysis"), "{e:#}");
    }
}
