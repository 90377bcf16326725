//! Objects another tool wrote carry no recorded SHA-256: `cairn cp`, `cp -r`, `sync` and `cat`
//! copy them but name them as unverified, count them in `--json`, and exit 2; a cairn-written
//! object exits 0; `-o checksum=false` opts out. Against moto, the foreign object put with the
//! AWS SDK as the aws cli or boto3 would.

mod common;
use common::s3::S3;
use common::{bytes, Sandbox};

struct Env {
    s3: S3,
    sb: Sandbox,
    prefix: String,
    body: Vec<u8>,
}

/// `prefix/foreign` put by the SDK and `prefix/own` put by `cairn cp`, same bytes.
fn setup(suite: &str) -> Env {
    let s3 = S3::from_env("MOTO");
    let sb = s3.sandbox();
    let prefix = s3.prefix(suite);
    let body = bytes(3000, 11);
    s3.rt
        .block_on(
            s3.admin
                .sdk()
                .put_object()
                .bucket(&s3.bucket)
                .key(format!("{prefix}/foreign"))
                .body(body.clone().into())
                .send(),
        )
        .unwrap_or_else(|e| panic!("foreign put: {e:?}"));
    sb.write("own", &body);
    let own = s3.url(&format!("{prefix}/own"));
    sb.ok(&s3.args(&["cp", "own", &own]));
    std::fs::remove_file(sb.work.join("own")).unwrap();
    Env {
        s3,
        sb,
        prefix,
        body,
    }
}

const WHY: &str = "no SHA-256 recorded: written by another tool; its bytes were not checked";

#[test]
fn moto_cp_of_a_foreign_object_is_unverified_exit_2() {
    let Env {
        s3,
        sb,
        prefix,
        body,
    } = setup("unverified-cp");
    let foreign = s3.url(&format!("{prefix}/foreign"));
    let own = s3.url(&format!("{prefix}/own"));

    let r = sb.run(&s3.args(&["cp", &foreign, "./x", "--json"]));
    assert_eq!(r.code, 2, "stdout {}\nstderr {}", r.out(), r.stderr);
    assert_eq!(
        std::fs::read(sb.work.join("x")).unwrap(),
        body,
        "still copied"
    );
    let v = r.json();
    assert_eq!(v["unverified"], 1, "{v}");
    assert_eq!(v["outcome"], "unverified", "{v}");
    assert!(
        r.stderr
            .contains(&format!("1 unverified: {foreign} ({WHY})")),
        "named in the summary: {}",
        r.stderr
    );
    assert!(r.stderr.contains("checksum=false"), "{}", r.stderr);

    // Human mode too.
    let r = sb.run(&s3.args(&["cp", &foreign, "./y"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(&foreign), "{}", r.stderr);

    // Written through cairn: checked, exit 0.
    let r = sb.ok(&s3.args(&["cp", &own, "./z", "--json"]));
    let v = r.json();
    assert_eq!(v["unverified"], 0, "{v}");
    assert_eq!(v["outcome"], "transferred", "{v}");
    assert!(!r.stderr.contains("unverified"), "{}", r.stderr);

    // Opted out: nothing checked, nothing named.
    let r = sb.ok(&s3.args(&["-o", "checksum=false", "cp", &foreign, "./w", "--json"]));
    assert_eq!(r.json()["unverified"], 0);

    // Store to store through the client: the destination would record a digest of bytes
    // nothing checked, so the copy says so.
    let copy = s3.url(&format!("{prefix}/copied/foreign"));
    let r = sb.run(&s3.args(&["cp", &foreign, &copy]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(WHY), "{}", r.stderr);

    // To stdout: the bytes are out, the warning and the exit code follow.
    let r = sb.run(&s3.args(&["cp", &foreign, "-"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(r.stdout, body);
    assert!(r.stderr.contains(WHY), "{}", r.stderr);
}

#[test]
fn moto_cat_of_a_foreign_object_warns_and_exits_2() {
    let Env {
        s3,
        sb,
        prefix,
        body,
    } = setup("unverified-cat");
    let foreign = s3.url(&format!("{prefix}/foreign"));
    let r = sb.run(&s3.args(&["cat", &foreign]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(r.stdout, body, "streamed all the same");
    assert!(
        r.stderr
            .contains(&format!("1 unverified: {foreign} ({WHY})")),
        "{}",
        r.stderr
    );
    let r = sb.ok(&s3.args(&["cat", &s3.url(&format!("{prefix}/own"))]));
    assert_eq!(r.stdout, body);
    let r = sb.ok(&s3.args(&["-o", "checksum=false", "cat", &foreign]));
    assert_eq!(r.stdout, body);
}

#[test]
fn moto_cp_r_and_sync_name_and_count_unverified() {
    let Env { s3, sb, prefix, .. } = setup("unverified-tree");
    let src = s3.url(&format!("{prefix}/"));

    let r = sb.run(&s3.args(&["cp", "-r", &src, "./tree", "--json"]));
    assert_eq!(r.code, 2, "stdout {}\nstderr {}", r.out(), r.stderr);
    let lines: Vec<serde_json::Value> = r
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["unverified"], 1, "{summary}");
    assert_eq!(summary["done"], 2, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    let item = |k: &str| {
        lines
            .iter()
            .find(|l| l["copied"] == k)
            .unwrap_or_else(|| panic!("no line for {k}: {lines:?}"))
            .clone()
    };
    assert_eq!(item("foreign")["outcome"], "unverified");
    assert_eq!(item("own")["outcome"], "transferred");
    assert!(r.stderr.contains("1 unverified: foreign ("), "{}", r.stderr);

    let r = sb.run(&s3.args(&["sync", &src, "./synced", "--json"]));
    assert_eq!(r.code, 2, "stdout {}\nstderr {}", r.out(), r.stderr);
    let summary = &r.json()["summary"];
    assert_eq!(summary["unverified"], 1, "{summary}");
    assert_eq!(summary["transferred"], 2, "{summary}");
    assert_eq!(summary["unverified_keys"][0], "foreign", "{summary}");
    assert!(
        r.stderr
            .contains(&format!("1 unverified: {}foreign (", src)),
        "named in full: {}",
        r.stderr
    );
    assert!(sb.work.join("synced/foreign").is_file());

    // Human summary of a sync names the count; opting out exits 0.
    let r = sb.run(&s3.args(&["sync", &src, "./synced2"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("unverified 1"), "{}", r.stderr);
    sb.ok(&s3.args(&["-o", "checksum=false", "sync", &src, "./synced3"]));

    // A plain directory's files are the user's own: uploading them is not unverified.
    let dst = s3.url(&format!("{prefix}/up/"));
    sb.ok(&s3.args(&["sync", "./synced", &dst]));
}
