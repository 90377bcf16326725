//! `cairn archive` on the local default store, through the real binary.

mod common;
use common::Sandbox;

#[test]
fn save_list_latest_get_verify_prune() {
    let s = Sandbox::new();
    let mut keys = Vec::new();
    for i in 1..=3 {
        s.write(&format!("s{i}.json"), format!("{{\"n\":{i}}}").as_bytes());
        let r = s.ok(&[
            "archive",
            "save",
            "agent-7",
            "snapshot",
            &format!("s{i}.json"),
            "--meta",
            &format!("run={i}"),
        ]);
        let key = r.out().trim().to_string();
        assert!(
            key.starts_with("archive/agent-7/") && key.ends_with("-snapshot.json"),
            "{key}"
        );
        keys.push(key);
    }
    s.write("other.txt", b"x");
    s.ok(&["archive", "save", "other", "note", "other.txt"]);

    // Newest first; --name filters; --json is one entry per line.
    let r = s.ok(&["archive", "ls", "--name", "agent-7", "--json"]);
    let listed: Vec<serde_json::Value> = r
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<&str> = listed.iter().map(|v| v["key"].as_str().unwrap()).collect();
    let mut want: Vec<&str> = keys.iter().map(String::as_str).collect();
    want.reverse();
    assert_eq!(got, want);
    assert_eq!(listed[0]["name"], "agent-7");
    assert_eq!(listed[0]["kind"], "snapshot");
    assert_eq!(s.ok(&["archive", "ls"]).lines().len(), 4);
    let r = s.ok(&["archive", "ls", "--meta", "run=2", "--json"]);
    assert_eq!(r.lines().len(), 1);
    assert!(r.out().contains(&keys[1]), "{}", r.out());
    assert!(s
        .ok(&["archive", "ls", "--since", "2999-01-01T00:00:00Z"])
        .out()
        .is_empty());
    assert_eq!(s.run(&["archive", "ls", "--since", "yesterday"]).code, 1);

    let latest = s
        .ok(&["archive", "latest", "agent-7"])
        .out()
        .trim()
        .to_string();
    assert_eq!(latest, keys[2]);
    assert_eq!(s.run(&["archive", "latest", "nobody"]).code, 1);

    // Byte for byte, to stdout and to a file.
    assert_eq!(s.ok(&["archive", "get", &keys[0]]).stdout, b"{\"n\":1}");
    s.ok(&["archive", "get", &keys[1], "--output", "out/two.json"]);
    assert_eq!(
        std::fs::read(s.work.join("out/two.json")).unwrap(),
        b"{\"n\":2}"
    );

    let r = s.ok(&["archive", "verify", "--name", "agent-7"]);
    assert_eq!(r.lines().len(), 3);
    assert!(
        r.lines().iter().all(|l| l.starts_with("ok ")),
        "{}",
        r.out()
    );

    // Prune: a dry run deletes nothing; --keep 1 leaves the newest of each name.
    let r = s.ok(&["archive", "prune", "--keep", "1", "--dry-run"]);
    assert_eq!(r.lines().len(), 2, "{}", r.out());
    assert_eq!(s.ok(&["archive", "ls"]).lines().len(), 4);
    let r = s.ok(&["archive", "prune", "--keep", "1"]);
    assert_eq!(r.lines().len(), 2, "{}", r.out());
    let left: Vec<String> = s
        .ok(&["archive", "ls", "--json"])
        .lines()
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(left.len(), 2);
    assert!(left.contains(&keys[2]), "{left:?}");
    // A prune without a policy is a usage error.
    assert_eq!(s.run(&["archive", "prune"]).code, 2);
}

#[test]
fn store_prefix_and_stdin() {
    let s = Sandbox::new();
    let store = format!("file://{}/arch", s.work.display());
    std::fs::create_dir_all(s.work.join("arch")).unwrap();
    let mut c = std::process::Command::new(common::BIN);
    c.env_clear()
        .env("HOME", &s.home)
        .current_dir(&s.work)
        .args([
            "archive",
            "--store",
            &store,
            "--template",
            "bench/{name}/{timestamp}-{kind}.{ext}",
        ])
        .args([
            "save",
            "repo-x",
            "bench",
            "-",
            "--content-type",
            "application/json",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"ops\":1}")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        key.starts_with("bench/repo-x/") && key.ends_with("-bench.json"),
        "{key}"
    );
    assert_eq!(
        std::fs::read(s.work.join("arch").join(&key)).unwrap(),
        b"{\"ops\":1}"
    );
    let r = s.ok(&[
        "archive",
        "--store",
        &store,
        "--template",
        "bench/{name}/{timestamp}-{kind}.{ext}",
        "latest",
        "repo-x",
    ]);
    assert_eq!(r.out().trim(), key);
}

#[test]
fn best_effort_save_warns_and_exits_0() {
    let mut s = Sandbox::new();
    s.env.push(("AWS_ACCESS_KEY_ID".into(), "unused".into()));
    s.env
        .push(("AWS_SECRET_ACCESS_KEY".into(), "unused".into()));
    s.env
        .push(("AWS_EC2_METADATA_DISABLED".into(), "true".into()));
    s.write("r.json", b"{}");
    // Port 1 on loopback: nothing listens there.
    let args = [
        "--endpoint",
        "http://127.0.0.1:1",
        "--region",
        "us-east-1",
        "--path-style",
        "--max-retries",
        "0",
        "archive",
        "--store",
        "s3://archive-bucket/a",
        "save",
        "repo-x",
        "bench",
        "r.json",
    ];
    let r = s.run(&args);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    let mut best = args.to_vec();
    best.push("--best-effort");
    let r = s.run(&best);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.out());
    assert!(
        r.stderr.starts_with("warning: archive save skipped"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("network"), "{}", r.stderr);
    assert!(
        !r.stderr.lines().any(|l| l.starts_with("error:")),
        "{}",
        r.stderr
    );
}
