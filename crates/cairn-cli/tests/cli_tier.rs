//! `tier+URL` from the CLI and `cairn tier status|flush|evict|verify`: write-back copies reach
//! the cold store before the command exits, a failed flush says where the writes wait, and
//! the hot directory belongs to one store and one process.

mod common;
use common::{bytes, tree, var, Sandbox};

fn tier_url(cold: &std::path::Path, hot: &std::path::Path, extra: &str) -> String {
    format!(
        "tier+file://{}?hot={}{extra}",
        cold.display(),
        hot.display()
    )
}

fn csv(rows: usize) -> Vec<u8> {
    let mut s = String::from("lap,driver,ms\n");
    for i in 0..rows {
        s.push_str(&format!("{i},driver{},{}\n", i % 20, 80_000 + i * 7 % 900));
    }
    s.into_bytes()
}

fn status(sb: &Sandbox, url: &str) -> serde_json::Value {
    sb.ok(&["tier", "status", url, "--json"]).json()
}

#[test]
fn write_back_copies_reach_cold_before_exit_and_read_through_after_evict() {
    let sb = Sandbox::new();
    let (cold, hot) = (sb.work.join("cold"), sb.work.join("hot"));
    sb.write("src/laps.csv", &csv(5_000));
    sb.write("src/blob.bin", &bytes(300_000, 7));
    sb.write("src/deep/a.json", br#"{"a":1}"#);
    let url = tier_url(&cold, &hot, "&mode=write-back&compression=zstd");
    sb.ok(&["cp", "-r", "src/", &url]);

    // The command flushed before it exited: the cold store alone holds every file.
    let cold_url = format!("file://{}", cold.display());
    sb.ok(&["cp", "-r", &format!("{cold_url}/"), "back/"]);
    assert_eq!(tree(&sb.work.join("back")), tree(&sb.work.join("src")));
    let s = status(&sb, &url);
    assert_eq!(s["dirty_entries"], 0);
    assert_eq!(s["entries"], 3);
    assert_eq!(s["flushes"], 3);
    assert_eq!(s["mode"], "write-back");
    // Hot holds the stored (compressed) bytes: far less than the CSV's 100 kB.
    assert!(s["hot_bytes"].as_u64().unwrap() < 300_000 + 40_000, "{s}");

    // Evict a prefix: exactly the copies under it leave.
    let r = sb.ok(&["tier", "evict", &url, "--json"]);
    assert_eq!(r.json()["evicted"], 3);
    let s = status(&sb, &url);
    assert_eq!(
        (s["entries"].as_u64(), s["hot_bytes"].as_u64()),
        (Some(0), Some(0))
    );

    // A read after the eviction misses, fills, then hits.
    let cold_key = format!(
        "tier+file://{}/laps.csv?hot={}",
        cold.display(),
        hot.display()
    );
    assert_eq!(sb.ok(&["cat", &cold_key]).stdout, csv(5_000));
    assert_eq!(sb.ok(&["cat", &cold_key]).stdout, csv(5_000));
    let s = status(&sb, &url);
    assert_eq!(
        (
            s["misses"].as_u64(),
            s["fills"].as_u64(),
            s["hits"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "counters last across processes: {s}"
    );
    assert_eq!(s["hit_rate"], 0.5);
    assert_eq!(s["entries"], 1);
}

#[test]
fn evict_takes_a_prefix_and_verify_names_stale_copies() {
    let sb = Sandbox::new();
    let (cold, hot) = (sb.work.join("cold"), sb.work.join("hot"));
    for d in ["seg/old", "seg/active"] {
        for i in 0..3 {
            sb.write(
                &format!("src/{d}/{i}.json"),
                format!("{{\"{d}\":{i}}}").as_bytes(),
            );
        }
    }
    let url = tier_url(&cold, &hot, "");
    sb.ok(&["cp", "-r", "src/seg/", &url]);
    let r = sb.ok(&["tier", "evict", &url, "old/", "--json"]);
    assert_eq!(r.json()["evicted"], 3);
    assert_eq!(r.json()["prefix"], "old/");
    assert_eq!(status(&sb, &url)["entries"], 3);

    // Clean copies match: exit 0, every one counted.
    let r = sb.ok(&["tier", "verify", &url, "--json"]);
    let lines: Vec<serde_json::Value> = r
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["summary"]["checked"], 3);
    assert_eq!(lines[0]["summary"]["differ"], 0);

    // Change one object behind the tier's back: verify names it and exits 2.
    sb.write("new.json", b"{\"changed\":true}");
    let direct = format!("file://{}/active/1.json", cold.display());
    sb.ok(&["cp", "new.json", &direct]);
    let r = sb.run(&["tier", "verify", &url, "--json"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let lines: Vec<serde_json::Value> = r
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", r.out());
    assert_eq!(lines[0]["key"], "active/1.json");
    assert_eq!(
        lines[0]["problem"],
        "cold has a newer version (the hot copy is stale)"
    );
    assert_eq!(lines[1]["summary"]["differ"], 1);
    assert!(
        r.stderr.contains("1 of 3 hot copies failed"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_failed_flush_says_where_the_writes_wait_and_a_later_flush_delivers_them() {
    let sb = Sandbox::new();
    let hot = sb.work.join("hot");
    let (bucket, endpoint) = (
        var("CAIRN_TEST_MOTO_BUCKET"),
        var("CAIRN_TEST_MOTO_ENDPOINT"),
    );
    let prefix = format!("{}/cli-tier/{:08x}", var("CAIRN_TEST_RUN_ID"), rand_u32());
    let creds = format!(
        "&region={}&access_key_id={}&secret_access_key={}&path_style=true",
        var("CAIRN_TEST_MOTO_REGION"),
        var("CAIRN_TEST_MOTO_ACCESS_KEY_ID"),
        var("CAIRN_TEST_MOTO_SECRET_ACCESS_KEY")
    );
    // Nothing listens on port 1: every upload fails at once.
    let down = format!(
        "tier+s3://{bucket}/{prefix}/?hot={}&mode=write-back&endpoint=http://127.0.0.1:1&max_retries=0&connect_timeout=1s{creds}",
        hot.display()
    );
    sb.write("a.json", br#"{"a":1}"#);
    let r = sb.run(&["cp", "a.json", &down]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("wait in the hot journal under"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&hot.display().to_string()),
        "{}",
        r.stderr
    );
    let s = status(&sb, &down);
    assert_eq!(s["dirty_entries"], 1);
    assert!(s["last_error"].is_string(), "{s}");

    // The same bucket through a reachable endpoint: the journal's write arrives.
    let up = format!(
        "tier+s3://{bucket}/{prefix}/?hot={}&mode=write-back&endpoint={endpoint}{creds}",
        hot.display()
    );
    let r = sb.ok(&["tier", "flush", &up, "--json"]);
    assert_eq!(r.json()["flushed"], 1);
    let direct = format!("s3://{bucket}/{prefix}/a.json?endpoint={endpoint}{creds}");
    assert_eq!(sb.ok(&["cat", &direct]).stdout, br#"{"a":1}"#);
    assert_eq!(status(&sb, &up)["dirty_entries"], 0);
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.subsec_nanos() ^ std::process::id()
}

#[test]
fn bad_tier_input_is_refused_with_what_to_do() {
    let sb = Sandbox::new();
    let (cold, hot) = (sb.work.join("cold"), sb.work.join("hot"));
    // Not a tier URL.
    let r = sb.run(&["tier", "status", "local://"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("is not a tiered store"), "{}", r.stderr);
    // No hot directory.
    let r = sb.run(&["tier", "status", &format!("tier+file://{}", cold.display())]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("names no hot directory"), "{}", r.stderr);
    // tier+ before a plain path.
    let r = sb.run(&["ls", "tier+./dir"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("tier+ goes before a store URL"),
        "{}",
        r.stderr
    );
    // A bad option value.
    let r = sb.run(&["tier", "status", &tier_url(&cold, &hot, "&mode=later")]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("mode must be write-through or write-back"),
        "{}",
        r.stderr
    );
    // A hot directory belongs to one cold store.
    sb.ok(&["tier", "status", &tier_url(&cold, &hot, "")]);
    let other = sb.work.join("other");
    let r = sb.run(&["tier", "status", &tier_url(&other, &hot, "")]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("belongs to file://"), "{}", r.stderr);
    // Tier options on a store without a tier.
    let r = sb.run(&["ls", &format!("file://{}?hot_max=1GiB", cold.display())]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("hot_max= applies to tiered stores"),
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn one_process_owns_a_hot_directory() {
    let sb = Sandbox::new();
    let (cold, hot) = (sb.work.join("cold"), sb.work.join("hot"));
    let url = tier_url(&cold, &hot, "");
    let held = cairn::open_tier(&url, cairn::Config::default())
        .await
        .unwrap();
    let r = sb.run(&["tier", "status", &url]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("is in use by another tiered store"),
        "{}",
        r.stderr
    );
    drop(held);
}
