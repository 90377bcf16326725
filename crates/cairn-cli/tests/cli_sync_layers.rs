//! `cairn sync` and `cp -r` between plain directories and compressed / encrypted stores: the
//! second run transfers nothing, and a plain directory holds exactly the logical files.

mod common;
use common::Sandbox;
use std::collections::BTreeMap;
use std::path::Path;

/// Every file under `dir`, `.cairn/` included: a plain directory must not have one.
fn all_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Compressible CSV and JSON, plus a random file and an empty one.
fn sample(s: &Sandbox) {
    let mut csv = String::from("id,name,score\n");
    for i in 0..20_000 {
        csv.push_str(&format!("{i},runner-{},{}\n", i % 97, i * 7 % 1000));
    }
    s.write("src/results.csv", csv.as_bytes());
    let json: Vec<String> = (0..2_000)
        .map(|i| format!("{{\"lap\":{i},\"driver\":\"d{}\",\"ok\":true}}", i % 20))
        .collect();
    s.write(
        "src/laps/day1.json",
        format!("[{}]", json.join(",")).as_bytes(),
    );
    s.write("src/laps/bin", &common::bytes(70_000, 7));
    s.write("src/empty", b"");
}

/// Asserts two trees hold the same files with the same bytes, with a short message.
#[track_caller]
fn same_tree(got: &Path, want: &Path) {
    let (g, w) = (all_files(got), all_files(want));
    let names = |t: &BTreeMap<String, Vec<u8>>| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&g),
        names(&w),
        "{} vs {}",
        got.display(),
        want.display()
    );
    for (k, v) in &w {
        assert!(
            g[k] == *v,
            "{k}: {} bytes differ from the source's {}",
            g[k].len(),
            v.len()
        );
    }
}

fn summary(s: &Sandbox, opts: &[&str], args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(opts);
    all.push("sync");
    all.extend_from_slice(args);
    s.ok(&all).json()["summary"].clone()
}

fn counts(v: &serde_json::Value) -> (u64, u64, u64) {
    let n = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
    (n("transferred"), n("skipped"), n("failed"))
}

fn round_trip(opts: &[&str]) {
    let s = Sandbox::new();
    s.write("key", &[0x42; 32]);
    sample(&s);
    let n = all_files(&s.work.join("src")).len() as u64;

    assert_eq!(
        counts(&summary(&s, opts, &["src", "local://enc/"])),
        (n, 0, 0)
    );
    // Listings show stored sizes; sync compares logical ones, so nothing moves again.
    assert_eq!(
        counts(&summary(&s, opts, &["src", "local://enc/"])),
        (0, n, 0)
    );
    let check = ["--checksum", "src", "local://enc/"];
    assert_eq!(counts(&summary(&s, opts, &check)), (0, n, 0));

    // Store → plain directory: the logical bytes, and nothing else.
    assert_eq!(
        counts(&summary(&s, opts, &["local://enc/", "restore"])),
        (n, 0, 0)
    );
    same_tree(&s.work.join("restore"), &s.work.join("src"));
    assert_eq!(
        counts(&summary(&s, opts, &["local://enc/", "restore"])),
        (0, n, 0)
    );
    let check = ["--checksum", "local://enc/", "restore"];
    assert_eq!(counts(&summary(&s, opts, &check)), (0, n, 0));

    // A same-size change is found by --checksum, in both directions.
    let csv = s.work.join("src/results.csv");
    let mut changed = std::fs::read(&csv).unwrap();
    changed[20] ^= 1;
    std::fs::write(&csv, &changed).unwrap();
    let check = ["--checksum", "src", "local://enc/"];
    assert_eq!(counts(&summary(&s, opts, &check)), (1, n - 1, 0));
    let check = ["--checksum", "local://enc/", "restore"];
    assert_eq!(counts(&summary(&s, opts, &check)), (1, n - 1, 0));
    same_tree(&s.work.join("restore"), &s.work.join("src"));

    // cp -r both ways agrees with sync (like cp(1), a copy into a directory keeps the name).
    let mut up = opts.to_vec();
    up.extend(["cp", "-r", "src", "local://up/"]);
    s.ok(&up);
    let mut down = opts.to_vec();
    down.extend(["cp", "-r", "local://up/src", "copied/"]);
    s.ok(&down);
    same_tree(&s.work.join("copied/src"), &s.work.join("src"));
}

const KEY: &str = "encryption_key=file:key";

#[test]
fn encrypted_store_round_trips_and_settles() {
    round_trip(&["-o", KEY]);
}

#[test]
fn compressed_store_round_trips_and_settles() {
    round_trip(&["-o", "compression=zstd"]);
}

#[test]
fn compressed_and_encrypted_store_round_trips_and_settles() {
    round_trip(&["-o", "compression=zstd", "-o", KEY]);
}

#[test]
fn stat_shows_logical_and_stored_sizes_apart() {
    let s = Sandbox::new();
    s.write("key", &[0x42; 32]);
    sample(&s);
    let logical = std::fs::metadata(s.work.join("src/results.csv"))
        .unwrap()
        .len();
    let opts = ["-o", "compression=zstd", "-o", KEY];
    let mut up = opts.to_vec();
    up.extend(["cp", "src/results.csv", "local://enc/results.csv"]);
    s.ok(&up);
    let mut st = vec!["--json"];
    st.extend(opts);
    st.extend(["stat", "local://enc/results.csv"]);
    let v = s.ok(&st).json();
    assert_eq!(v["size"].as_u64(), Some(logical));
    let stored = v["stored_size"].as_u64().unwrap();
    assert!(
        stored < logical / 2,
        "zstd should shrink CSV: {stored} of {logical}"
    );
    assert_eq!(v["compression"], "zstd");
    // The layers' records are fields of their own, never user metadata.
    assert_eq!(v["metadata"], serde_json::json!({}));
    // Listings show the logical size too, though the store lists stored sizes.
    let mut ls = vec!["--json"];
    ls.extend(opts);
    ls.extend(["ls", "local://enc/"]);
    assert_eq!(s.ok(&ls).json()["size"].as_u64(), Some(logical));
    let mut ls = opts.to_vec();
    ls.extend(["ls", "-l", "local://enc/"]);
    let line = s.ok(&ls).out();
    assert!(line.contains(&format!(" {logical} ")), "{line}");
}
