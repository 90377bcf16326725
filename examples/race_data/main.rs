//! Use case 002: a racing telemetry app on cairn.
//!
//! Uploads a tree of CSV files (`data/{track}/{session}_{track}_{kind}.csv`) with `sync`,
//! discovers the tracks by a delimiter listing, finds each track's sessions by a filename glob,
//! and loads one CSV. The store is chosen by the environment exactly as the app did before:
//! `STORAGE_TYPE=local|s3`, `S3_BUCKET_NAME`, `S3_PREFIX`, `S3_ENDPOINT_URL`, and the AWS chain.
//! A second sync transfers nothing; a failed item would be listed with its reason.

use cairn::ops::{sync, NoReporter, SyncOptions};
use cairn::{Key, ListEntry, ListOptions, StoreExt};
use futures::TryStreamExt;
use globset::Glob;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const TRACKS: &[&str] = &["monza", "spa_francorchamps", "suzuka"];
const SESSIONS: &[&str] = &["FP1", "FP2", "Q", "R"];

/// Writes the app's CSV tree into `dir`.
fn make_tree(dir: &std::path::Path) -> Res<usize> {
    let mut n = 0;
    for track in TRACKS {
        let d = dir.join("data").join(track);
        std::fs::create_dir_all(&d)?;
        for (s, session) in SESSIONS.iter().enumerate() {
            let laps: String = (1..=20)
                .map(|lap| format!("{lap},{:.3}\n", 80.0 + (lap * 7 + s * 3) as f64 % 11.0))
                .collect();
            std::fs::write(
                d.join(format!("{session}_{track}_lap_start.csv")),
                format!("lap,time\n{laps}"),
            )?;
            let tele: String = (0..500)
                .map(|i| format!("{i},{},{}\n", 100 + i % 220, i % 8))
                .collect();
            std::fs::write(
                d.join(format!("{session}_{track}_telemetry.csv")),
                format!("t,speed,gear\n{tele}"),
            )?;
            n += 2;
        }
    }
    Ok(n)
}

#[tokio::main]
async fn main() -> Res<()> {
    let url = cairn::url_from_env()?;
    let store = cairn::open(&url).await?;
    println!("store: {store}");

    let src_dir = tempfile::tempdir()?;
    let files = make_tree(src_dir.path())?;
    let src = cairn::open(&format!("file://{}", src_dir.path().display())).await?;
    let opts = SyncOptions {
        delete: true,
        ..Default::default()
    };
    let up = sync(&*src, &*store, &opts, &NoReporter).await?;
    assert_eq!(up.failed, 0, "upload failures: {:?}", up.failures);
    assert_eq!(up.transferred as usize, files, "every CSV uploaded");
    println!(
        "uploaded {} files ({} bytes)",
        up.transferred, up.transferred_bytes
    );
    let again = sync(&*src, &*store, &opts, &NoReporter).await?;
    assert_eq!(again.transferred, 0, "a second sync transfers nothing");

    // Tracks: the common prefixes one level under data/.
    let tracks: Vec<String> = store
        .list(ListOptions::shallow("data/"))
        .try_filter_map(|e| async move {
            Ok(match e {
                ListEntry::Prefix(p) => Some(p["data/".len()..].trim_end_matches('/').to_string()),
                ListEntry::Object(_) => None,
                // A name cairn cannot represent is an error here, never a silent skip.
                ListEntry::Unlisted { name, reason } => {
                    return Err(cairn::Error::unlisted(&name, &reason))
                }
            })
        })
        .try_collect()
        .await?;
    assert_eq!(tracks, TRACKS, "tracks discovered by delimiter listing");
    println!("tracks: {tracks:?}");

    // Sessions: from file names matching `*_lap_start.csv`.
    let glob = Glob::new("*_lap_start.csv")?.compile_matcher();
    for track in &tracks {
        let mut sessions: Vec<String> = store
            .list_objects(&format!("data/{track}/"))
            .try_filter_map(|m| {
                let name = m.key.file_name().to_string();
                let hit = glob
                    .is_match(&name)
                    .then(|| name.split('_').next().unwrap_or("").to_string());
                async move { Ok(hit) }
            })
            .try_collect()
            .await?;
        sessions.sort();
        let mut want: Vec<String> = SESSIONS.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(sessions, want, "{track}: sessions from file names");
        println!("{track}: sessions {sessions:?}");
    }

    // Load one CSV (with the app's fallback filename patterns).
    let (track, session) = ("spa_francorchamps", "Q");
    let candidates = [
        format!("data/{track}/{session}_{track}_lap_start.csv"),
        format!(
            "data/{track}/{session}_{}_lap_start.csv",
            track.replace('_', "-")
        ),
        format!("data/{track}/{session}_lap_start.csv"),
    ];
    let mut loaded = None;
    for c in &candidates {
        let key = Key::new(c.as_str())?;
        if store.exists(&key).await? {
            loaded = Some(store.get(&key).await?);
            break;
        }
    }
    let csv = String::from_utf8(loaded.expect("a lap file matched").to_vec())?;
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "lap,time");
    assert_eq!(rows.len(), 21, "header + 20 laps");
    println!("loaded {track}/{session}: {} laps", rows.len() - 1);

    // Clean up what this run stored.
    let keys: Vec<Key> = store
        .list_objects("data/")
        .map_ok(|m| m.key)
        .try_collect()
        .await?;
    let failed = store.delete_many(keys).await;
    assert!(failed.is_empty(), "cleanup failures: {failed:?}");
    println!("race_data: ok");
    Ok(())
}
