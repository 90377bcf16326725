//! The secrets sweep: the `cairn` binary driven through every error path that needs no server
//! (refused endpoint, plain http off this machine, bad options, missing, malformed and wrong
//! encryption keys, SSE-C, presign) at every log level. No output ever holds the secret key,
//! the session token, an SSE-C key or the encryption key; presigned URLs print only from
//! `cairn presign`. `Debug` of configs, URLs, stores and errors holds no secret either.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cairn");

// Distinctive markers: any of them in any output is a leak.
const SECRET: &str = "SeCrEtKeYmArKeR0123456789abcdefghijklmn";
const TOKEN: &str = "SeSsIoNtOkEnMaRkEr0123456789";
/// 32 bytes as hex; the marker is its distinctive middle.
const ENC_KEY: &str = "e1e2e3e4e5e6e7e8c0ffee0ddba11cafef00dfacefeedbeefdeadbeef0123456";
const ENC_MARK: &str = "c0ffee0ddba11cafef00dface";
/// A 32-byte SSE-C key, base64.
const SSEC_KEY: &str = "U1NFQ0tleU1hcmtlcjAxMjM0NTY3ODlhYmNkZWZnaGk=";

fn markers() -> [&'static str; 4] {
    [SECRET, TOKEN, ENC_MARK, SSEC_KEY]
}

/// Runs cairn in `dir` with `args`, secrets in the environment, at `level`.
fn run(dir: &Path, level: &str, args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_clear()
        .env("HOME", dir)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CAIRN_ROOT", dir.join("root"))
        .env("AWS_ACCESS_KEY_ID", "AKIDSWEEP")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_SESSION_TOKEN", TOKEN)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("SWEEP_KEY", ENC_KEY)
        .env("SWEEP_WRONG_KEY", "11".repeat(32))
        .env("SWEEP_BAD_KEY", format!("not-a-key-{ENC_MARK}"));
    match level {
        "trace" => {
            c.env("RUST_LOG", "trace");
        }
        "" => {}
        v => {
            c.arg(v);
        }
    }
    c.args(args).output().unwrap()
}

#[test]
fn no_error_path_at_any_log_level_prints_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("f.txt"), b"hello").unwrap();
    let refused = "endpoint=http://127.0.0.1:1";
    let s3_opts = [
        "-o",
        refused,
        "-o",
        "max_retries=0",
        "-o",
        "retry_timeout=1s",
    ];
    let sec = format!("secret_access_key={SECRET}");
    let tok = format!("session_token={TOKEN}");
    let ssec = format!("sse_customer_key={SSEC_KEY}");
    let typo = format!("secret_acess_key={SECRET}");
    let mut cases: Vec<Vec<String>> = Vec::new();
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    for cmd in [
        &["ls", "s3://sweep-bucket/"][..],
        &["cp", "f.txt", "s3://sweep-bucket/k"],
        &["cat", "s3://sweep-bucket/k"],
        &["rm", "s3://sweep-bucket/k"],
    ] {
        let mut a = s(&s3_opts);
        a.extend(s(cmd));
        cases.push(a.clone());
        // Credentials as options too, not only from the environment.
        let mut b = s(&["-o", &sec, "-o", &tok, "-o", "access_key_id=AKIDSWEEP"]);
        b.extend(a);
        cases.push(b);
    }
    // SSE-C against a refused endpoint; a bad SSE-C setup; an unknown (misspelt) option.
    cases.push(s(&[
        "-o",
        refused,
        "-o",
        "max_retries=0",
        "-o",
        "sse=sse-c",
        "-o",
        &ssec,
        "cp",
        "f.txt",
        "s3://sweep-bucket/k",
    ]));
    cases.push(s(&["-o", refused, "-o", &ssec, "ls", "s3://sweep-bucket/"]));
    cases.push(s(&["-o", refused, "-o", &typo, "ls", "s3://sweep-bucket/"]));
    // Plain http off this machine (refused before any request), wrong credentials in the URL.
    cases.push(s(&[
        "-o",
        "endpoint=http://10.255.255.1:9000",
        "-o",
        &sec,
        "ls",
        "s3://sweep-bucket/",
    ]));
    cases.push(s(&[
        "ls",
        &format!("s3://sweep-bucket/?endpoint=http://127.0.0.1:1&secret_access_key={SECRET}&max_retries=0"),
    ]));
    // Encryption: put with a key, read without it, with the wrong one, with a malformed one.
    cases.push(s(&[
        "-o",
        "encryption_key=env:SWEEP_KEY",
        "cp",
        "f.txt",
        "local://enc",
    ]));
    cases.push(s(&["cat", "local://enc"]));
    cases.push(s(&[
        "-o",
        "encryption_key=env:SWEEP_WRONG_KEY",
        "cat",
        "local://enc",
    ]));
    cases.push(s(&[
        "-o",
        "encryption_key=env:SWEEP_BAD_KEY",
        "cat",
        "local://enc",
    ]));
    cases.push(s(&[
        "-o",
        "encryption_key=env:SWEEP_MISSING",
        "cat",
        "local://enc",
    ]));
    cases.push(s(&[
        "-o",
        &format!("encryption_key={ENC_KEY}"),
        "cat",
        "local://enc",
    ]));
    cases.push(s(&[
        "-o",
        "encryption_key=env:SWEEP_KEY",
        "cat",
        "local://enc",
    ]));
    // Presign prints its URL (on request); its logs never hold the secret.
    cases.push(s(&["presign", "s3://sweep-bucket/k"]));

    let mut runs = 0;
    let mut failures = Vec::new();
    for level in ["", "-v", "-vv", "trace"] {
        for args in &cases {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = run(d, level, &a);
            runs += 1;
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            let presign = a.contains(&"presign");
            for m in markers() {
                // A presigned URL carries the session token by design (X-Amz-Security-Token).
                let allowed = presign && m == TOKEN;
                if stderr.contains(m) || (stdout.contains(m) && !allowed) {
                    failures.push(format!("{level} {a:?}: {m} in output\n{stderr}"));
                }
            }
            if !presign
                && (stdout.contains("X-Amz-Signature") || stderr.contains("X-Amz-Signature"))
            {
                failures.push(format!("{level} {a:?}: a presigned URL printed unasked"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} leaks in {runs} runs:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(runs, cases.len() * 4);
    // The encrypted object was written, and read back only with its key.
    let out = run(
        d,
        "",
        &["-o", "encryption_key=env:SWEEP_KEY", "cat", "local://enc"],
    );
    assert_eq!(
        out.stdout,
        b"hello",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Presign prints a URL on request, signed, with no secret key in it.
    let out = run(d, "", &["presign", "s3://sweep-bucket/k"]);
    let url = String::from_utf8_lossy(&out.stdout);
    assert!(url.contains("X-Amz-Signature="), "{url}");
}

#[test]
fn debug_output_holds_no_secret() {
    let mut c = cairn::Config::default();
    for (k, v) in [
        ("secret_access_key", SECRET),
        ("session_token", TOKEN),
        ("sse", "sse-c"),
        ("sse_customer_key", SSEC_KEY),
        ("access_key_id", "AKIDSWEEP"),
        ("endpoint", "http://127.0.0.1:1"),
    ] {
        c.set(k, v).unwrap();
    }
    let url = cairn::StoreUrl::parse(&format!(
        "s3://sweep-bucket/p?secret_access_key={SECRET}&session_token={TOKEN}&sse_customer_key={SSEC_KEY}"
    ))
    .unwrap();
    let key: [u8; 32] =
        std::array::from_fn(|i| u8::from_str_radix(&ENC_KEY[2 * i..2 * i + 2], 16).unwrap());
    let provider = cairn::layer::encrypt::StaticKeyProvider::new(key);
    let store = cairn::layer::EncryptStore::new(
        cairn::backend::memory::MemoryStore::new(),
        Some(std::sync::Arc::new(provider)),
    );
    let sealed = cairn::layer::encrypt::encrypt_bytes(&key, b"x").unwrap();
    let err = cairn::layer::encrypt::decrypt_bytes(&[0u8; 32], &sealed).unwrap_err();
    for (what, text) in [
        ("Config", format!("{c:?} {c:#?}")),
        ("StoreUrl", format!("{url:?} {url:#?}")),
        ("EncryptStore", format!("{store:?} {store}")),
        ("Error", format!("{err:?} {err}")),
        ("Secret", format!("{:?}", cairn::Secret::new(SECRET))),
    ] {
        for m in markers() {
            assert!(!text.contains(m), "{what} shows {m}: {text}");
        }
    }
}
