//! Drives the real `cairn` binary in temp dirs, with CAIRN_ROOT and HOME pointing into them, and
//! checks stdout, stderr, exit codes and the bytes on disk.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;

mod common;
use common::*;

/// Asserts the failure shape: a non-zero code and stderr opening with one `error:` line.
fn assert_error(r: &Run, code: i32, needle: &str) {
    assert_eq!(r.code, code, "stderr:\n{}", r.stderr);
    let first = r.stderr.lines().next().unwrap_or("");
    assert!(
        first.starts_with("error: "),
        "first stderr line is not `error: ...`:\n{}",
        r.stderr
    );
    assert_eq!(
        r.stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "one error line expected:\n{}",
        r.stderr
    );
    for l in r.stderr.lines().skip(1) {
        assert!(
            l.starts_with("  caused by: ") || l.starts_with("  hint: "),
            "unexpected stderr line {l:?}:\n{}",
            r.stderr
        );
    }
    assert!(
        r.stderr.contains(needle),
        "stderr lacks {needle:?}:\n{}",
        r.stderr
    );
}

/// The sample tree: nested dirs, unicode and spaces in names, an empty file, a multi-MiB file.
fn sample_tree(s: &Sandbox) -> BTreeMap<String, Vec<u8>> {
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("tree/a.txt", b"alpha\n".to_vec()),
        ("tree/empty", Vec::new()),
        ("tree/sub/b.json", b"{\"b\":1}".to_vec()),
        ("tree/sub/deeper/ünïcødé 文件.bin", bytes(70_000, 7)),
        ("tree/sub/deeper/big.bin", bytes(3 * 1024 * 1024 + 17, 9)),
        ("tree/space dir/x y.txt", b"with spaces".to_vec()),
    ];
    for (rel, data) in &files {
        s.write(rel, data);
    }
    files
        .into_iter()
        .map(|(rel, data)| (rel.strip_prefix("tree/").unwrap().to_string(), data))
        .collect()
}

#[test]
fn file_round_trips_through_the_local_store() {
    let s = Sandbox::new();
    let data = bytes(1024 * 1024 + 3, 1);
    s.write("in.bin", &data);
    let r = s.ok(&["cp", "in.bin", "local://docs/"]);
    assert!(r.stdout.is_empty(), "a human cp prints nothing on stdout");
    assert!(r.stderr.contains("local://docs/in.bin"), "{}", r.stderr);
    // The object is a plain file under the root.
    assert_eq!(std::fs::read(s.root.join("docs/in.bin")).unwrap(), data);
    s.ok(&["cp", "local://docs/in.bin", "out.bin"]);
    assert_eq!(std::fs::read(s.work.join("out.bin")).unwrap(), data);
    // Into an existing directory keeps the name; a new name renames.
    std::fs::create_dir(s.work.join("d")).unwrap();
    s.ok(&["cp", "local://docs/in.bin", "d"]);
    assert_eq!(std::fs::read(s.work.join("d/in.bin")).unwrap(), data);
    s.ok(&["cp", "local://docs/in.bin", "local://renamed.bin"]);
    assert_eq!(s.ok(&["cat", "local://renamed.bin"]).stdout, data);
    // No temp files are left beside the downloads.
    let names: Vec<_> = std::fs::read_dir(&s.work)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        names.iter().all(|n| !n.to_string_lossy().contains(".tmp")),
        "{names:?}"
    );
}

#[test]
fn tree_round_trips_with_ls_cat_and_rm() {
    let s = Sandbox::new();
    let want = sample_tree(&s);
    let r = s.ok(&["cp", "-r", "tree", "local://x/"]);
    assert!(r.stderr.contains("Copied 6 of 6 files"), "{}", r.stderr);

    // ls -r shows full keys; the tree landed under x/tree/.
    let listed: Vec<String> = s.ok(&["ls", "-r", "local://x/"]).lines();
    let expected: Vec<String> = want.keys().map(|k| format!("x/tree/{k}")).collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    assert_eq!(listed, sorted, "listings come in key order");

    // One level: objects by name and sub-prefixes as PRE lines.
    let top = s.ok(&["ls", "local://x/tree/"]).lines();
    assert_eq!(top, vec!["a.txt", "empty", "PRE space dir/", "PRE sub/"]);

    let cat = s.ok(&["cat", "local://x/tree/sub/deeper/ünïcødé 文件.bin"]);
    assert_eq!(cat.stdout, want["sub/deeper/ünïcødé 文件.bin"]);

    // Back out, into a directory that does not exist yet: every byte matches.
    s.ok(&["cp", "-r", "local://x/tree", "back"]);
    assert_eq!(tree(&s.work.join("back")), want);

    let r = s.ok(&["rm", "-r", "local://x/"]);
    assert!(r.stderr.contains("Deleted 6 of 6 objects"), "{}", r.stderr);
    let r = s.ok(&["ls", "-r", "local://x/"]);
    assert!(r.stdout.is_empty(), "{}", r.out());
    assert!(
        tree(&s.root).is_empty(),
        "objects left: {:?}",
        tree(&s.root).keys()
    );
}

#[test]
fn tree_copy_between_store_and_plain_dirs_without_into() {
    let s = Sandbox::new();
    let want = sample_tree(&s);
    // No trailing slash and no existing target: the target becomes the tree's root.
    s.ok(&["cp", "-r", "tree", "local://t"]);
    let keys = s.ok(&["ls", "-r", "local://t/"]).lines();
    assert_eq!(keys.len(), want.len());
    assert!(
        keys.iter()
            .all(|k| k.starts_with("t/") && !k.starts_with("t/tree/")),
        "{keys:?}"
    );
    // Plain dir to plain dir, and a file:// store.
    s.ok(&["cp", "-r", "tree", "copy"]);
    assert_eq!(tree(&s.work.join("copy")), want);
    let url = format!("file://{}/fstore", s.work.display());
    s.ok(&["cp", "-r", "tree", &url]);
    let back = s.work.join("fromfile");
    s.ok(&["cp", "-r", &url, back.to_str().unwrap()]);
    assert_eq!(tree(&back), want);
}

#[test]
fn stdin_and_stdout_with_dash() {
    let s = Sandbox::new();
    let data = bytes(600_000, 3);
    let r = s.run_with_stdin(&["cp", "-", "local://piped.bin"], &data);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = s.ok(&["cp", "local://piped.bin", "-"]);
    assert_eq!(r.stdout, data);
    // Stdin into a "directory" has no name to keep.
    let r = s.run_with_stdin(&["cp", "-", "local://dir/"], b"x");
    assert_error(&r, 1, "stdin has no name");
    assert_eq!(tree(&s.root).keys().collect::<Vec<_>>(), vec!["piped.bin"]);
}

#[test]
fn ls_json_is_one_object_per_line() {
    let s = Sandbox::new();
    sample_tree(&s);
    s.ok(&["cp", "-r", "tree", "local://j/"]);
    let r = s.ok(&["ls", "--json", "local://j/tree/"]);
    let vals: Vec<serde_json::Value> = r
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(vals.len(), 4);
    let a = vals
        .iter()
        .find(|v| v["key"] == "j/tree/a.txt")
        .expect("a.txt listed");
    assert_eq!(a["size"], 6);
    assert!(a["etag"].is_string());
    assert!(chrono::DateTime::parse_from_rfc3339(a["last_modified"].as_str().unwrap()).is_ok());
    assert!(vals.iter().any(|v| v["prefix"] == "j/tree/sub/"));
    let r = s.ok(&["ls", "-r", "--json", "local://"]);
    for l in r.lines() {
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert!(v["key"].is_string() && v["size"].is_u64(), "{l}");
    }
    assert_eq!(r.lines().len(), 6);
    // -l: date, size, etag, name.
    let long = s.ok(&["ls", "-l", "local://j/tree/"]).lines();
    let a = long
        .iter()
        .find(|l| l.ends_with(" a.txt"))
        .expect("a.txt in long listing");
    let cols: Vec<&str> = a.split_whitespace().collect();
    assert_eq!(cols[2], "6", "{a}");
    assert!(
        long.iter().any(|l| l.trim_start().starts_with("PRE sub/")),
        "{long:?}"
    );
}

#[test]
fn stat_shows_type_and_metadata() {
    let s = Sandbox::new();
    s.write("doc.txt", b"hello");
    s.ok(&[
        "cp",
        "--content-type",
        "text/x-test",
        "--meta",
        "Owner=ana",
        "--meta",
        "run=7",
        "doc.txt",
        "local://d.txt",
    ]);
    let r = s.ok(&["stat", "--json", "local://d.txt"]);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["key"], "d.txt");
    assert_eq!(v["size"], 5);
    assert_eq!(v["content_type"], "text/x-test");
    assert_eq!(v["metadata"]["owner"], "ana");
    assert_eq!(v["metadata"]["run"], "7");
    assert!(v["etag"].is_string() && v["last_modified"].is_string());
    let human = s.ok(&["stat", "local://d.txt"]).out();
    assert!(
        human.contains("text/x-test") && human.contains("owner: ana"),
        "{human}"
    );
    // A store-to-store copy keeps type and metadata.
    s.ok(&["cp", "local://d.txt", "local://e.txt"]);
    let v: serde_json::Value =
        serde_json::from_slice(&s.ok(&["stat", "--json", "local://e.txt"]).stdout).unwrap();
    assert_eq!(v["content_type"], "text/x-test");
    assert_eq!(v["metadata"]["owner"], "ana");
    // A file gets a content type from its extension.
    s.ok(&["cp", "doc.txt", "local://g.txt"]);
    let v: serde_json::Value =
        serde_json::from_slice(&s.ok(&["stat", "--json", "local://g.txt"]).stdout).unwrap();
    assert_eq!(v["content_type"], "text/plain");
    let r = s.run(&["cp", "--meta", "novalue", "doc.txt", "local://h.txt"]);
    assert_error(&r, 1, "KEY=VALUE");
}

#[test]
fn stat_shows_what_the_layers_recorded() {
    let s = Sandbox::new();
    s.write("plain.txt", b"hello");
    s.ok(&["cp", "--meta", "team=ops", "plain.txt", "local://p.txt"]);
    let v: serde_json::Value =
        serde_json::from_slice(&s.ok(&["stat", "--json", "local://p.txt"]).stdout).unwrap();
    assert_eq!(v["stored_size"], 5);
    assert_eq!(v["checksum"]["kind"], "sha256");
    // SHA-256 of "hello".
    assert_eq!(
        v["checksum"]["sha256"],
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert!(
        v["compression"].is_null() && v["encryption"].is_null(),
        "{v}"
    );
    // Only user metadata in the user section.
    assert_eq!(v["metadata"], serde_json::json!({ "team": "ops" }));

    // Compressed and encrypted: the stored size differs and both layers are named.
    let text = "a line that repeats\n".repeat(2000);
    s.write("big.txt", text.as_bytes());
    s.write("key.hex", "11".repeat(32).as_bytes());
    let key = format!("file:{}", s.work.join("key.hex").display());
    let layered = ["-o", "compression=zstd", "-o"];
    let enc = format!("encryption_key={key}");
    let mut args: Vec<&str> = layered.to_vec();
    args.extend([enc.as_str(), "cp", "big.txt", "local://z.txt"]);
    s.ok(&args);
    let mut args: Vec<&str> = layered.to_vec();
    args.extend([enc.as_str(), "stat", "--json", "local://z.txt"]);
    let v: serde_json::Value = serde_json::from_slice(&s.ok(&args).stdout).unwrap();
    assert_eq!(v["size"], text.len() as u64);
    let stored = v["stored_size"].as_u64().unwrap();
    assert!(stored < text.len() as u64 / 10, "{v}");
    assert_eq!(v["compression"], "zstd");
    assert!(v["encryption"]["algorithm"].is_string(), "{v}");
    assert!(v["encryption"]["key_id"].is_string(), "{v}");
    assert_eq!(v["metadata"], serde_json::json!({}));
    args.retain(|a| *a != "--json");
    let human = s.ok(&args).out();
    assert!(human.contains("compression:   zstd"), "{human}");
    assert!(human.contains("key id"), "{human}");
    assert!(
        human.contains(&format!("stored size:   {stored}")),
        "{human}"
    );
    assert!(!human.contains("cairn-"), "{human}");
}

#[test]
fn exit_codes_and_error_format() {
    let s = Sandbox::new();
    s.write("f.txt", b"x");
    assert_eq!(s.ok(&["cp", "f.txt", "local://f.txt"]).code, 0);
    // Failure: 1, one `error:` line with causes/hint.
    let r = s.run(&["cat", "local://missing.txt"]);
    assert_error(&r, 1, "not found");
    assert!(r.stdout.is_empty());
    let r = s.run(&["rm", "local://missing.txt"]);
    assert_error(&r, 1, "not found");
    // Usage errors (clap): 2.
    let r = s.run(&["cp", "--no-such-flag", "a", "b"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.starts_with("error:"), "{}", r.stderr);
    assert_eq!(s.run(&["frobnicate"]).code, 2);
    assert_eq!(s.run(&["cp", "only-one-arg"]).code, 2);
    // Help and version: 0.
    assert_eq!(s.ok(&["--version"]).code, 0);
}

#[test]
fn partial_failure_of_a_tree_copy_exits_2_with_a_summary() {
    let s = Sandbox::new();
    s.write("p/good1.txt", b"1");
    s.write("p/sub/good2.txt", b"2");
    // A backslash cannot be in a key: this one file is skipped, the rest still copy.
    s.write("p/bad\\name.txt", b"3");
    let r = s.run(&["cp", "-r", "p", "local://p"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("bad\\name.txt"),
        "the failed item is named:\n{}",
        r.stderr
    );
    assert!(r.stderr.contains("1 of 3 files failed"), "{}", r.stderr);
    assert_eq!(s.ok(&["cat", "local://p/good1.txt"]).stdout, b"1");
    assert_eq!(s.ok(&["cat", "local://p/sub/good2.txt"]).stdout, b"2");
    // --json: one line per item plus a summary.
    let r = s.run(&["cp", "-r", "--json", "p", "local://q"]);
    assert_eq!(r.code, 2);
    let vals: Vec<serde_json::Value> = r
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(vals.iter().filter(|v| v["copied"].is_string()).count(), 2);
    assert_eq!(vals.iter().filter(|v| v["error"].is_string()).count(), 1);
    let summary = vals.last().unwrap();
    assert_eq!(summary["summary"]["done"], 2);
    assert_eq!(summary["summary"]["failed"], 1);
}

/// Spawns cairn with stdout piped, reads a little, closes the pipe, and expects exit 0 and no
/// error. The output is far larger than a pipe buffer, so cairn is still writing when it closes.
fn assert_quiet_on_broken_pipe(s: &Sandbox, args: &[&str]) {
    let mut child = s
        .cmd(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 1];
    out.read_exact(&mut buf).unwrap();
    drop(out);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "cairn {args:?} on a closed pipe:\n{err}"
    );
    assert!(
        err.is_empty(),
        "cairn {args:?} printed on a closed pipe:\n{err}"
    );
}

#[test]
fn broken_pipe_exits_0_silently() {
    let s = Sandbox::new();
    s.write("big.bin", &bytes(8 * 1024 * 1024, 5));
    s.ok(&["cp", "big.bin", "local://big.bin"]);
    assert_quiet_on_broken_pipe(&s, &["cat", "local://big.bin"]);
    assert_quiet_on_broken_pipe(&s, &["cp", "local://big.bin", "-"]);
    // A listing of ~300 KiB: objects are plain files under the root.
    for i in 0..4000 {
        std::fs::write(
            s.root
                .join(format!("object-with-a-longish-name-{i:05}.txt")),
            b"",
        )
        .unwrap();
    }
    assert_quiet_on_broken_pipe(&s, &["ls"]);
    assert_quiet_on_broken_pipe(&s, &["ls", "-r", "--json", "-l"]);
}

#[test]
fn bad_input_writes_nothing() {
    let s = Sandbox::new();
    s.write("f.txt", b"payload");
    let before = tree(&s.work);
    let cases: &[(&[&str], &str)] = &[
        (&["cp", "f.txt", "local://a/../b.txt"], "`..`"),
        (&["cp", "f.txt", "local://a/%2E%2E/b.txt"], "`..`"),
        (&["cp", "f.txt", "local://a//b.txt"], "empty segment"),
        (
            &["cp", "f.txt", "gopher://host/x"],
            "unsupported URL scheme",
        ),
        (&["cp", "f.txt", "s3://Bad_Bucket/x"], "invalid bucket"),
        (
            &["cp", "f.txt", "s3://bkt/x?no_such_option=1"],
            "unknown option",
        ),
        (&["cp", "local://a/../b", "out.txt"], "`..`"),
        (&["cp", "local://missing.txt", "out.txt"], "not found"),
        (&["cp", "-r", "local://missing/", "outdir"], "no objects"),
        (&["cp", "nope.txt", "local://n.txt"], "not found"),
        (&["cp", "-r", "nope", "local://n/"], "not found"),
        (&["cp", "f.txt", "file://relative/x"], "not absolute"),
        (
            &["--endpoint", "not a url", "cp", "f.txt", "s3://bkt/x"],
            "not a URL",
        ),
        (
            &["--timeout", "soon", "cp", "f.txt", "local://t.txt"],
            "duration",
        ),
        (&["cat", "local://"], "names a prefix"),
        (&["cp", "local://dir/", "out.txt"], "names a prefix"),
        (&["ls", "s3://"], "no bucket"),
    ];
    for (args, needle) in cases {
        let r = s.run(args);
        assert_error(&r, 1, needle);
        assert!(r.stdout.is_empty(), "{args:?} wrote to stdout");
        assert!(
            tree(&s.root).is_empty(),
            "{args:?} wrote into the store: {:?}",
            tree(&s.root).keys()
        );
        assert_eq!(tree(&s.work), before, "{args:?} changed the work dir");
        assert!(!s.work.join("outdir").exists(), "{args:?} created outdir");
    }
    assert_eq!(
        std::fs::read_dir(&s.root).unwrap().count(),
        0,
        "the store root stays empty"
    );
}

#[test]
fn help_has_examples() {
    let s = Sandbox::new();
    let top = s.ok(&["--help"]).out();
    assert!(top.contains("EXAMPLES") && top.contains("s3://"), "{top}");
    for cmd in [
        "cp", "ls", "cat", "stat", "rm", "mb", "rb", "health", "verify", "sync",
    ] {
        let h = s.ok(&[cmd, "--help"]).out();
        assert!(h.contains("EXAMPLES"), "cairn {cmd} --help:\n{h}");
        assert!(
            h.contains("--json"),
            "cairn {cmd} --help lacks global options:\n{h}"
        );
    }
}

#[test]
fn make_and_remove_a_file_store() {
    let s = Sandbox::new();
    let dir = s.work.join("store");
    let url = format!("file://{}", dir.display());
    s.ok(&["mb", &url]);
    assert!(dir.is_dir());
    assert_error(&s.run(&["mb", &url]), 1, "already exists");
    s.write("f.txt", b"x");
    s.ok(&["cp", "f.txt", &format!("{url}/")]);
    assert_error(&s.run(&["rb", &url]), 1, "not empty");
    assert!(dir.join("f.txt").exists(), "a refused rb deletes nothing");
    s.ok(&["rb", "--force", &url]);
    assert!(!dir.exists());
    assert_error(&s.run(&["rb", &url]), 1, "no such directory");
    // s3 bucket admin: a clear error, not a crash.
    assert_error(&s.run(&["mb", "s3://some-bucket/key"]), 1, "not a key");
}

#[test]
fn health_of_the_local_store() {
    let s = Sandbox::new();
    let r = s.ok(&["health"]);
    assert!(r.out().starts_with("ok: "), "{}", r.out());
    let r = s.ok(&["health", "--json", "local://"]);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["ok"], true);
    let r = s.run(&["health", "file:///nonexistent-cairn-dir"]);
    assert_error(&r, 1, "no such directory");
}

#[test]
fn root_flag_and_config_file_pick_the_local_store() {
    let s = Sandbox::new();
    s.write("f.txt", b"rooted");
    let other = s.work.join("other-root");
    s.ok(&[
        "--root",
        other.to_str().unwrap(),
        "cp",
        "f.txt",
        "local://k.txt",
    ]);
    assert_eq!(std::fs::read(other.join("k.txt")).unwrap(), b"rooted");
    assert!(tree(&s.root).is_empty());
    let cfg = s.write("cairn.toml", b"max_retries = 3\n");
    s.ok(&["--config", cfg.to_str().unwrap(), "ls"]);
    let bad = s.write("bad.toml", b"regoin = \"x\"\n");
    assert_error(
        &s.run(&["--config", bad.to_str().unwrap(), "ls"]),
        1,
        "regoin",
    );
    assert_error(&s.run(&["-o", "bogus=1", "ls"]), 1, "unknown option");
}

#[test]
fn memory_store_works_within_one_command() {
    let s = Sandbox::new();
    s.write("f.txt", b"m");
    s.ok(&["cp", "f.txt", "memory://k"]);
    assert_error(&s.run(&["cat", "memory://k"]), 1, "not found");
}

#[test]
fn plain_paths_work_for_ls_cat_and_stat() {
    let s = Sandbox::new();
    s.write("d/f.txt", b"plain");
    s.write("d/sub/g.txt", b"g");
    assert_eq!(s.ok(&["ls", "d"]).lines(), vec!["f.txt", "PRE sub/"]);
    assert_eq!(
        s.ok(&["ls", "-r", "../work/d/"]).lines(),
        vec!["f.txt", "sub/g.txt"]
    );
    assert_eq!(s.ok(&["cat", "../work/d/f.txt"]).stdout, b"plain");
    let v: serde_json::Value =
        serde_json::from_slice(&s.ok(&["stat", "--json", "d/f.txt"]).stdout).unwrap();
    assert_eq!(v["size"], 5);
    // Reading never creates: a missing directory is an error, and stays missing.
    assert_error(&s.run(&["ls", "nodir/x"]), 1, "nodir");
    assert!(!s.work.join("nodir").exists());
    assert!(
        !s.work.join("d/.cairn").exists(),
        "reads leave no store files behind"
    );
}

/// Flips one byte of a file in place, keeping its size and modification time (as bit rot does).
fn rot(path: &Path) {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let mut data = std::fs::read(path).unwrap();
    data[0] ^= 0x55;
    std::fs::write(path, &data).unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}

#[test]
fn verify_reports_ok_corrupt_and_unverifiable() {
    let s = Sandbox::new();
    s.write("a.txt", b"hello world\n");
    s.write("b.bin", &bytes(200_000, 3));
    s.ok(&["cp", "a.txt", "local://v/a.txt"]);
    s.ok(&["cp", "b.bin", "local://v/b.bin"]);
    let r = s.ok(&["verify", "local://v/"]);
    assert_eq!(r.lines().len(), 2, "{}", r.out());
    assert!(
        r.lines().iter().all(|l| l.starts_with("ok ")),
        "{}",
        r.out()
    );
    assert!(r.stderr.contains("2 ok, 0 corrupt"), "{}", r.stderr);
    // Without the trailing `/` a name that is no object but has objects below is a prefix.
    let r = s.ok(&["verify", "local://v"]);
    assert!(r.stderr.contains("2 ok, 0 corrupt"), "{}", r.stderr);
    let r = s.run(&["verify", "local://nothing-here"]);
    assert_eq!(r.code, 1, "a missing object is an error: {}", r.stderr);

    // A file put into the store directory by hand has no recorded digest: not checked, so
    // not passed either (exit 2), and named in the summary.
    std::fs::write(s.root.join("v/c.txt"), b"by hand").unwrap();
    let r = s.run(&["verify", "local://v/"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("1 unverifiable") && r.stderr.contains("unverifiable local://v/c.txt"),
        "{}",
        r.stderr
    );
    let r = s.run(&["verify", "--json", "local://v/"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let lines: Vec<serde_json::Value> = r
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{}", r.out());
    assert_eq!(lines[2]["key"], "v/c.txt");
    assert_eq!(lines[2]["status"], "unverifiable");
    assert_eq!(lines[3]["summary"]["ok"], 2);
    assert_eq!(lines[3]["summary"]["unverifiable"], 1);

    rot(&s.root.join("v/b.bin"));
    let r = s.run(&["verify", "local://v/"]);
    assert_eq!(r.code, 2, "{}\n{}", r.out(), r.stderr);
    let out = r.out();
    assert!(out.contains("CORRUPT       local://v/b.bin"), "{out}");
    assert!(out.contains("ok            local://v/a.txt"), "{out}");
    assert!(r.stderr.contains("1 corrupt"), "{}", r.stderr);
    let r = s.run(&["verify", "--json", "local://v/b.bin"]);
    assert_eq!(r.code, 2);
    let v: serde_json::Value = serde_json::from_str(&r.lines()[0]).unwrap();
    assert_eq!(v["status"], "corrupt");
    assert_ne!(v["expected_sha256"], v["actual_sha256"]);
    // One good object alone passes; a missing one is an error.
    s.ok(&["verify", "local://v/a.txt"]);
    assert_error(&s.run(&["verify", "local://v/nope"]), 1, "not found");
}

/// On a terminal (a pty from script(1)), `cp` and `sync` draw bars with bytes, rate, ETA and
/// (sync) objects on stderr; piped, as in every other test, they draw nothing.
#[test]
fn progress_bars_draw_on_a_terminal_only() {
    let s = Sandbox::new();
    s.write("big.bin", &bytes(48 << 20, 3));
    for i in 0..3 {
        s.write(&format!("d/{i}.bin"), &bytes(4 << 20, i));
    }
    let on_tty = |args: &str| -> String {
        let out = std::process::Command::new("script")
            .args(["-qec", &format!("{BIN} {args}"), "/dev/null"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &s.home)
            .env("CAIRN_ROOT", &s.root)
            .env("TERM", "xterm")
            .current_dir(&s.work)
            .stdin(Stdio::null())
            .output()
            .expect("script(1) runs (util-linux / bsdutils)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "cairn {args} on a pty failed:\n{text}"
        );
        text
    };
    let cp = on_tty("cp big.bin local://big.bin");
    assert!(
        cp.contains("/48.00 MiB") && cp.contains("/s eta "),
        "no byte bar with rate and ETA:\n{cp:?}"
    );
    let sync = on_tty("sync d local://d");
    assert!(
        sync.contains("/12.00 MiB") && sync.contains("/3 objects"),
        "no sync bar with bytes and objects:\n{sync:?}"
    );
    assert_eq!(s.ok(&["cat", "local://d/2.bin"]).stdout, bytes(4 << 20, 2));
    // The same commands piped: results only, no bar.
    let piped = s.ok(&["cp", "big.bin", "local://again.bin"]);
    assert!(!piped.stderr.contains("eta"), "{}", piped.stderr);
    std::fs::write(s.work.join("d/3.bin"), b"new").unwrap();
    let piped = s.ok(&["sync", "d", "local://d"]);
    assert!(!piped.stderr.contains("objects"), "{}", piped.stderr);
}
