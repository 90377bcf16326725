//! `cairn sync` and `cairn cp -r` killed with SIGKILL at random (seeded) points, 50 times in
//! all: local → local, local → moto and moto → local, over 200 small files and two 17 MiB
//! files (multipart uploads and parallel ranged downloads in 5 MiB parts). After each kill:
//! - every destination file present under a user's name is byte-equal to its source (none
//!   torn); a kill's own temp files are hidden (`.NAME.XXXX.cairn-tmp`) and counted;
//! - a re-run (`cairn sync`) exits 0 and transfers exactly the files missing, skipping the rest;
//! - no multipart upload stays open past it (cairn aborts the ones a killed cairn left), and
//!   its stderr reports no failed abort;
//! - no temp file is left in a local destination (the re-run sweeps the kill's);
//! - the destination then equals the source.
//!
//! `CAIRN_CRASH_KILLS` (default 50) and `CAIRN_CRASH_SEED` size and seed a run;
//! bench/reliability/crash.sh runs more. Needs moto (scripts/servers/start.sh).

mod common;

use common::s3::S3;
use common::{bytes, Sandbox};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const SMALL: usize = 200;
/// Above the 16 MiB multipart threshold: 4 parts of 5 MiB.
const BIG: usize = 17 * 1024 * 1024;
const PARTS: [&str; 4] = ["--part-size", "5M", "--parts", "2"];

type Tree = BTreeMap<String, Vec<u8>>;

/// Seeded kill points: xorshift, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        })
        .unwrap_or(default)
}

/// The source tree, written under `src/` in the sandbox.
fn source(s: &Sandbox) -> Tree {
    let mut t = Tree::new();
    for i in 0..SMALL {
        t.insert(
            format!("d{}/f{i:03}.bin", i % 7),
            bytes(1024 + (i * 331) % 15_000, i as u64 + 1),
        );
    }
    t.insert("big/a.bin".into(), bytes(BIG, 1001));
    t.insert("big/b.bin".into(), bytes(BIG, 1002));
    for (k, v) in &t {
        s.write(&format!("src/{k}"), v);
    }
    t
}

/// A local destination's files: user-visible ones, and the count of hidden temp files.
fn local_dest(dir: &Path) -> (Tree, usize) {
    let mut visible = Tree::new();
    let mut temps = 0;
    for (k, v) in common::tree(dir) {
        let name = k.rsplit('/').next().unwrap();
        if name.starts_with('.') && name.ends_with(".cairn-tmp") {
            temps += 1;
        } else {
            visible.insert(k, v);
        }
    }
    (visible, temps)
}

/// Where a scenario copies to, and how it reads that back.
enum Dest<'a> {
    Local,
    S3(&'a S3),
}

struct Figures {
    kills: u64,
    finished_first: u64,
    missing: u64,
    transferred: u64,
    skipped: u64,
    temps: usize,
    /// Multipart uploads the kills left open (the re-runs must abort them).
    orphans: usize,
}

/// One route of the test: SRC → DST, where `dst` builds the URL of round `i`.
struct Route<'a> {
    name: &'a str,
    srv: Option<&'a S3>,
    dest: Dest<'a>,
    src: &'a str,
    dst: &'a dyn Fn(u64) -> String,
}

/// Runs `kills` kill-and-re-run rounds of a route.
fn scenario(s: &Sandbox, want: &Tree, route: Route, kills: u64, rng: &mut Rng) {
    let Route {
        name,
        srv,
        dest,
        src,
        dst,
    } = route;
    let args = |rest: Vec<&str>| -> Vec<String> {
        let v = match srv {
            Some(m) => m.args(&rest),
            None => rest,
        };
        v.into_iter().map(String::from).collect()
    };
    let read = |i: u64| -> (Tree, usize) {
        match &dest {
            Dest::Local => local_dest(&s.work.join(dst(i))),
            Dest::S3(m) => (
                m.objects(dst(i).strip_prefix(&format!("s3://{}/", m.bucket)).unwrap()),
                0,
            ),
        }
    };
    // A first, uncut run sets the span kill points are drawn from.
    let t0 = Instant::now();
    let calib = dst(u64::MAX);
    let first = s.run(
        &args([&["sync", src, &calib][..], &PARTS].concat())
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(first.code, 0, "{name}: uncut sync failed: {}", first.stderr);
    let span = t0.elapsed().as_micros() as u64;
    let mut f = Figures {
        kills: 0,
        finished_first: 0,
        missing: 0,
        transferred: 0,
        skipped: 0,
        temps: 0,
        orphans: 0,
    };
    for i in 0..kills {
        let to = dst(i);
        let verb: &[&str] = if i % 2 == 0 { &["sync"] } else { &["cp", "-r"] };
        let a = args([verb, &[src, &to][..], &PARTS].concat());
        let mut child = s
            .cmd(&a.iter().map(String::as_str).collect::<Vec<_>>())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Every third round into an S3 store waits for an open multipart upload first, so
        // kills land inside one (a random point of the whole run rarely does).
        let s3_prefix_now = match &dest {
            Dest::S3(m) if i % 3 == 0 => {
                Some((*m, to.strip_prefix(&format!("s3://{}/", m.bucket)).unwrap()))
            }
            _ => None,
        };
        if let Some((m, prefix)) = s3_prefix_now {
            while m.open_uploads(prefix).is_empty() && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_micros(rng.below(5_000)));
        } else {
            std::thread::sleep(Duration::from_micros(rng.below(span)));
        }
        if child.try_wait().unwrap().is_some() {
            f.finished_first += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        f.kills += 1;

        // A request the server had whole when the kill landed may still be stored after it
        // (an object, or an upload it creates): read until the destination holds still for
        // three reads in a row (a busy moto once took longer than one 150 ms pause to create
        // an upload a kill had sent), so the re-run starts after the killed run's last
        // request, as a user's would.
        let (mut got, mut temps) = read(i);
        if let Dest::S3(m) = &dest {
            let prefix = to.strip_prefix(&format!("s3://{}/", m.bucket)).unwrap();
            let mut uploads = m.open_uploads(prefix).len();
            let mut still = 0;
            while still < 3 {
                std::thread::sleep(Duration::from_millis(150));
                let again = read(i);
                let open = m.open_uploads(prefix).len();
                if again.0.len() == got.len() && open == uploads {
                    still += 1;
                } else {
                    still = 0;
                }
                (got, temps, uploads) = (again.0, again.1, open);
            }
        }
        f.temps += temps;
        for (k, v) in &got {
            assert!(
                want.get(k) == Some(v),
                "{name} round {i}: {k} is torn or foreign after the kill ({} bytes)",
                v.len()
            );
        }
        let missing = (want.len() - got.len()) as u64;
        let s3_prefix = match &dest {
            Dest::S3(m) => Some((*m, to.strip_prefix(&format!("s3://{}/", m.bucket)).unwrap())),
            Dest::Local => None,
        };
        if let Some((m, prefix)) = s3_prefix {
            f.orphans += m.open_uploads(prefix).len();
        }
        let r = s.run(
            &args([&["--json", "sync", src, &to][..], &PARTS].concat())
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert_eq!(r.code, 0, "{name} round {i}: re-run failed: {}", r.stderr);
        let sum = &r.json()["summary"];
        assert_eq!(
            (
                sum["transferred"].as_u64(),
                sum["skipped"].as_u64(),
                sum["failed"].as_u64()
            ),
            (Some(missing), Some(want.len() as u64 - missing), Some(0)),
            "{name} round {i}: the re-run must copy exactly the {missing} missing files: {sum}"
        );
        f.missing += missing;
        f.transferred += sum["transferred"].as_u64().unwrap();
        f.skipped += sum["skipped"].as_u64().unwrap();
        assert!(
            !r.stderr.contains("could not abort"),
            "{name} round {i}: an abort failed in the re-run:\n{}",
            r.stderr
        );
        if let Some((m, prefix)) = s3_prefix {
            let open = m.open_uploads(prefix);
            assert!(
                open.is_empty(),
                "{name} round {i}: uploads left open: {open:?}; the re-run said:\n{}",
                r.stderr
            );
        }
        let (end, temps_after) = read(i);
        assert!(
            end == *want,
            "{name} round {i}: the destination differs from the source"
        );
        assert_eq!(
            temps_after, 0,
            "{name} round {i}: the re-run left the kill's temp files in the destination"
        );
    }
    eprintln!(
        "crash {name}: {} kills ({} after the command had finished), {} re-runs, {} files \
         missing after the kills, {} transferred and {} skipped by the re-runs, 0 torn, {} \
         uploads open after the kills and 0 after the re-runs, {} hidden temp files left by \
         the kills and 0 after the re-runs",
        f.kills, f.finished_first, f.kills, f.missing, f.transferred, f.skipped, f.orphans, f.temps
    );
    assert!(
        f.missing > 0 && f.finished_first < f.kills,
        "{name}: no kill landed mid-transfer: the test tests nothing"
    );
}

#[test]
fn sigkill_mid_sync_and_cp_then_a_rerun_completes_only_what_is_missing() {
    let total = env_u64("CAIRN_CRASH_KILLS", 50);
    let mut rng = Rng(env_u64("CAIRN_CRASH_SEED", 0x5eed_c0ff_ee15_600d) | 1);
    let m = S3::from_env("MOTO");
    let s = m.sandbox();
    let want = source(&s);
    let local = total * 2 / 5;
    let up = (total - local) / 2;
    let down = total - local - up;

    scenario(
        &s,
        &want,
        Route {
            name: "local→local",
            srv: None,
            dest: Dest::Local,
            src: "src",
            dst: &|i| format!("ll-{i}"),
        },
        local,
        &mut rng,
    );
    let prefix = m.prefix("cli-crash");
    scenario(
        &s,
        &want,
        Route {
            name: "local→moto",
            srv: Some(&m),
            dest: Dest::S3(&m),
            src: "src",
            dst: &|i| m.url(&format!("{prefix}/up-{i}")),
        },
        up,
        &mut rng,
    );
    let from = m.url(&format!("{prefix}/up-{}", u64::MAX));
    scenario(
        &s,
        &want,
        Route {
            name: "moto→local",
            srv: Some(&m),
            dest: Dest::Local,
            src: &from,
            dst: &|i| format!("dl-{i}"),
        },
        down,
        &mut rng,
    );
}

/// An upload whose creation a kill cut off (a `begin` record, no id) is found by its key:
/// the next cairn aborts the uploads to exactly that key, on Garage by their start time and
/// on moto (which answers one fixed start date for every upload) by the key alone. An
/// upload to another key stays.
#[test]
fn an_upload_a_kill_left_without_an_id_is_aborted_by_the_next_write() {
    for server in ["MOTO", "GARAGE"] {
        let m = S3::from_env(server);
        let s = m.sandbox();
        let prefix = m.prefix("cli-orphan");
        let (cut, other) = (format!("{prefix}/big.bin"), format!("{prefix}/other.bin"));
        for key in [&cut, &other] {
            m.rt.block_on(
                m.admin
                    .sdk()
                    .create_multipart_upload()
                    .bucket(&m.bucket)
                    .key(key)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("{server}: create upload: {e:?}"));
        }
        // A dead process's journal: nobody holds its lock.
        let journal = s.home.join(".local/state/cairn/uploads");
        std::fs::create_dir_all(&journal).unwrap();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let record = serde_json::json!({
            "r": "begin", "n": 1, "store": format!("{}/{}", m.endpoint, m.bucket),
            "key": cut, "t": now_ms as i64,
        });
        std::fs::write(journal.join("1-dead.log"), format!("{record}\n")).unwrap();
        let mut sorted = m.open_uploads(&prefix);
        sorted.sort();
        assert_eq!(sorted, [cut.clone(), other.clone()], "{server}");

        std::fs::write(s.work.join("small.txt"), b"hello").unwrap();
        let url = m.url(&format!("{prefix}/small.txt"));
        let r = s.run(&m.args(&["cp", "small.txt", &url]));
        assert_eq!(r.code, 0, "{server}: {}", r.stderr);
        assert_eq!(m.open_uploads(&prefix), [other.as_str()], "{server}");
        assert!(
            !journal.join("1-dead.log").exists(),
            "{server}: a journal with nothing left open is removed"
        );
    }
}
