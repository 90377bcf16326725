use super::*;
use crate::backend::memory::MemoryStore;
use std::sync::Arc;

fn meta(pairs: &[(&str, &str)]) -> Metadata {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn template_roundtrips_and_rejects_bad_templates() {
    let t = Template::parse(DEFAULT_TEMPLATE).unwrap();
    let at = "2026-11-23T07:22:00.123Z".parse::<DateTime<Utc>>().unwrap();
    let k = t
        .render("snaps", "agent/7", "snapshot", "json", at)
        .unwrap();
    assert_eq!(
        k.as_str(),
        "snaps/agent/7/2026/11/20261123T072200.123Z-snapshot.json"
    );
    let p = t.parse_key("snaps", k.as_str()).unwrap();
    assert_eq!(
        (p.name.as_str(), p.kind.as_str(), p.timestamp),
        ("agent/7", "snapshot", at)
    );
    let k = t.render("", "a", "report", "json", at).unwrap();
    assert_eq!(k.as_str(), "a/2026/11/20261123T072200.123Z-report.json");
    assert_eq!(t.parse_key("", k.as_str()).unwrap().name, "a");
    assert_eq!(t.scan_prefix("snaps", Some("a")), "snaps/a/");
    assert!(t.parse_key("", "a/2026/11/garbage-report.json").is_none());
    for bad in [
        "{name}",
        "{timestamp}",
        "{name}{timestamp}",
        "{nme}/{timestamp}",
        "{name/{timestamp}",
    ] {
        assert!(Template::parse(bad).is_err(), "{bad}");
    }
    let uc000 = Template::parse("benchmarks/{name}/{timestamp}-{kind}.{ext}").unwrap();
    let k = uc000.render("", "repo-1", "nightly", "json", at).unwrap();
    assert_eq!(
        k.as_str(),
        "benchmarks/repo-1/20261123T072200.123Z-nightly.json"
    );
}

#[tokio::test]
async fn save_list_latest_load_prune() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let a = Archive::new(store).with_prefix("snapshots").unwrap();
    let mut saved = Vec::new();
    for i in 0..4 {
        let kind = if i % 2 == 0 { "snapshot" } else { "checkpoint" };
        let e = a
            .save(
                "agent-1",
                kind,
                Bytes::from(format!("state {i}")),
                meta(&[("session_id", &i.to_string())]),
                Some("application/json"),
            )
            .await
            .unwrap();
        saved.push(e);
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    a.save(
        "agent-10",
        "snapshot",
        Bytes::from_static(b"other"),
        Metadata::new(),
        None,
    )
    .await
    .unwrap();

    let all = a
        .list(&Filter {
            name: Some("agent-1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 4, "agent-10 is not agent-1");
    assert!(
        all.windows(2).all(|w| w[0].timestamp >= w[1].timestamp),
        "newest first"
    );
    assert_eq!(all[0].key, saved[3].key);

    let latest = a
        .latest("agent-1", Some("snapshot"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.key, saved[2].key);
    assert_eq!(a.load(&latest.key).await.unwrap(), &b"state 2"[..]);

    let by_meta = Filter {
        metadata: meta(&[("session_id", "1")]),
        ..Default::default()
    };
    let hits = a.list(&by_meta).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].key, saved[1].key);
    let md = a.metadata(&saved[1].key).await.unwrap();
    assert_eq!(
        md.metadata.get(META_KIND).map(String::as_str),
        Some("checkpoint")
    );

    let dry = a
        .prune(
            &Filter {
                name: Some("agent-1".into()),
                ..Default::default()
            },
            &Prune {
                keep_last: Some(1),
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(dry.len(), 3);
    assert_eq!(
        a.list(&Filter::default()).await.unwrap().len(),
        5,
        "dry run deletes nothing"
    );
    let gone = a
        .prune(
            &Filter {
                name: Some("agent-1".into()),
                ..Default::default()
            },
            &Prune {
                keep_last: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(gone.len(), 2);
    let left = a.list(&Filter::default()).await.unwrap();
    assert_eq!(left.len(), 3);
    assert!(
        left.iter().any(|e| e.key == saved[3].key) && left.iter().any(|e| e.key == saved[2].key)
    );
    assert!(
        a.prune(&Filter::default(), &Prune::default())
            .await
            .is_err(),
        "prune needs a policy"
    );
}

#[tokio::test]
async fn restore_writes_atomically_and_verify_reports_unverifiable_without_checksums() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let a = Archive::new(store);
    let e = a
        .save(
            "n",
            "k",
            Bytes::from_static(b"hello"),
            Metadata::new(),
            None,
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sub/restored.bin");
    assert_eq!(a.restore(&e.key, &out).await.unwrap(), 5);
    assert_eq!(std::fs::read(&out).unwrap(), b"hello");
    assert_eq!(a.verify(&e.key).await.unwrap(), Verified::Unverifiable);
    let missing = Key::new("n/none").unwrap();
    assert!(a.restore(&missing, &dir.path().join("x")).await.is_err());
    assert!(
        !dir.path().join("x").exists(),
        "failed restore writes nothing"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("sub")).unwrap().count(),
        1,
        "no temp files left"
    );
}

#[tokio::test]
async fn bad_names_are_rejected_before_writing() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let a = Archive::new(store.clone());
    for (name, kind) in [
        ("", "k"),
        ("../x", "k"),
        ("n", "a/b"),
        ("n", ""),
        ("{x}", "k"),
    ] {
        let e = a
            .save(name, kind, Bytes::new(), Metadata::new(), None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{name:?} {kind:?}");
    }
    assert!(crate::testkit::all_keys(&*store, "").await.is_empty());
}

#[tokio::test]
async fn archive_futures_can_be_spawned() {
    // Spawning needs `Send` proven with the borrows' lifetimes erased; `async` blocks inside
    // stream combinators used to make that unprovable (the CLI spawns every command).
    let archive = Arc::new(Archive::new(Arc::new(MemoryStore::new())));
    let a = archive.clone();
    let listed = tokio::spawn(async move { a.list(&Filter::default()).await });
    assert!(listed.await.unwrap().unwrap().is_empty());
    let a = archive.clone();
    let latest = tokio::spawn(async move { a.latest("report", None).await });
    assert!(latest.await.unwrap().unwrap().is_none());
    let policy = Prune {
        keep_last: Some(1),
        older_than: None,
        dry_run: true,
    };
    let pruned = tokio::spawn(async move { archive.prune(&Filter::default(), &policy).await });
    assert!(pruned.await.unwrap().unwrap().is_empty());
}

#[tokio::test]
async fn saves_of_one_name_within_a_millisecond_get_keys_of_their_own() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let a = Archive::new(store);
    let mut keys = std::collections::BTreeSet::new();
    for i in 0..20u8 {
        let e = a
            .save("n", "k", Bytes::from(vec![i]), Metadata::new(), None)
            .await
            .unwrap();
        assert!(keys.insert(e.key.clone()), "{} saved twice", e.key);
        assert_eq!(a.store().get(&e.key).await.unwrap(), Bytes::from(vec![i]));
    }
}
