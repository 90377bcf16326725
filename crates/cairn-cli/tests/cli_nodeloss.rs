//! Node loss on the 3-node Garage cluster (replication factor 3, one node per zone) that
//! scripts/servers/start.sh runs; clients talk to node 1, the test kills nodes 2 and 3 with
//! SIGKILL (scripts/servers/garage-node.sh):
//! - one node killed in the middle of a `cairn sync` of 2,000 small objects: the sync exits 0
//!   and every object is there, byte for byte;
//! - two down (no quorum): cairn fails within its retry budget, with kind `unavailable`, and
//!   exit 1 or 2, never a hang;
//! - both restarted: a second sync completes and `cairn verify` finds every object intact.

mod common;

use common::s3::S3;
use common::{bytes, var, Run, Sandbox};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const OBJECTS: usize = 2_000;
/// Only catches a hang: far above any retry budget.
const HANG: Duration = Duration::from_secs(300);

fn node(cmd: &str, n: u32) {
    let out = Command::new(var("CAIRN_TEST_GARAGE3_NODE_SCRIPT"))
        .args([cmd, &n.to_string(), &var("CAIRN_TEST_GARAGE3_DIR")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "garage-node.sh {cmd} {n}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs cairn, killing it (and failing) if it is still running after [`HANG`].
fn run_bounded(s: &Sandbox, args: &[&str]) -> (Run, Duration) {
    let t0 = Instant::now();
    let mut child = s
        .cmd(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let o = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    let e = std::thread::spawn(move || {
        let mut v = String::new();
        err.read_to_string(&mut v).unwrap();
        v
    });
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > HANG {
            child.kill().unwrap();
            panic!("cairn {args:?} still runs after {HANG:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let run = Run {
        code: status.code().expect("exited normally"),
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    };
    (run, t0.elapsed())
}

/// The `summary` of a `--json` run (its last line; verify prints one line per object first).
fn summary(r: &Run) -> serde_json::Value {
    let out = r.out();
    let last = out.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the last line is not JSON ({e}):\n{out}"));
    v["summary"].clone()
}

#[test]
fn garage3_survives_one_node_fails_clearly_without_quorum_and_recovers() {
    let g = S3::from_env("GARAGE3");
    // A node an earlier run left down would turn the one-node case into the two-node one.
    node("up", 2);
    node("up", 3);
    let s = g.sandbox();
    let mut want = std::collections::BTreeMap::new();
    for i in 0..OBJECTS {
        let (k, v) = (
            format!("d{:02}/o{i:04}.txt", i % 20),
            bytes(100 + i % 400, i as u64),
        );
        s.write(&format!("src/{k}"), &v);
        want.insert(k, v);
    }
    let prefix = g.prefix("cli-nodeloss");
    let (a, b) = (format!("{prefix}/a"), format!("{prefix}/b"));
    let (url_a, url_b) = (g.url(&a), g.url(&b));

    // One node killed mid-sync.
    let mut child = s
        .cmd(&g.args(&["--json", "sync", "src", &url_a]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = 0;
    while seen < OBJECTS / 5 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended before a node was killed"
        );
        std::thread::sleep(Duration::from_millis(50));
        seen = g.keys(&a).len();
    }
    node("kill", 3);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the sync ended before node 3 was killed: nothing was tested"
    );
    let out = child.wait_with_output().unwrap();
    let r = Run {
        code: out.status.code().unwrap(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(r.code, 0, "sync with one node down failed:\n{}", r.stderr);
    let sum = summary(&r);
    assert_eq!(
        (sum["transferred"].as_u64(), sum["failed"].as_u64()),
        (Some(OBJECTS as u64), Some(0)),
        "{sum}"
    );
    assert!(
        g.objects(&a) == want,
        "objects differ after a node was lost"
    );
    eprintln!("one node down: sync of {OBJECTS} objects done, {seen} stored before the kill");

    // Two down: no quorum.
    node("kill", 2);
    let (r, took) = run_bounded(&s, &g.args(&["--json", "sync", "src", &url_b]));
    assert!(
        r.code == 1 || r.code == 2,
        "exit {} without quorum:\n{}\n{}",
        r.code,
        r.out(),
        r.stderr
    );
    let failure = &summary(&r)["failures"][0];
    assert_eq!(failure["kind"], "unavailable", "{failure}");
    // A failed listing is named too (it was once an empty key).
    assert_ne!(failure["key"], "", "the failure names nothing: {failure}");
    let msg = failure["message"].as_str().unwrap();
    assert!(msg.contains("quorum"), "the server's reason is lost: {msg}");
    eprintln!("two nodes down: exit {} after {took:?}: {msg}", r.code);
    let (r, took1) = run_bounded(&s, &g.args(&["cp", "src/d00/o0000.txt", &url_b]));
    assert!(r.code == 1 || r.code == 2, "exit {}: {}", r.code, r.stderr);
    assert!(
        r.stderr.contains("unavailable")
            && r.stderr.contains("quorum")
            && !r.stderr.contains("rate limited"),
        "not a clear no-quorum error:\n{}",
        r.stderr
    );
    eprintln!("two nodes down: cp exit {} after {took1:?}", r.code);

    // Both back: the second sync completes and everything verifies.
    node("start", 2);
    node("start", 3);
    let r = s.ok(&g.args(&["--json", "sync", "src", &url_b]));
    assert_eq!(summary(&r)["transferred"], OBJECTS as u64);
    assert!(g.objects(&b) == want, "objects differ after the restart");
    for url in [&url_a, &url_b] {
        let v = summary(&s.ok(&g.args(&["--json", "verify", url])));
        assert_eq!(
            (
                v["ok"].as_u64(),
                v["corrupt"].as_u64(),
                v["failed"].as_u64()
            ),
            (Some(OBJECTS as u64), Some(0), Some(0)),
            "verify {url}: {v}"
        );
    }
}
