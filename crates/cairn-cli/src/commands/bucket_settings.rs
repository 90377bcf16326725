//! `cairn bucket ...` and `cairn setup`: S3 bucket settings through the library's `Admin`
//! (aws-sdk-s3, configured like the store). Each setting is read back after it is set, and
//! what the server lacks is said before anything changes.

use super::Ctx;
use crate::address::{self, Addr};
use crate::args::{
    BucketArgs, BucketCommand, EncryptionCommand, LifecycleCommand, PolicyCommand, SetupArgs,
};
use crate::error::{usage, CliError, Report, Result};
use cairn::backend::s3::admin::{self, Admin, Encryption, LifecycleRule, Versioning};
use serde_json::json;

/// The bucket administration client for `s3://BUCKET` (no key).
pub async fn admin_for(ctx: &Ctx, raw: &str, cmd: &str) -> Result<(String, Admin)> {
    let addr = match address::parse(raw, true)? {
        Addr::Store(s) => s,
        _ => {
            return Err(usage(
                format!("{cmd} takes s3://BUCKET, not {raw:?}"),
                "e.g. s3://my-bucket",
            ))
        }
    };
    if !addr.url.starts_with("s3://") {
        return Err(usage(
            format!("{cmd}: {} is not an S3 bucket", addr.shown),
            "bucket settings exist only on S3 servers; give s3://BUCKET",
        ));
    }
    if !addr.path.trim_end_matches('/').is_empty() {
        return Err(usage(
            format!("{cmd} takes a bucket, not a key: {raw}"),
            "drop the key",
        ));
    }
    let (admin, bucket) = cairn::open_admin(&addr.url, ctx.config.clone()).await?;
    Ok((format!("s3://{bucket}"), admin))
}

/// A setting this provider does not implement: an error before any request.
fn lacks(admin: &Admin, what: &str) -> CliError {
    CliError::Fail(
        Report::new(format!(
            "{} ({}) does not implement {what}; nothing was changed",
            admin.bucket(),
            admin.provider()
        ))
        .hint("`cairn bucket info` lists what this server supports"),
    )
}

fn print(ctx: &Ctx, value: serde_json::Value, human: String) -> Result {
    if ctx.printer.json() {
        ctx.printer.json_line(&value)
    } else {
        ctx.printer.line(human)
    }
}

fn versioning_word(v: Versioning) -> &'static str {
    match v {
        Versioning::Off => "off",
        Versioning::Enabled => "on",
        Versioning::Suspended => "suspended",
        Versioning::Unsupported => "not implemented by this server",
    }
}

fn rules_text(rules: &[LifecycleRule]) -> String {
    if rules.is_empty() {
        return "no lifecycle rules".into();
    }
    let mut out = Vec::new();
    for r in rules {
        let mut acts = Vec::new();
        for t in &r.transitions {
            acts.push(format!("{} d -> {}", t.days, t.storage_class));
        }
        if let Some(d) = r.expiration_days {
            acts.push(format!("expire at {d} d"));
        }
        if let Some(d) = r.noncurrent_expiration_days {
            acts.push(format!("old versions expire at {d} d"));
        }
        if let Some(d) = r.abort_incomplete_multipart_days {
            acts.push(format!("abort incomplete uploads at {d} d"));
        }
        let prefix = if r.prefix.is_empty() { "*" } else { &r.prefix };
        out.push(format!("{}  {prefix}  {}", r.id, acts.join(", ")));
    }
    out.join("\n")
}

pub async fn bucket(ctx: &Ctx, a: &BucketArgs) -> Result {
    match &a.command {
        BucketCommand::Create { url, object_lock } => {
            let (name, admin) = admin_for(ctx, url, "bucket create").await?;
            admin.create_bucket_with(*object_lock).await?;
            print(
                ctx,
                json!({ "created": name, "object_lock": object_lock }),
                format!("Made {name}"),
            )
        }
        BucketCommand::Rm { url, force } => {
            let (name, admin) = admin_for(ctx, url, "bucket rm").await?;
            admin.delete_bucket(*force).await?;
            print(ctx, json!({ "removed": name }), format!("Removed {name}"))
        }
        BucketCommand::Info { url } => {
            let (name, admin) = admin_for(ctx, url, "bucket info").await?;
            let info = admin.info().await?;
            let lifecycle = match admin.get_lifecycle().await {
                Ok(r) => Some(r),
                Err(e) if e.kind() == cairn::ErrorKind::Unsupported => None,
                Err(e) => return Err(e.into()),
            };
            let f = admin.features();
            let lacks: Vec<&str> = [
                (!f.versioning, "versioning"),
                (!f.encryption, "default encryption"),
                (!f.acls, "ACLs"),
                (!f.policy, "bucket policies"),
                (!f.object_lock, "object lock"),
                (!f.lifecycle_transitions, "lifecycle transitions"),
            ]
            .into_iter()
            .filter_map(|(no, what)| no.then_some(what))
            .collect();
            let human = format!(
                "bucket      {name}\nregion      {}\nprovider    {}\nversioning  {}\nencryption  {}\nlifecycle   {}\nlacks       {}",
                info.region,
                info.provider,
                versioning_word(info.versioning),
                admin::encryption_words(&info.encryption),
                lifecycle.as_deref().map(admin::lifecycle_words).unwrap_or("not implemented".into()),
                if lacks.is_empty() { "nothing cairn manages".into() } else { lacks.join(", ") },
            );
            print(
                ctx,
                json!({ "info": info, "lifecycle": lifecycle, "unsupported": lacks }),
                human,
            )
        }
        BucketCommand::Versioning { url, state } => {
            let (name, admin) = admin_for(ctx, url, "bucket versioning").await?;
            if state != "status" {
                if !admin.features().versioning {
                    return Err(lacks(&admin, "versioning"));
                }
                admin.put_versioning(state == "on").await?;
            }
            let now = admin.get_versioning().await?;
            let want = match state.as_str() {
                "on" => Some(Versioning::Enabled),
                "off" => Some(Versioning::Suspended),
                _ => None,
            };
            if want.is_some_and(|w| w != now) {
                return Err(CliError::Fail(Report::new(format!(
                    "{name}: versioning reads {} after it was set {state}",
                    versioning_word(now)
                ))));
            }
            print(
                ctx,
                json!({ "bucket": name, "versioning": now }),
                format!("{name}: versioning {}", versioning_word(now)),
            )
        }
        BucketCommand::Encryption { command } => match command {
            EncryptionCommand::Get { url } => {
                let (name, admin) = admin_for(ctx, url, "bucket encryption get").await?;
                let e = admin.get_encryption().await?;
                print(
                    ctx,
                    json!({ "bucket": name, "encryption": e }),
                    format!("{name}: encryption {}", admin::encryption_words(&e)),
                )
            }
            EncryptionCommand::Set { url, kind, kms_key } => {
                let want = Encryption::parse(kind, kms_key.clone())?;
                let (name, admin) = admin_for(ctx, url, "bucket encryption set").await?;
                if !admin.features().encryption {
                    return Err(lacks(&admin, "default bucket encryption"));
                }
                admin.put_encryption(&want).await?;
                let got = admin.get_encryption().await?;
                if got != want {
                    return Err(CliError::Fail(Report::new(format!(
                        "{name}: encryption reads {} after it was set to {}",
                        admin::encryption_words(&got),
                        admin::encryption_words(&want)
                    ))));
                }
                print(
                    ctx,
                    json!({ "bucket": name, "encryption": got }),
                    format!("{name}: encryption {}", admin::encryption_words(&got)),
                )
            }
        },
        BucketCommand::Lifecycle { command } => match command {
            LifecycleCommand::Get { url } => {
                let (name, admin) = admin_for(ctx, url, "bucket lifecycle get").await?;
                let rules = admin.get_lifecycle().await?;
                print(
                    ctx,
                    json!({ "bucket": name, "rules": rules }),
                    rules_text(&rules),
                )
            }
            LifecycleCommand::Rm { url } => {
                let (name, admin) = admin_for(ctx, url, "bucket lifecycle rm").await?;
                admin.delete_lifecycle().await?;
                print(
                    ctx,
                    json!({ "bucket": name, "rules": [] }),
                    format!("{name}: lifecycle rules removed"),
                )
            }
            LifecycleCommand::Set { url, file, preset } => {
                let rules = match (file, preset) {
                    (Some(f), _) => {
                        let text = std::fs::read_to_string(f)
                            .map_err(|e| super::copy::fs_err(e, "lifecycle", f))?;
                        admin::parse_rules(&text)
                            .map_err(|e| e.with_hint(format!("in {}", f.display())))?
                    }
                    (None, Some(p)) => admin::preset(p)?.lifecycle,
                    (None, None) => unreachable!("clap requires one"),
                };
                if rules.is_empty() {
                    return Err(usage(
                        "no lifecycle rules to set",
                        "to remove them all, use `cairn bucket lifecycle rm`",
                    ));
                }
                let (name, admin) = admin_for(ctx, url, "bucket lifecycle set").await?;
                admin.put_lifecycle(&rules).await?; // refuses what the server lacks; reads back
                print(
                    ctx,
                    json!({ "bucket": name, "rules": rules }),
                    format!(
                        "{name}: {} set\n{}",
                        admin::lifecycle_words(&rules),
                        rules_text(&rules)
                    ),
                )
            }
        },
        BucketCommand::Acl { url, canned } => {
            let (name, admin) = admin_for(ctx, url, "bucket acl").await?;
            if !admin.features().acls {
                return Err(lacks(&admin, "ACLs"));
            }
            if let Some(c) = canned {
                admin.put_bucket_acl(c).await?;
            }
            let grants = admin.get_bucket_acl().await?;
            let human = grants
                .iter()
                .map(|g| format!("{}  {}", g.permission, g.grantee))
                .collect::<Vec<_>>()
                .join("\n");
            print(ctx, json!({ "bucket": name, "grants": grants }), human)
        }
        BucketCommand::Policy { command } => match command {
            PolicyCommand::Get { url } => {
                let (name, admin) = admin_for(ctx, url, "bucket policy get").await?;
                let p = admin.get_policy().await?;
                let human = p.clone().unwrap_or_else(|| format!("{name}: no policy"));
                let parsed = p
                    .as_deref()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok());
                print(ctx, json!({ "bucket": name, "policy": parsed }), human)
            }
            PolicyCommand::Set { url, file } => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| super::copy::fs_err(e, "policy", file))?;
                admin::check_policy(&text)?;
                let (name, admin) = admin_for(ctx, url, "bucket policy set").await?;
                if !admin.features().policy {
                    return Err(lacks(&admin, "bucket policies"));
                }
                admin.put_policy(&text).await?;
                if admin.get_policy().await?.is_none() {
                    return Err(CliError::Fail(Report::new(format!(
                        "{name}: the policy reads as none after it was set"
                    ))));
                }
                print(
                    ctx,
                    json!({ "bucket": name, "policy_set": true }),
                    format!("{name}: policy set"),
                )
            }
            PolicyCommand::Rm { url } => {
                let (name, admin) = admin_for(ctx, url, "bucket policy rm").await?;
                admin.delete_policy().await?;
                print(
                    ctx,
                    json!({ "bucket": name, "policy_set": false }),
                    format!("{name}: policy removed"),
                )
            }
        },
    }
}

pub async fn setup(ctx: &Ctx, a: &SetupArgs) -> Result {
    let preset = admin::preset(&a.preset)?;
    let (name, admin) = admin_for(ctx, &a.url, "setup").await?;
    let plan = admin.plan(&a.preset, &preset).await?;
    let p = &ctx.printer;
    let line = |c: &admin::Change| {
        let note = c
            .unsupported
            .as_ref()
            .map(|u| format!("  (cannot: {u})"))
            .unwrap_or_default();
        format!("  {:<11} {} -> {}{note}", c.setting, c.from, c.to)
    };
    if a.dry_run || plan.changes.is_empty() {
        if p.json() {
            p.json_line(&json!({ "bucket": name, "plan": plan, "dry_run": a.dry_run }))?;
        } else if plan.changes.is_empty() {
            p.line(format!(
                "{name}: already as preset {:?} wants ({}); nothing changed",
                a.preset,
                plan.unchanged.join(", ")
            ))?;
        } else {
            p.line(format!("{name}: preset {:?} would change:", a.preset))?;
            for c in &plan.changes {
                p.line(line(c))?;
            }
        }
        return Ok(());
    }
    let done = admin.apply(&plan, a.skip_unsupported).await?;
    let skipped: Vec<String> = plan.unsupported();
    if p.json() {
        p.json_line(&json!({ "bucket": name, "changed": done, "unchanged": plan.unchanged, "skipped": skipped }))?;
    } else {
        p.line(format!("{name}: preset {:?} applied:", a.preset))?;
        for c in &done {
            p.line(line(c))?;
        }
        for s in &skipped {
            p.line(format!("  skipped: {s}"))?;
        }
    }
    Ok(())
}
