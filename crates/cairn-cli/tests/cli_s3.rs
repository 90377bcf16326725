//! Drives the real `cairn` binary against the S3 test servers (Garage and moto) started by
//! `scripts/servers/start.sh`. A missing server is a failure, never a skip.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

mod common;
use common::{bytes, tree, var};

const BIN: &str = env!("CARGO_BIN_EXE_cairn");

/// One S3 server's settings, from CAIRN_TEST_<NAME>_*.
#[derive(Clone)]
struct Server {
    endpoint: String,
    bucket: String,
    region: String,
    key_id: String,
    secret: String,
}

impl Server {
    fn from_env(name: &str) -> Server {
        let v = |k: &str| var(&format!("CAIRN_TEST_{name}_{k}"));
        Server {
            endpoint: v("ENDPOINT"),
            bucket: v("BUCKET"),
            region: v("REGION"),
            key_id: v("ACCESS_KEY_ID"),
            secret: v("SECRET_ACCESS_KEY"),
        }
    }
}

fn run_id() -> String {
    var("CAIRN_TEST_RUN_ID")
}

struct Sandbox {
    _dir: tempfile::TempDir,
    work: PathBuf,
    root: PathBuf,
    home: PathBuf,
    server: Server,
    /// `s3://bucket/RUN_ID/cli/TEST` (no trailing slash).
    base: String,
}

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Sandbox {
    fn new(server: &str, test: &str) -> Sandbox {
        let server = Server::from_env(server);
        let dir = tempfile::tempdir().unwrap();
        let (work, root, home) = (
            dir.path().join("work"),
            dir.path().join("root"),
            dir.path().join("home"),
        );
        for d in [&work, &root, &home] {
            std::fs::create_dir_all(d).unwrap();
        }
        let base = format!("s3://{}/{}/cli/{test}", server.bucket, run_id());
        Sandbox {
            _dir: dir,
            work,
            root,
            home,
            server,
            base,
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_as(&self.server, args)
    }

    /// Runs cairn against `server` (its endpoint and credentials), credentials via env only.
    fn run_as(&self, server: &Server, args: &[&str]) -> Run {
        let out = Command::new(BIN)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("CAIRN_ROOT", &self.root)
            .env("AWS_ACCESS_KEY_ID", &server.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &server.secret)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .current_dir(&self.work)
            .args([
                "--endpoint",
                &server.endpoint,
                "--region",
                &server.region,
                "--path-style",
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let r = Run {
            code: out.status.code().expect("exited normally"),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        // A secret never shows, whatever happened (moto's short dummy secret is a common word).
        assert!(
            server.secret.len() < 16
                || !r.stderr.contains(&server.secret)
                    && !String::from_utf8_lossy(&r.stdout).contains(&server.secret),
            "the secret leaked into cairn's output"
        );
        r
    }

    fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "cairn {args:?} failed:\n{}", r.stderr);
        r
    }

    fn write(&self, rel: &str, data: &[u8]) {
        let p = self.work.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

/// A failure with one `error:` line, a non-zero code, nothing on stdout, nothing written locally.
fn assert_clean_failure(s: &Sandbox, r: &Run, needle: &str) {
    assert_ne!(r.code, 0, "expected a failure:\n{}", r.stderr);
    assert!(r.stderr.starts_with("error: "), "stderr:\n{}", r.stderr);
    assert_eq!(
        r.stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.to_lowercase().contains(&needle.to_lowercase()),
        "stderr lacks {needle:?}:\n{}",
        r.stderr
    );
    assert!(
        r.stdout.is_empty(),
        "stdout: {:?}",
        String::from_utf8_lossy(&r.stdout)
    );
    assert!(
        tree(&s.work).is_empty(),
        "written locally: {:?}",
        tree(&s.work).keys()
    );
    assert!(
        tree(&s.root).is_empty(),
        "written to the local store: {:?}",
        tree(&s.root).keys()
    );
}

fn sample_tree(s: &Sandbox) -> BTreeMap<String, Vec<u8>> {
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("tree/a.txt", b"alpha\n".to_vec()),
        ("tree/empty", Vec::new()),
        ("tree/sub/b.json", b"{\"b\":1}".to_vec()),
        ("tree/sub/deeper/ünïcødé 文件.bin", bytes(70_000, 7)),
        // Above the 5 MiB part minimum: a multipart upload on the way in.
        ("tree/sub/deeper/big.bin", bytes(6 * 1024 * 1024 + 17, 9)),
        ("tree/space dir/x y.txt", b"with spaces".to_vec()),
    ];
    for (rel, data) in &files {
        s.write(rel, data);
    }
    files
        .into_iter()
        .map(|(r, d)| (r.strip_prefix("tree/").unwrap().to_string(), d))
        .collect()
}

fn tree_round_trip(server: &str) {
    let s = Sandbox::new(server, "tree");
    let want = sample_tree(&s);
    let dst = format!("{}/", s.base);
    s.ok(&["cp", "-r", "tree", &dst]);

    let listed = String::from_utf8(s.ok(&["ls", "-r", &dst]).stdout).unwrap();
    let prefix = dst.splitn(4, '/').nth(3).unwrap().to_string(); // key prefix inside the bucket
    let mut got: Vec<&str> = listed.lines().collect();
    got.sort();
    let expected: Vec<String> = want.keys().map(|k| format!("{prefix}tree/{k}")).collect();
    assert_eq!(got, expected);

    let cat = s.ok(&["cat", &format!("{dst}tree/sub/deeper/ünïcødé 文件.bin")]);
    assert_eq!(cat.stdout, want["sub/deeper/ünïcødé 文件.bin"]);

    s.ok(&["cp", "-r", &format!("{dst}tree"), "back"]);
    assert_eq!(tree(&s.work.join("back")), want, "every byte comes back");

    // Through the local store and back out to S3 under another prefix.
    s.ok(&["cp", "-r", &format!("{dst}tree"), "local://via/"]);
    s.ok(&["cp", "-r", "local://via/tree", &format!("{}/again", s.base)]);
    s.ok(&["cp", "-r", &format!("{}/again", s.base), "again"]);
    assert_eq!(tree(&s.work.join("again")), want);

    s.ok(&["rm", "-r", &format!("{}/", s.base)]);
    let after = s.ok(&["ls", "-r", &format!("{}/", s.base)]);
    assert!(
        after.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&after.stdout)
    );
}

#[test]
fn garage_tree_round_trip() {
    tree_round_trip("GARAGE");
}

#[test]
fn moto_tree_round_trip() {
    tree_round_trip("MOTO");
}

#[test]
fn garage_single_objects_stdin_and_stat() {
    let s = Sandbox::new("GARAGE", "single");
    s.write("doc.txt", b"hello s3");
    let key = format!("{}/doc.txt", s.base);
    s.ok(&["cp", "--meta", "owner=ana", "doc.txt", &key]);
    let v: serde_json::Value =
        serde_json::from_slice(&s.ok(&["stat", "--json", &key]).stdout).unwrap();
    assert_eq!(v["size"], 8);
    assert_eq!(v["content_type"], "text/plain");
    assert_eq!(v["metadata"]["owner"], "ana");
    assert_eq!(s.ok(&["cp", &key, "-"]).stdout, b"hello s3");
    let r = s.ok(&["health", &format!("s3://{}", s.server.bucket)]);
    assert!(String::from_utf8_lossy(&r.stdout).starts_with("ok"));
    s.ok(&["rm", &key]);
    assert_ne!(s.run(&["stat", &key]).code, 0);
}

#[test]
fn garage_missing_bucket_is_one_clear_error() {
    let s = Sandbox::new("GARAGE", "missing-bucket");
    let missing = format!("s3://cairn-no-such-bucket-{}", run_id());
    let r = s.run(&["cp", &format!("{missing}/k.txt"), "out.txt"]);
    assert_clean_failure(&s, &r, "bucket");
    let r = s.run(&["cp", "-r", &format!("{missing}/dir/"), "outdir"]);
    assert_clean_failure(&s, &r, "bucket");
    let r = s.run(&["ls", &format!("{missing}/")]);
    assert_clean_failure(&s, &r, "bucket");
    let r = s.run(&["health", &missing]);
    assert_clean_failure(&s, &r, "bucket");
}

#[test]
fn garage_bad_credentials_are_one_clear_error() {
    let s = Sandbox::new("GARAGE", "bad-creds");
    let bad = Server {
        secret: "not-the-secret-0000000000000000".into(),
        ..s.server.clone()
    };
    let key = format!("{}/k.txt", s.base);
    let r = s.run_as(&bad, &["cp", &key, "out.txt"]);
    assert_clean_failure(&s, &r, "auth");
    let r = s.run_as(&bad, &["cp", "-r", &format!("{}/", s.base), "outdir"]);
    assert_clean_failure(&s, &r, "auth");
    let r = s.run_as(&bad, &["health", &format!("s3://{}", s.server.bucket)]);
    assert_clean_failure(&s, &r, "auth");
    // An upload with bad credentials fails and leaves nothing behind on the server.
    s.write("up.txt", b"x");
    let r = s.run_as(&bad, &["cp", "up.txt", &key]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    assert_ne!(s.run(&["stat", &key]).code, 0, "nothing was written");
}

#[test]
fn unreachable_endpoint_is_one_clear_error() {
    let s = Sandbox::new("GARAGE", "unreachable");
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        ..s.server.clone()
    };
    let key = format!("{}/k.txt", s.base);
    let r = s.run_as(
        &dead,
        &[
            "--max-retries",
            "1",
            "--timeout",
            "5s",
            "cp",
            &key,
            "out.txt",
        ],
    );
    assert_clean_failure(&s, &r, "network");
    let r = s.run_as(
        &dead,
        &[
            "--max-retries",
            "1",
            "cp",
            "-r",
            &format!("{}/", s.base),
            "outdir",
        ],
    );
    assert_clean_failure(&s, &r, "network");
    let r = s.run_as(
        &dead,
        &[
            "--max-retries",
            "1",
            "health",
            &format!("s3://{}", s.server.bucket),
        ],
    );
    assert_clean_failure(&s, &r, "network");
}

#[test]
fn moto_make_and_remove_a_bucket() {
    let s = Sandbox::new("MOTO", "mb");
    let bucket = format!("s3://cairn-cli-mb-{}", run_id());
    s.ok(&["mb", &bucket]);
    assert!(s.ok(&["ls", &format!("{bucket}/")]).stdout.is_empty());
    s.write("f.txt", b"x");
    s.ok(&["cp", "f.txt", &format!("{bucket}/f.txt")]);
    let r = s.run(&["rb", &bucket]);
    assert_ne!(
        r.code, 0,
        "a non-empty bucket is not removed without --force"
    );
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    assert_eq!(s.ok(&["cat", &format!("{bucket}/f.txt")]).stdout, b"x");
    s.ok(&["rb", "--force", &bucket]);
    let r = s.run(&["ls", &format!("{bucket}/")]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("bucket not found"), "{}", r.stderr);
}

#[test]
fn sync_local_to_garage_and_back() {
    let s = Sandbox::new("GARAGE", "sync");
    s.write("site/index.html", b"<h1>hi</h1>");
    s.write("site/css/a.css", b"body{}");
    s.write("site/big.bin", &bytes(300_000, 5));
    let dst = format!("{}/www/", s.base);
    let r = s.ok(&["--json", "sync", "site", &dst]);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["summary"]["transferred"], 3, "{v}");
    let v: serde_json::Value =
        serde_json::from_slice(&s.ok(&["--json", "sync", "--checksum", "site", &dst]).stdout)
            .unwrap();
    assert_eq!(v["summary"]["transferred"], 0, "{v}");
    assert_eq!(v["summary"]["skipped"], 3, "{v}");
    std::fs::remove_file(s.work.join("site/css/a.css")).unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&s.ok(&["--json", "sync", "--delete", "site", &dst]).stdout)
            .unwrap();
    assert_eq!(v["summary"]["deleted"], 1, "{v}");
    s.ok(&["sync", &dst, "back"]);
    assert_eq!(
        std::fs::read(s.work.join("back/big.bin")).unwrap(),
        bytes(300_000, 5)
    );
    assert!(!s.work.join("back/css/a.css").exists());
    s.ok(&["verify", &dst]);
    s.ok(&["rm", "-r", &dst]);
}

/// `--part-size` and `--parts` shape the multipart upload (moto's ETag counts the parts),
/// `--no-fsync` downloads the same bytes, and a part size S3 refuses is a usage error that
/// writes nothing.
#[test]
fn moto_part_size_flags_shape_the_upload() {
    let s = Sandbox::new("MOTO", "parts");
    let data = bytes(17 * 1024 * 1024 + 5, 31);
    s.write("big.bin", &data);
    let etag = |key: &str| -> String {
        let v: serde_json::Value =
            serde_json::from_slice(&s.ok(&["stat", "--json", key]).stdout).unwrap();
        v["etag"]
            .as_str()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string()
    };
    let dflt = format!("{}/default.bin", s.base);
    s.ok(&["cp", "big.bin", &dflt]);
    assert!(etag(&dflt).ends_with("-3"), "8 MiB parts: {}", etag(&dflt));
    let five = format!("{}/five.bin", s.base);
    s.ok(&["cp", "--part-size", "5M", "--parts", "2", "big.bin", &five]);
    assert!(etag(&five).ends_with("-4"), "5 MiB parts: {}", etag(&five));
    s.ok(&["cp", "--no-fsync", "--part-size", "5M", &five, "back.bin"]);
    assert!(std::fs::read(s.work.join("back.bin")).unwrap() == data);

    let bad = format!("{}/bad.bin", s.base);
    let r = s.run(&["cp", "--part-size", "1M", "big.bin", &bad]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("between 5M and 5G"), "{}", r.stderr);
    assert_ne!(s.run(&["stat", &bad]).code, 0, "nothing was written");
}

/// Puts (or with `body: None` deletes) raw keys cairn cannot name, with botocore (moto's own
/// dependency): the binary under test has no way to write them.
fn raw_s3(server: &Server, ops: &[(&str, Option<&[u8]>)]) {
    let script = r#"
import sys, json, boto3
from botocore.config import Config
a = json.loads(sys.argv[1])
c = boto3.client("s3", endpoint_url=a["endpoint"], region_name=a["region"],
    aws_access_key_id=a["key_id"], aws_secret_access_key=a["secret"],
    config=Config(s3={"addressing_style": "path"}))
for key, body in a["ops"]:
    if body is None:
        c.delete_object(Bucket=a["bucket"], Key=key)
    else:
        c.put_object(Bucket=a["bucket"], Key=key, Body=body.encode())
        c.head_object(Bucket=a["bucket"], Key=key)  # stored under exactly that name
"#;
    let ops: Vec<(String, Option<String>)> = ops
        .iter()
        .map(|(k, b)| {
            (
                k.to_string(),
                b.map(|b| String::from_utf8_lossy(b).into_owned()),
            )
        })
        .collect();
    let arg = serde_json::json!({
        "endpoint": server.endpoint, "region": server.region, "bucket": server.bucket,
        "key_id": server.key_id, "secret": server.secret, "ops": ops,
    });
    let out = Command::new("python3")
        .args(["-c", script, &arg.to_string()])
        .output()
        .expect("python3 with boto3 (moto's dependency) is installed");
    assert!(
        out.status.success(),
        "raw S3 calls: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn json_lines(r: &Run) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&r.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Keys S3 allows and cairn cannot name are outcomes of `ls`, `cp -r`, `verify` and `rm -r`:
/// named, counted in `--json`, exit 2. The rest of the tree is handled as usual.
#[test]
fn moto_objects_cairn_cannot_name_are_named_and_exit_2() {
    let s = Sandbox::new("MOTO", "odd");
    let dir = format!("{}/", s.base);
    let prefix = dir.splitn(4, '/').nth(3).unwrap().to_string();
    let odd = ["a//b", "x/../y", "back\\slash"];
    let full: Vec<String> = odd.iter().map(|k| format!("{prefix}{k}")).collect();
    let puts: Vec<(&str, Option<&[u8]>)> = full
        .iter()
        .map(|k| (k.as_str(), Some(&b"raw"[..])))
        .collect();
    raw_s3(&s.server, &puts);
    s.write("good.txt", b"good");
    s.ok(&["cp", "good.txt", &format!("{dir}good.txt")]);
    // Each shown as `{:?}` would show it (a `\` doubled).
    let named = |stderr: &str, what: &str| {
        for k in odd {
            let k = k.escape_debug().to_string();
            assert!(stderr.contains(&k), "{what}: {k} not named in:\n{stderr}");
        }
    };

    let r = s.run(&["ls", "-r", &dir]);
    assert_eq!(r.code, 2, "ls: {}", r.stderr);
    assert_eq!(
        String::from_utf8_lossy(&r.stdout).trim(),
        format!("{prefix}good.txt")
    );
    named(&r.stderr, "ls");
    let r = s.run(&["ls", "-r", "--json", &dir]);
    assert_eq!(r.code, 2, "ls --json: {}", r.stderr);
    let lines = json_lines(&r);
    assert_eq!(
        lines.iter().filter(|v| v["unlisted"].is_string()).count(),
        3,
        "{lines:?}"
    );
    assert_eq!(lines.last().unwrap()["summary"]["unlisted"], 3, "{lines:?}");

    let r = s.run(&["cp", "-r", &dir, "out"]);
    assert_eq!(r.code, 2, "cp -r: {}", r.stderr);
    named(&r.stderr, "cp -r");
    assert_eq!(
        tree(&s.work.join("out")).keys().collect::<Vec<_>>(),
        ["good.txt"],
        "the rest is copied"
    );
    let r = s.run(&["cp", "-r", "--json", &dir, "out2"]);
    assert_eq!(r.code, 2, "cp -r --json: {}", r.stderr);
    let sum = json_lines(&r).pop().unwrap();
    assert_eq!(sum["summary"]["unlisted"], 3, "{sum}");
    assert_eq!(sum["summary"]["done"], 1, "{sum}");

    let r = s.run(&["verify", &dir]);
    assert_eq!(r.code, 2, "verify: {}", r.stderr);
    let out = String::from_utf8_lossy(&r.stdout);
    assert_eq!(out.matches("UNLISTED").count(), 3, "{out}");
    assert!(r.stderr.contains("3 unlisted"), "{}", r.stderr);
    let r = s.run(&["verify", "--json", &dir]);
    assert_eq!(json_lines(&r).pop().unwrap()["summary"]["unlisted"], 3);

    // sync copies the rest, names each one, counts it, exits 2; --delete keeps going too.
    let r = s.run(&["sync", "--delete", &dir, "synced"]);
    assert_eq!(r.code, 2, "sync: {}", r.stderr);
    for k in odd {
        // sync's failure lines show keys as they are.
        assert!(
            r.stderr.contains(&format!(" {k}: ")),
            "sync: {k} not named in:\n{}",
            r.stderr
        );
    }
    assert_eq!(
        tree(&s.work.join("synced")).keys().collect::<Vec<_>>(),
        ["good.txt"]
    );
    let r = s.run(&["--json", "sync", &dir, "synced"]);
    assert_eq!(r.code, 2, "sync --json: {}", r.stderr);
    let sum = &json_lines(&r).pop().unwrap()["summary"];
    assert_eq!(
        (
            sum["unlisted"].as_u64(),
            sum["failed"].as_u64(),
            sum["skipped"].as_u64()
        ),
        (Some(3), Some(3), Some(1)),
        "{sum}"
    );

    let r = s.run(&["rm", "-r", &dir]);
    assert_eq!(r.code, 2, "rm -r: {}", r.stderr);
    named(&r.stderr, "rm -r");
    // The good object is gone; the others are still there, and still said.
    let r = s.run(&["ls", "-r", &dir]);
    assert_eq!(r.code, 2);
    assert!(
        r.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );

    let dels: Vec<(&str, Option<&[u8]>)> = full.iter().map(|k| (k.as_str(), None)).collect();
    raw_s3(&s.server, &dels);
    s.ok(&["ls", "-r", &dir]);
}

/// `cairn health` tries both conditional puts and says what the server does; a provider row
/// that claims more than that is a warning.
#[test]
fn health_probes_conditional_puts() {
    for (server, word) in [("GARAGE", "ignored"), ("MOTO", "enforced")] {
        let s = Sandbox::new(server, "health");
        let bucket = format!("s3://{}/{}/cli/health/", s.server.bucket, run_id());
        let r = s.ok(&["health", &bucket]);
        let out = String::from_utf8_lossy(&r.stdout);
        assert!(
            out.contains(&format!("If-None-Match: {word}, If-Match: {word}")),
            "{server}: {out}"
        );
        // No provider given: the conservative row, which claims nothing, so no warning.
        assert!(out.contains("provider row: generic"), "{server}: {out}");
        assert!(!r.stderr.contains("warning"), "{server}: {}", r.stderr);
        let r = s.ok(&["health", "--json", &bucket]);
        let v = json_lines(&r).pop().unwrap();
        assert_eq!(v["if_none_match"], word, "{server}: {v}");
        assert_eq!(v["claims"]["conditional_create"], false, "{server}: {v}");
    }
    // Garage with the AWS row: the claim is wrong, and health says so.
    let s = Sandbox::new("GARAGE", "health-aws");
    let url = format!("s3://{}?provider=aws", s.server.bucket);
    let r = s.ok(&["health", &url]);
    assert!(
        r.stderr.contains("warning:") && r.stderr.contains("If-None-Match"),
        "{}",
        r.stderr
    );
    let r = s.ok(&["-q", "health", &url]);
    assert!(
        !r.stderr.contains("warning"),
        "-q silences it: {}",
        r.stderr
    );
}

/// The library's warnings reach stderr by default (here: a multipart object whose checksum
/// manifest is gone reads as unverifiable), and `-q` silences them.
#[test]
fn moto_warnings_show_by_default_and_quiet_silences_them() {
    let s = Sandbox::new("MOTO", "warn");
    // Above the multipart threshold: its digest lives in a manifest.
    s.write("big.bin", &bytes(17 * 1024 * 1024, 5));
    let key = format!("{}/big.bin", s.base);
    s.ok(&["cp", "big.bin", &key]);
    let full = key.splitn(4, '/').nth(3).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())",
            full,
        ])
        .output()
        .unwrap();
    let manifest = format!(
        ".cairn-manifests/{}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
    raw_s3(&s.server, &[(manifest.as_str(), None)]);
    let r = s.ok(&["stat", &key]);
    assert!(
        r.stderr.contains("WARN") && r.stderr.contains("unverifiable"),
        "stderr: {}",
        r.stderr
    );
    let r = s.ok(&["-q", "stat", &key]);
    assert!(r.stderr.is_empty(), "-q: {}", r.stderr);
}
