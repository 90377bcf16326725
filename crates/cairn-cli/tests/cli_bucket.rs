//! Bucket administration, versions, presigned URLs, multipart clean-up and stats, driven
//! through the real `cairn` binary against moto (breadth) and Garage (what a real engine
//! lacks). Each test makes buckets of its own and removes them.

mod common;

use common::{var, Run, Sandbox};
use futures::StreamExt;
use std::process::Command;

struct S3 {
    sb: Sandbox,
    flags: Vec<String>,
    name: &'static str,
}

impl S3 {
    fn new(server: &'static str) -> S3 {
        let v = |k: &str| var(&format!("CAIRN_TEST_{server}_{k}"));
        let mut sb = Sandbox::new();
        sb.env
            .push(("AWS_ACCESS_KEY_ID".into(), v("ACCESS_KEY_ID")));
        sb.env
            .push(("AWS_SECRET_ACCESS_KEY".into(), v("SECRET_ACCESS_KEY")));
        sb.env
            .push(("AWS_EC2_METADATA_DISABLED".into(), "true".into()));
        let flags = vec![
            "--endpoint".into(),
            v("ENDPOINT"),
            "--region".into(),
            v("REGION"),
            "--path-style".into(),
            "-o".into(),
            format!("provider={}", server.to_ascii_lowercase()),
        ];
        S3 {
            sb,
            flags,
            name: server,
        }
    }

    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        self.flags
            .iter()
            .map(String::as_str)
            .chain(args.iter().copied())
            .collect()
    }

    fn run(&self, args: &[&str]) -> Run {
        self.sb.run(&self.args(args))
    }

    fn ok(&self, args: &[&str]) -> Run {
        self.sb.ok(&self.args(args))
    }

    fn fails(&self, args: &[&str], needle: &str) -> Run {
        let r = self.run(args);
        assert_eq!(
            r.code,
            1,
            "{}: cairn {args:?} should fail:\n{}{}",
            self.name,
            r.out(),
            r.stderr
        );
        assert!(
            r.stderr.contains(needle),
            "{}: stderr lacks {needle:?}:\n{}",
            self.name,
            r.stderr
        );
        assert!(r.stdout.is_empty(), "stdout: {}", r.out());
        r
    }

    /// A fresh bucket, created through the CLI.
    fn bucket(&self, what: &str, extra: &[&str]) -> String {
        let url = format!(
            "s3://{}-{what}-{:06x}",
            var("CAIRN_TEST_RUN_ID"),
            rand_u32() & 0xffffff
        );
        let mut a = vec!["bucket", "create", url.as_str()];
        a.extend_from_slice(extra);
        self.ok(&a);
        url
    }

    fn json_lines(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        self.ok(&a)
            .lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish() as u32
}

fn curl(args: &[&str]) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let mut body = out.stdout;
    let nl = body.iter().rposition(|b| *b == b'\n').unwrap();
    let code = String::from_utf8_lossy(&body[nl + 1..]).parse().unwrap();
    body.truncate(nl);
    (code, body)
}

#[test]
fn bucket_settings_round_trip_on_moto() {
    let s = S3::new("MOTO");
    let b = s.bucket("cfg", &[]);
    let one = |args: &[&str]| s.json_lines(args).remove(0);

    assert_eq!(one(&["bucket", "versioning", &b])["versioning"], "off");
    assert_eq!(
        one(&["bucket", "versioning", &b, "on"])["versioning"],
        "enabled"
    );
    assert_eq!(one(&["bucket", "versioning", &b])["versioning"], "enabled");

    let e = one(&["bucket", "encryption", "set", &b, "aes256"]);
    assert_eq!(e["encryption"]["algorithm"], "AES256", "{e}");
    let e = one(&["bucket", "encryption", "get", &b]);
    assert_eq!(e["encryption"]["algorithm"], "AES256", "{e}");
    s.fails(
        &[
            "bucket",
            "encryption",
            "set",
            &b,
            "aes256",
            "--kms-key",
            "k1",
        ],
        "KMS key only goes with aws:kms",
    );

    let rules = r#"
[[rule]]
id = "logs"
prefix = "logs/"
transitions = [{ days = 30, storage_class = "STANDARD_IA" }, { days = 90, storage_class = "GLACIER" }]
expiration_days = 365
noncurrent_expiration_days = 60

[[rule]]
id = "abort"
abort_incomplete_multipart_days = 2
"#;
    s.sb.write("rules.toml", rules.as_bytes());
    s.ok(&["bucket", "lifecycle", "set", &b, "rules.toml"]);
    let got = one(&["bucket", "lifecycle", "get", &b]);
    let want = serde_json::json!([
        {"id": "logs", "prefix": "logs/", "expiration_days": 365, "noncurrent_expiration_days": 60,
         "transitions": [{"days": 30, "storage_class": "STANDARD_IA"}, {"days": 90, "storage_class": "GLACIER"}]},
        {"id": "abort", "prefix": "", "abort_incomplete_multipart_days": 2},
    ]);
    assert_eq!(got["rules"], want);
    s.sb.write("bad.toml", b"[[rule]]\nid = \"x\"\n");
    s.fails(
        &["bucket", "lifecycle", "set", &b, "bad.toml"],
        "has no action",
    );
    assert_eq!(
        one(&["bucket", "lifecycle", "get", &b])["rules"],
        want,
        "a bad file changes nothing"
    );
    s.ok(&["bucket", "lifecycle", "rm", &b]);
    assert_eq!(
        one(&["bucket", "lifecycle", "get", &b])["rules"],
        serde_json::json!([])
    );

    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"PublicRead","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{}/*"}}]}}"#,
        b.trim_start_matches("s3://")
    );
    s.sb.write("policy.json", policy.as_bytes());
    s.ok(&["bucket", "policy", "set", &b, "policy.json"]);
    let got = one(&["bucket", "policy", "get", &b]);
    assert_eq!(got["policy"]["Statement"][0]["Sid"], "PublicRead", "{got}");
    s.sb.write("broken.json", b"{\"Version\": ");
    s.fails(
        &["bucket", "policy", "set", &b, "broken.json"],
        "not valid JSON",
    );
    s.ok(&["bucket", "policy", "rm", &b]);
    assert!(one(&["bucket", "policy", "get", &b])["policy"].is_null());

    let acl = one(&["bucket", "acl", &b, "public-read"]);
    let grants = acl["grants"].as_array().unwrap();
    assert!(
        grants.iter().any(|g| g["permission"] == "READ"
            && g["grantee"].as_str().unwrap().ends_with("/global/AllUsers")),
        "{acl}"
    );
    s.fails(
        &["bucket", "acl", &b, "world-writable"],
        "unknown bucket ACL",
    );

    let info = one(&["bucket", "info", &b]);
    assert_eq!(info["info"]["versioning"], "enabled");
    assert_eq!(info["unsupported"], serde_json::json!([]));
    s.ok(&["bucket", "rm", &b, "--force"]);
    s.fails(&["bucket", "info", &b], "");
}

#[test]
fn setup_applies_a_preset_once_and_then_changes_nothing() {
    let s = S3::new("MOTO");
    let b = s.bucket("setup", &[]);
    let plan = s
        .json_lines(&["setup", &b, "--preset", "analysis", "--dry-run"])
        .remove(0);
    let settings: Vec<&str> = plan["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["setting"].as_str().unwrap())
        .collect();
    assert_eq!(settings, ["versioning", "encryption", "lifecycle"]);
    let lc = s.json_lines(&["bucket", "lifecycle", "get", &b]).remove(0);
    assert_eq!(
        lc["rules"],
        serde_json::json!([]),
        "a dry run changes nothing"
    );

    let done = s
        .json_lines(&["setup", &b, "--preset", "analysis"])
        .remove(0);
    assert_eq!(done["changed"].as_array().unwrap().len(), 3, "{done}");
    let info = s.json_lines(&["bucket", "info", &b]).remove(0);
    assert_eq!(info["info"]["versioning"], "enabled");
    assert_eq!(info["info"]["encryption"]["algorithm"], "AES256");
    let rules = info["lifecycle"].as_array().unwrap();
    let tier = rules.iter().find(|r| r["id"] == "tier-and-expire").unwrap();
    assert_eq!(
        tier["transitions"][0],
        serde_json::json!({"days": 30, "storage_class": "STANDARD_IA"})
    );
    assert_eq!(
        tier["transitions"][1],
        serde_json::json!({"days": 90, "storage_class": "GLACIER"})
    );
    assert_eq!(tier["expiration_days"], 365);

    let again = s.ok(&["setup", &b, "--preset", "analysis"]);
    assert!(again.out().contains("nothing changed"), "{}", again.out());
    s.fails(&["setup", &b, "--preset", "nope"], "no preset \"nope\"");
    s.ok(&["bucket", "rm", &b, "--force"]);
}

#[test]
fn garage_says_what_it_cannot_do_before_changing_anything() {
    let s = S3::new("GARAGE");
    let b = s.bucket("lacks", &[]);
    s.fails(
        &["bucket", "versioning", &b, "on"],
        "does not implement versioning",
    );
    s.fails(
        &["bucket", "encryption", "set", &b, "aes256"],
        "does not implement default bucket encryption",
    );
    s.fails(
        &["bucket", "acl", &b, "public-read"],
        "does not implement ACLs",
    );
    s.sb.write("p.json", b"{\"Version\":\"2012-10-17\",\"Statement\":[]}");
    s.fails(
        &["bucket", "policy", "set", &b, "p.json"],
        "does not implement bucket policies",
    );
    s.fails(
        &[
            "bucket",
            "create",
            "s3://cairn-never-made-lock",
            "--object-lock",
        ],
        "does not implement S3 Object Lock",
    );

    // Expiration and abort rules work; transitions are refused before anything is sent.
    s.sb.write("keep.toml", b"[[rule]]\nid = \"tmp\"\nprefix = \"tmp/\"\nexpiration_days = 3\n\n[[rule]]\nid = \"abort\"\nabort_incomplete_multipart_days = 1\n");
    s.ok(&["bucket", "lifecycle", "set", &b, "keep.toml"]);
    let kept = s.json_lines(&["bucket", "lifecycle", "get", &b]).remove(0);
    assert_eq!(
        kept["rules"],
        serde_json::json!([
            {"id": "tmp", "prefix": "tmp/", "expiration_days": 3},
            {"id": "abort", "prefix": "", "abort_incomplete_multipart_days": 1},
        ])
    );
    s.sb.write("move.toml", b"[[rule]]\nid = \"tier\"\ntransitions = [{ days = 30, storage_class = \"STANDARD_IA\" }]\n");
    s.fails(
        &["bucket", "lifecycle", "set", &b, "move.toml"],
        "keeps no lifecycle transitions",
    );
    s.fails(
        &["setup", &b, "--preset", "analysis"],
        "nothing was changed",
    );
    let after = s.json_lines(&["bucket", "lifecycle", "get", &b]).remove(0);
    assert_eq!(after["rules"], kept["rules"], "refusals changed nothing");

    // --skip-unsupported applies the rest, names what it skipped, and is then idempotent.
    let done = s
        .json_lines(&["setup", &b, "--preset", "analysis", "--skip-unsupported"])
        .remove(0);
    assert_eq!(done["skipped"].as_array().unwrap().len(), 3, "{done}");
    let rules = s.json_lines(&["bucket", "lifecycle", "get", &b]).remove(0);
    let ids: Vec<&str> = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["tier-and-expire", "abort-incomplete-multipart"]);
    let plan = s
        .json_lines(&["setup", &b, "--preset", "analysis", "--dry-run"])
        .remove(0);
    let left: Vec<&str> = plan["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["setting"].as_str().unwrap())
        .collect();
    assert_eq!(
        left,
        ["versioning", "encryption"],
        "the lifecycle is as this server can hold it"
    );
    let info = s.json_lines(&["bucket", "info", &b]).remove(0);
    assert_eq!(
        info["unsupported"],
        serde_json::json!([
            "versioning",
            "default encryption",
            "ACLs",
            "bucket policies",
            "object lock",
            "lifecycle transitions"
        ])
    );
    s.ok(&["bucket", "rm", &b, "--force"]);
}

#[test]
fn versions_list_read_restore_and_delete_through_a_compressing_store() {
    let s = S3::new("MOTO");
    let b = s.bucket("ver", &[]);
    s.ok(&["bucket", "versioning", &b, "on"]);
    let key = format!("{b}/analysis/2025/03/run.json");
    let v1 = br#"{"run": 1, "rows": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]}"#
        .repeat(50);
    let v2 = br#"{"run": 2}"#.to_vec();
    s.sb.write("v1.json", &v1);
    s.sb.write("v2.json", &v2);
    let z = ["-o", "compression=zstd"];
    s.ok(&[&z[..], &["cp", "v1.json", &key]].concat());
    s.ok(&[&z[..], &["cp", "v2.json", &key]].concat());

    let listed = s.json_lines(&["versions", "ls", &format!("{b}/analysis/")]);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["key"], "analysis/2025/03/run.json");
    assert_eq!(
        (
            listed[0]["is_latest"].as_bool(),
            listed[1]["is_latest"].as_bool()
        ),
        (Some(true), Some(false))
    );
    let old = listed[1]["version_id"].as_str().unwrap().to_string();

    assert_eq!(
        s.ok(&[&z[..], &["cat", "--version-id", &old, &key]].concat())
            .stdout,
        v1
    );
    assert_eq!(s.ok(&["cat", &key]).stdout, v2);
    s.ok(&[&z[..], &["cp", "--version-id", &old, &key, "back.json"]].concat());
    assert_eq!(std::fs::read(s.sb.work.join("back.json")).unwrap(), v1);
    let copy = format!("{b}/copies/run-v1.json");
    s.ok(&[&z[..], &["cp", "--version-id", &old, &key, &copy]].concat());
    assert_eq!(s.ok(&["cat", &copy]).stdout, v1);
    s.fails(
        &["cp", "--version-id", &old, "v1.json", &copy],
        "names a version of a stored object",
    );
    s.ok(&["versions", "restore", &key, &old]);
    assert_eq!(
        s.ok(&["cat", &key]).stdout,
        v1,
        "the old version is current again, still readable"
    );
    assert_eq!(
        s.json_lines(&["versions", "ls", &key]).len(),
        3,
        "restoring keeps the history"
    );

    s.ok(&["rm", "--version-id", &old, &key]);
    let left = s.json_lines(&["versions", "ls", &key]);
    assert!(
        left.iter().all(|v| v["version_id"] != old.as_str()),
        "{left:?}"
    );
    s.fails(&["cat", "--version-id", "", &key], "bad version id");
    s.fails(
        &["cat", "--version-id", "v1", "local://x"],
        "needs an S3 server",
    );
    s.ok(&["bucket", "rm", &b, "--force"]);
}

#[test]
fn presigned_urls_work_with_curl_against_garage_and_expire() {
    let s = S3::new("GARAGE");
    let b = s.bucket("sign", &[]);
    let obj = format!("{b}/shared/report.csv");
    let body = b"id,name\n1,alpha\n2,beta\n";
    s.sb.write("report.csv", body);

    let put = s
        .ok(&["presign", "--method", "put", "--expires", "10m", &obj])
        .out();
    assert_eq!(put.lines().count(), 1, "only the URL on stdout: {put}");
    let path = s.sb.work.join("report.csv");
    let (code, _) = curl(&["-T", path.to_str().unwrap(), put.trim()]);
    assert_eq!(code, 200);
    // Written by curl, not cairn: no SHA-256 recorded, so cat prints it unchecked, names it
    // as unverified and exits 2.
    let cat = s.run(&["cat", &obj]);
    assert_eq!(cat.stdout, body);
    assert_eq!(cat.code, 2, "{}", cat.stderr);
    assert!(
        cat.stderr
            .contains(&format!("1 unverified: {obj} (no SHA-256 recorded")),
        "{}",
        cat.stderr
    );

    let get = s.ok(&["presign", &obj]).out();
    assert_eq!(curl(&[get.trim()]), (200, body.to_vec()));
    let head = s.ok(&["presign", "--method", "head", &obj]).out();
    assert_eq!(curl(&["-I", head.trim()]).0, 200);
    // Garage checks signatures: a tampered one is refused.
    let tampered = get.trim().replace("X-Amz-Signature=", "X-Amz-Signature=0");
    assert_eq!(curl(&[&tampered]).0, 403);
    let short = s.ok(&["presign", "--expires", "1s", &obj]).out();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let (code, _) = curl(&[short.trim()]);
    assert!(
        code == 400 || code == 403,
        "an expired URL is refused, got {code}"
    );

    s.fails(&["presign", "--expires", "8d", &obj], "1 s to 7 days");
    s.fails(&["presign", "--expires", "soon", &obj], "--expires");
    s.fails(
        &["-o", "compression=zstd", "presign", &obj],
        "bypasses cairn",
    );
    s.fails(&["presign", "local://a.txt"], "needs an S3 server");
    s.ok(&["bucket", "rm", &b, "--force"]);
}

#[test]
fn multipart_uploads_are_listed_and_aborted_by_age() {
    let s = S3::new("GARAGE");
    let b = s.bucket("mpu", &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = cairn::Config::default();
    for (k, val) in [
        ("endpoint", var("CAIRN_TEST_GARAGE_ENDPOINT")),
        ("region", var("CAIRN_TEST_GARAGE_REGION")),
        ("access_key_id", var("CAIRN_TEST_GARAGE_ACCESS_KEY_ID")),
        (
            "secret_access_key",
            var("CAIRN_TEST_GARAGE_SECRET_ACCESS_KEY"),
        ),
        ("allow_http", "true".into()),
        ("path_style", "true".into()),
        ("provider", "garage".into()),
    ] {
        c.set(k, &val).unwrap();
    }
    let (admin, bucket) = rt.block_on(cairn::open_admin(&b, c)).unwrap();
    for i in 0..3 {
        rt.block_on(async {
            let key = format!("tmp/left-{i}.bin");
            let up = admin
                .sdk()
                .create_multipart_upload()
                .bucket(&bucket)
                .key(&key)
                .send()
                .await
                .unwrap();
            let part = vec![b'x'; 1000 + i];
            admin
                .sdk()
                .upload_part()
                .bucket(&bucket)
                .key(&key)
                .upload_id(up.upload_id().unwrap())
                .part_number(1)
                .body(part.into())
                .send()
                .await
                .unwrap();
        });
    }
    let listed = s.json_lines(&["multipart", "ls", &format!("{b}/tmp/")]);
    let uploads: Vec<&serde_json::Value> = listed
        .iter()
        .filter(|l| l.get("upload").is_some())
        .collect();
    assert_eq!(uploads.len(), 3, "{listed:?}");
    let mut sizes: Vec<u64> = uploads
        .iter()
        .map(|u| u["upload"]["size"].as_u64().unwrap())
        .collect();
    sizes.sort(); // Garage lists uploads in upload-id order
    assert_eq!(sizes, [1000, 1001, 1002]);
    assert!(uploads.iter().all(|u| u["upload"]["parts"] == 1));

    let health = s.json_lines(&["health", &format!("{b}/")]).remove(0);
    assert_eq!(
        health["stale_uploads"],
        serde_json::json!({"count": 0, "bytes": 0}),
        "minutes-old uploads are not stale"
    );
    let young = s.json_lines(&["multipart", "abort", "--older-than", "1d", &format!("{b}/")]);
    assert_eq!(
        young.last().unwrap()["summary"]["uploads"],
        0,
        "none is a day old"
    );
    let dry = s.json_lines(&[
        "multipart",
        "abort",
        "--older-than",
        "0s",
        "--dry-run",
        &format!("{b}/"),
    ]);
    assert_eq!(
        dry.last().unwrap()["summary"],
        serde_json::json!({"uploads": 3, "aborted": 0, "failed": 0})
    );
    let done = s.json_lines(&["multipart", "abort", "--older-than", "0s", &format!("{b}/")]);
    assert_eq!(
        done.last().unwrap()["summary"],
        serde_json::json!({"uploads": 3, "aborted": 3, "failed": 0})
    );
    let after = s.json_lines(&["multipart", "ls", &format!("{b}/")]);
    assert_eq!(after.last().unwrap()["summary"]["uploads"], 0, "{after:?}");
    s.fails(
        &["multipart", "abort", "--older-than", "yesterday", &b],
        "--older-than",
    );
    s.ok(&["bucket", "rm", &b, "--force"]);
}

/// Peak RSS of this test's children so far, in KiB (nextest runs each test in a process).
fn children_peak_kib() -> i64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    u.ru_maxrss
}

#[test]
fn stats_over_twenty_thousand_objects_match_the_listing_in_flat_memory() {
    let s = S3::new("GARAGE");
    let b = s.bucket("stats", &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = cairn::Config::default();
    for (k, val) in [
        ("endpoint", var("CAIRN_TEST_GARAGE_ENDPOINT")),
        ("region", var("CAIRN_TEST_GARAGE_REGION")),
        ("access_key_id", var("CAIRN_TEST_GARAGE_ACCESS_KEY_ID")),
        (
            "secret_access_key",
            var("CAIRN_TEST_GARAGE_SECRET_ACCESS_KEY"),
        ),
        ("allow_http", "true".into()),
        ("path_style", "true".into()),
        ("provider", "garage".into()),
        ("checksum", "false".into()),
    ] {
        c.set(k, &val).unwrap();
    }
    let store = rt.block_on(cairn::open_with(&b, c)).unwrap();
    const N: usize = 20_000;
    rt.block_on(async {
        futures::stream::iter(0..N)
            .map(|i| {
                let store = store.clone();
                async move {
                    // year/month layout: 2 years x 12 months; sizes vary so sums mean something.
                    let key = format!("analysis/{}/{:02}/{i:05}.json", 2024 + i % 2, 1 + i % 12);
                    let body = vec![b'{'; 1 + i % 7];
                    cairn::StoreExt::put(&*store, &cairn::Key::new(&key).unwrap(), body)
                        .await
                        .unwrap();
                }
            })
            .buffer_unordered(64)
            .collect::<Vec<_>>()
            .await
    });
    let want_bytes: u64 = (0..N).map(|i| 1 + (i % 7) as u64).sum();

    // A small prefix first: its peak is the baseline the big run must stay near.
    let small = s
        .json_lines(&["stats", &format!("{b}/analysis/2024/01/")])
        .remove(0);
    let base = children_peak_kib();
    let all = s
        .json_lines(&["stats", "--depth", "2", &format!("{b}/analysis/")])
        .remove(0);
    let peak = children_peak_kib();
    assert!(small["stats"]["total"]["objects"].as_u64().unwrap() > 0);
    assert_eq!(
        all["stats"]["total"],
        serde_json::json!({"objects": N, "bytes": want_bytes})
    );
    assert_eq!(all["stats"]["by_class"]["STANDARD"]["objects"], N as u64);
    let groups = all["stats"]["by_prefix"].as_object().unwrap();
    assert_eq!(groups.len(), 12, "year/month groups: {groups:?}");
    let listed = s.ok(&["ls", "-r", &format!("{b}/analysis/")]).lines().len();
    assert_eq!(listed, N, "stats count what ls lists");
    assert!(
        peak - base < 16 * 1024,
        "memory grew from {base} KiB to {peak} KiB for 20,000 objects"
    );
    s.ok(&["bucket", "rm", &b, "--force"]);
}
