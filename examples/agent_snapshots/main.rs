//! Use case 004: an agent snapshot/restore system on cairn.
//!
//! Saves snapshots of agent state with metadata (agent_id, session_id, description), lists them,
//! restores the latest, verifies every one, streams a large snapshot in bounded memory, and
//! prunes old ones. The store comes from `CAIRN_URL` (any cairn URL); credentials come from the
//! standard AWS chain. Snapshots are gzip-compressed and SHA-256-verified on every read.
//!
//! Run: `CAIRN_URL=s3://bucket/prefix?endpoint=... cargo run -p cairn --example agent_snapshots`

use bytes::Bytes;
use cairn::archive::{Archive, Filter, Prune, Verified};
use cairn::{Config, Metadata, StoreExt};
use futures::StreamExt;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn state(agent: &str, step: u32) -> Bytes {
    let memory: Vec<String> = (0..step * 50)
        .map(|i| format!("observation {i} of {agent}"))
        .collect();
    serde_json::to_vec(&serde_json::json!({ "agent": agent, "step": step, "memory": memory }))
        .unwrap()
        .into()
}

fn meta(agent: &str, session: &str, description: &str) -> Metadata {
    [
        ("agent_id", agent),
        ("session_id", session),
        ("description", description),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[tokio::main]
async fn main() -> Res<()> {
    let url =
        std::env::var("CAIRN_URL").unwrap_or_else(|_| "local://examples/agent_snapshots".into());
    let options = Config::from_pairs([("compression", "gzip")])?;
    let store = cairn::open_with(&url, options).await?;
    let archive = Archive::new(store).with_prefix("snapshots")?;
    println!("store: {}", archive.store());
    // Start from a clean slate so reruns against the same store see only this run's snapshots.
    for e in archive
        .list(&Filter {
            name: Some("agent-7".into()),
            ..Default::default()
        })
        .await?
    {
        archive.delete(&e.key).await?;
    }

    // Three snapshots across two sessions.
    let mut saved = Vec::new();
    for (step, session) in [(1, "s-1"), (2, "s-1"), (3, "s-2")] {
        let e = archive
            .save(
                "agent-7",
                "snapshot",
                state("agent-7", step),
                meta("agent-7", session, &format!("after step {step}")),
                Some("application/json"),
            )
            .await?;
        println!("saved  {} ({} bytes)", e.key, e.size);
        saved.push(e);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    let listed = archive
        .list(&Filter {
            name: Some("agent-7".into()),
            ..Default::default()
        })
        .await?;
    assert_eq!(listed.len(), 3, "three snapshots listed");
    assert_eq!(listed[0].key, saved[2].key, "newest first");

    let in_s1 = Filter {
        metadata: meta_one("session_id", "s-1"),
        ..Default::default()
    };
    assert_eq!(
        archive.list(&in_s1).await?.len(),
        2,
        "filter by session metadata"
    );

    let latest = archive
        .latest("agent-7", Some("snapshot"))
        .await?
        .expect("a latest snapshot");
    let restored = tempfile::tempdir()?;
    let path = restored.path().join("agent-7.json");
    archive.restore(&latest.key, &path).await?;
    assert_eq!(
        std::fs::read(&path)?,
        state("agent-7", 3),
        "restore is byte for byte"
    );
    let info = archive.metadata(&latest.key).await?;
    assert_eq!(
        info.metadata.get("description").map(String::as_str),
        Some("after step 3")
    );
    println!("restored {} -> {}", latest.key, path.display());

    for e in &listed {
        let v = archive.verify(&e.key).await?;
        println!("verify {} {:?}", e.key, v);
        assert_eq!(v, Verified::Ok, "every snapshot verifies");
    }

    // A large snapshot streams up and down without holding it in memory.
    let chunk = Bytes::from(vec![b'x'; 1024 * 1024]);
    let chunks = futures::stream::iter((0..24).map(move |_| Ok(chunk.clone())));
    let big = archive
        .save_stream(
            "agent-7",
            "checkpoint",
            chunks,
            meta("agent-7", "s-2", "large"),
            None,
        )
        .await?;
    let mut body = archive.store().get_stream(&big.key).await?;
    let mut n = 0usize;
    while let Some(c) = body.next().await {
        n += c?.len();
    }
    assert_eq!(n, 24 * 1024 * 1024, "large snapshot round-trips");
    println!("streamed {} ({n} bytes)", big.key);

    let pruned = archive
        .prune(
            &Filter {
                name: Some("agent-7".into()),
                kind: Some("snapshot".into()),
                ..Default::default()
            },
            &Prune {
                keep_last: Some(1),
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(pruned.len(), 2, "prune keeps the newest snapshot");
    let left = archive
        .list(&Filter {
            name: Some("agent-7".into()),
            ..Default::default()
        })
        .await?;
    assert_eq!(left.len(), 2, "latest snapshot + checkpoint remain");
    for e in left {
        archive.delete(&e.key).await?;
    }
    println!("agent_snapshots: ok");
    Ok(())
}

fn meta_one(k: &str, v: &str) -> Metadata {
    [(k.to_string(), v.to_string())].into_iter().collect()
}
