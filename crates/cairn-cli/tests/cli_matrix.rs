//! The layer matrix as a user runs it: `cairn sync` and `cairn cp -r`, both ways, between a
//! plain directory and a layered store (`-o compression=zstd`, `-o encryption_key=file:KEY`),
//! on `local://`, `file://` and moto. The directory must hold exactly the user's files (no
//! `.cairn/`, no ciphertext), a second sync must transfer nothing, and `stat` must show the
//! logical size with the stored size apart.

mod common;
use common::{bytes, var, Sandbox};
use std::collections::BTreeMap;
use std::path::Path;

/// CSV rows, deterministic: what a compressor shrinks.
fn csv(len: usize, seed: u64) -> Vec<u8> {
    let mut s = String::from("lap,driver,sector1_ms,sector2_ms,compound\n");
    let mut x = seed | 1;
    let mut i = 0u64;
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let tyre = ["soft", "medium", "hard"][(x >> 60) as usize % 3];
        s.push_str(&format!(
            "{},driver-{:02},{},{},{tyre}\n",
            i / 20 + 1,
            i % 20,
            28_000 + x % 2_000,
            31_000 + (x >> 16) % 2_000
        ));
        i += 1;
    }
    s.truncate(len);
    s.into_bytes()
}

/// JSON lines, deterministic.
fn json(len: usize, seed: u64) -> Vec<u8> {
    let mut s = String::new();
    let mut i = seed;
    while s.len() < len {
        s.push_str(&format!(
            "{{\"id\":{i},\"agent\":\"agent-{}\",\"status\":\"ok\",\"reward\":{}.5}}\n",
            i % 7,
            i % 1000
        ));
        i += 1;
    }
    s.truncate(len);
    s.into_bytes()
}

/// The user's tree: empty and one-byte files, text and random bodies, one above the CLI's
/// 16 MiB multipart threshold (17 MiB of CSV, in 5 MiB parts), unicode and spaces in names.
fn sample() -> BTreeMap<String, Vec<u8>> {
    let mut t = BTreeMap::new();
    t.insert("empty".into(), Vec::new());
    t.insert("one.bin".into(), vec![0x5a]);
    t.insert("exports/small.json".into(), b"{\"a\":1}\n".to_vec());
    t.insert("exports/laps.csv".into(), csv(17 * 1024 * 1024 + 3, 8));
    t.insert("logs/events.jsonl".into(), json(3 * 1024 * 1024, 6));
    t.insert("logs/raw.bin".into(), bytes(1024 * 1024 + 9, 5));
    t.insert("ünï cødé/x y.txt".into(), json(70_000, 9));
    t
}

/// Every file and directory under `dir` (nothing skipped): relative path → bytes, and the
/// paths that belong to cairn.
fn strict_tree(dir: &Path) -> (BTreeMap<String, Vec<u8>>, Vec<String>) {
    fn walk(
        base: &Path,
        dir: &Path,
        files: &mut BTreeMap<String, Vec<u8>>,
        cairn: &mut Vec<String>,
    ) {
        for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if rel
                .split('/')
                .any(|s| s == ".cairn" || s.contains("cairn-tmp"))
            {
                cairn.push(rel.clone());
            }
            if p.is_dir() {
                walk(base, &p, files, cairn);
            } else {
                files.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let (mut files, mut cairn) = (BTreeMap::new(), Vec::new());
    walk(dir, dir, &mut files, &mut cairn);
    (files, cairn)
}

/// `dir` holds exactly `want`, byte for byte, and nothing of cairn's.
#[track_caller]
fn assert_plain(what: &str, dir: &Path, want: &BTreeMap<String, Vec<u8>>) {
    let (files, cairn) = strict_tree(dir);
    assert!(
        cairn.is_empty(),
        "{what}: the plain directory holds cairn's files: {cairn:?}"
    );
    let (got, wanted): (Vec<&String>, Vec<&String>) =
        (files.keys().collect(), want.keys().collect());
    assert_eq!(got, wanted, "{what}: file names");
    for (rel, data) in want {
        let f = &files[rel];
        if f != data {
            let at = f.iter().zip(data).position(|(a, b)| a != b);
            panic!(
                "{what}: {rel} differs: {} bytes, want {} (first difference at {at:?}; starts {:?})",
                f.len(),
                data.len(),
                String::from_utf8_lossy(&f[..f.len().min(12)])
            );
        }
    }
}

fn write_tree(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    for (rel, data) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Layers {
    Checksum,
    Zstd,
    Aes,
    ZstdAes,
}

#[derive(Clone, Copy)]
enum Target {
    Local,
    File,
    Moto,
}

struct Case {
    s: Sandbox,
    /// `-o` options (layers, and the server's for moto), before the command.
    global: Vec<String>,
    /// The store URL, ending in `/`.
    base: String,
}

impl Case {
    fn new(target: Target, layers: Layers, test: &str) -> Case {
        let mut s = Sandbox::new();
        let key = s.work.join("..").join("matrix.key");
        std::fs::write(&key, "3c".repeat(32)).unwrap();
        let mut global: Vec<String> = Vec::new();
        let mut opt = |kv: String| {
            global.push("-o".into());
            global.push(kv);
        };
        if matches!(layers, Layers::Zstd | Layers::ZstdAes) {
            opt("compression=zstd".into());
        }
        if matches!(layers, Layers::Aes | Layers::ZstdAes) {
            opt(format!("encryption_key=file:{}", key.display()));
        }
        let base = match target {
            Target::Local => "local://m/".to_string(),
            Target::File => {
                let d = s.work.join("..").join("filestore");
                std::fs::create_dir_all(&d).unwrap();
                format!("file://{}/", d.canonicalize().unwrap().display())
            }
            Target::Moto => {
                let v = |k: &str| var(&format!("CAIRN_TEST_MOTO_{k}"));
                s.env.push(("AWS_ACCESS_KEY_ID".into(), v("ACCESS_KEY_ID")));
                s.env
                    .push(("AWS_SECRET_ACCESS_KEY".into(), v("SECRET_ACCESS_KEY")));
                s.env
                    .push(("AWS_EC2_METADATA_DISABLED".into(), "true".into()));
                for (k, val) in [
                    ("endpoint", v("ENDPOINT")),
                    ("region", v("REGION")),
                    ("path_style", "true".into()),
                    ("provider", "moto".into()),
                ] {
                    opt(format!("{k}={val}"));
                }
                format!(
                    "s3://{}/{}/cli-matrix/{:08x}/{test}/",
                    v("BUCKET"),
                    var("CAIRN_TEST_RUN_ID"),
                    rand_u32()
                )
            }
        };
        Case { s, global, base }
    }

    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all: Vec<&str> = self.global.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        all
    }

    fn ok(&self, args: &[&str]) -> common::Run {
        self.s.ok(&self.args(args))
    }

    fn sync(&self, extra: &[&str], src: &str, dst: &str) -> serde_json::Value {
        let mut a = vec!["--json", "sync", "--part-size", "5M"];
        a.extend_from_slice(extra);
        a.extend([src, dst]);
        self.ok(&a).json()["summary"].clone()
    }
}

/// A value per test process, so reruns against the same server start clean.
fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.subsec_nanos() ^ std::process::id().rotate_left(16)
}

#[track_caller]
fn assert_counts(what: &str, sum: &serde_json::Value, transferred: usize, skipped: usize) {
    assert_eq!(sum["failed"], 0, "{what}: {sum}");
    assert_eq!(
        (sum["transferred"].as_u64(), sum["skipped"].as_u64()),
        (Some(transferred as u64), Some(skipped as u64)),
        "{what}: (transferred, skipped): {sum}"
    );
}

fn run(target: Target, layers: Layers, test: &str) {
    let c = Case::new(target, layers, test);
    let files = sample();
    let n = files.len();
    let total: usize = files.values().map(Vec::len).sum();
    write_tree(&c.s.work.join("src"), &files);
    let store = format!("{}sync/", c.base);

    // Directory → store, then it settles (by size and time, and by checksum).
    let up = c.sync(&[], "src", &store);
    assert_counts("sync src -> store", &up, n, 0);
    assert_eq!(up["transferred_bytes"], total, "logical bytes: {up}");
    assert_counts(
        "second sync src -> store",
        &c.sync(&[], "src", &store),
        0,
        n,
    );
    assert_counts(
        "sync --checksum src -> store",
        &c.sync(&["--checksum"], "src", &store),
        0,
        n,
    );

    // stat: the logical size, the stored size apart.
    let csv_key = format!("{store}exports/laps.csv");
    let st = c.ok(&["--json", "stat", &csv_key]).json();
    let size = files["exports/laps.csv"].len() as u64;
    assert_eq!(st["size"], size, "stat size is the logical size: {st}");
    let stored = st["stored_size"].as_u64().expect("stat shows stored_size");
    match layers {
        Layers::Checksum => assert_eq!(stored, size, "{st}"),
        Layers::Zstd | Layers::ZstdAes => assert!(stored < size, "compressed: {st}"),
        Layers::Aes => assert!(stored > size, "encrypted: {st}"),
    }
    assert_eq!(
        c.ok(&["cat", &format!("{store}exports/small.json")]).stdout,
        files["exports/small.json"]
    );

    // Store → a plain directory: exactly the files, then it settles.
    let down = c.sync(&[], &store, "restore");
    assert_counts("sync store -> restore", &down, n, 0);
    assert_plain("sync store -> restore", &c.s.work.join("restore"), &files);
    assert_counts(
        "second sync store -> restore",
        &c.sync(&[], &store, "restore"),
        0,
        n,
    );
    assert_counts(
        "sync --checksum store -> restore",
        &c.sync(&["--checksum"], &store, "restore"),
        0,
        n,
    );
    assert_plain("restore after re-syncs", &c.s.work.join("restore"), &files);

    // cp -r both ways.
    let cp = format!("{}cp/", c.base);
    c.ok(&["cp", "-r", "--part-size", "5M", "src", &cp]);
    c.ok(&["cp", "-r", &format!("{cp}src"), "back"]);
    assert_plain("cp -r store -> back", &c.s.work.join("back"), &files);
    assert_plain("sync and cp -r source", &c.s.work.join("src"), &files);
}

macro_rules! matrix {
    ($($name:ident: $target:ident, $layers:ident;)*) => {
        $(
            #[test]
            fn $name() {
                run(Target::$target, Layers::$layers, stringify!($name));
            }
        )*
    };
}

matrix! {
    local_checksum: Local, Checksum;
    local_zstd: Local, Zstd;
    local_aes: Local, Aes;
    local_zstd_aes: Local, ZstdAes;
    file_checksum: File, Checksum;
    file_zstd: File, Zstd;
    file_aes: File, Aes;
    file_zstd_aes: File, ZstdAes;
    moto_checksum: Moto, Checksum;
    moto_zstd: Moto, Zstd;
    moto_aes: Moto, Aes;
    moto_zstd_aes: Moto, ZstdAes;
}
