//! The secrets sweep: the `cairn` binary driven through every error path that needs no server
//! (refused endpoint, plain http off this machine, bad options, missing, malformed and wrong
//! encryption keys, SSE-C, presign) at every log level, then through the error paths a real
//! server answers (moto and Garage from scripts/servers/start.sh: wrong secret key, missing
//! bucket, SSE-C with a wrong or no key, a rejected session token, presign). No output ever
//! holds the secret key, the session token, an SSE-C key or the encryption key; presigned URLs
//! print only from `cairn presign`. `Debug` of configs, URLs, stores and errors holds no secret
//! either.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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
    run_env(dir, level, args, &[])
}

/// [`run`] with `env` set after the sweep's own environment (so it can replace credentials).
fn run_env(dir: &Path, level: &str, args: &[&str], env: Env) -> Output {
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
    for (k, v) in env {
        c.env(k, v);
    }
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

/// A second SSE-C key (32 bytes, base64): the wrong key for an object written with [`SSEC_KEY`].
const SSEC_WRONG_KEY: &str = "V3JvbmdTU0VDS2V5TWFya2VyMDEyMzQ1Njc4OWFiY2Q=";

/// One S3 test server (CAIRN_TEST_{MOTO,GARAGE}_*; a missing setting fails the test).
struct Server {
    endpoint: String,
    region: String,
    bucket: String,
    key_id: String,
    secret: String,
}

impl Server {
    fn from_env(name: &str) -> Server {
        let v = |k: &str| common::var(&format!("CAIRN_TEST_{name}_{k}"));
        Server {
            endpoint: v("ENDPOINT"),
            region: v("REGION"),
            bucket: v("BUCKET"),
            key_id: v("ACCESS_KEY_ID"),
            secret: v("SECRET_ACCESS_KEY"),
        }
    }

    /// `rest` after the flags that point the binary at this server.
    fn args(&self, rest: &[&str]) -> Vec<String> {
        let mut a = vec![
            "--endpoint".to_string(),
            self.endpoint.clone(),
            "--region".into(),
            self.region.clone(),
            "--path-style".into(),
        ];
        a.extend(rest.iter().map(|s| s.to_string()));
        a
    }

    /// This server's access key with `secret` (its own, or a wrong one). The sweep's session
    /// token stays set: neither server checks one, so every run sends it.
    fn env(&self, secret: &str) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), secret.to_string()),
            ("AWS_REGION".into(), self.region.clone()),
        ]
    }
}

/// The reply AWS S3 gives a request whose session token it does not accept, echo of the token
/// (`Token-0`) included, as S3 sends it.
fn invalid_token_reply(token: &str) -> String {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidToken</Code>\
         <Message>The provided token is malformed or otherwise invalid.</Message>\
         <Token-0>{token}</Token-0><RequestId>SWEEPREQ</RequestId><HostId>SWEEPHOST</HostId>\
         </Error>"
    );
    format!(
        "HTTP/1.1 403 Forbidden\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// An endpoint that rejects every request's session token as AWS S3 does ([`invalid_token_reply`]).
/// Moto runs without authentication and Garage has no STS and ignores x-amz-security-token,
/// so neither test server ever rejects a token; this is the one stand-in of the sweep.
/// Returns the endpoint, the number of requests and the number that carried the sweep's token.
fn token_rejecting_endpoint() -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (requests, with_token) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (r, t) = (requests.clone(), with_token.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let (r, t) = (r.clone(), t.clone());
            std::thread::spawn(move || {
                // Read the head, then the body it announces, then answer and close.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let mut have = buf.len() - head_end;
                while have < length {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => have += n,
                    }
                }
                r.fetch_add(1, Ordering::SeqCst);
                let token_header = format!("x-amz-security-token: {}", TOKEN.to_ascii_lowercase());
                if head.lines().any(|l| l.trim_end() == token_header) {
                    t.fetch_add(1, Ordering::SeqCst);
                }
                let _ = conn.write_all(invalid_token_reply(TOKEN).as_bytes());
            });
        }
    });
    (endpoint, requests, with_token)
}

/// GETs an `http://` URL (a presigned one): the status and the body.
fn http_get(url: &str) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("a plain http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    let head_end = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&reply[..head_end]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, reply[head_end..].to_vec())
}

/// What one run must do: succeed, or exit 1 with exactly this `error:` line.
enum Expect {
    Ok,
    Fail(String),
}

/// Environment variables a run sets on top of the sweep's own.
type Env<'a> = &'a [(String, String)];

#[test]
fn no_error_path_against_a_real_server_prints_a_secret() {
    let moto = Server::from_env("MOTO");
    let garage = Server::from_env("GARAGE");
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("{}/cli-secrets/{nonce:x}", common::var("CAIRN_TEST_RUN_ID"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("f.txt"), b"hello").unwrap();
    let (token_ep, token_requests, token_sent) = token_rejecting_endpoint();

    let g = |k: &str| format!("s3://{}/{prefix}/{k}", garage.bucket);
    let m = |k: &str| format!("s3://{}/{prefix}/{k}", moto.bucket);
    let missing = format!("cairn-sweep-missing-{nonce:x}");
    let ssec = format!("sse_customer_key={SSEC_KEY}");
    let ssec_wrong = format!("sse_customer_key={SSEC_WRONG_KEY}");
    let sec = format!("secret_access_key={SECRET}");
    let tok = format!("session_token={TOKEN}");
    let key_id = format!("access_key_id={}", garage.key_id);
    let token_opt = format!("endpoint={token_ep}");
    let garage_ok: Env = &garage.env(&garage.secret);
    let garage_wrong: Env = &garage.env(SECRET);
    let moto_ok: Env = &moto.env(&moto.secret);
    // The sweep's own environment: AKIDSWEEP, the SECRET marker and the TOKEN marker.
    let sweep: Env = &[];
    let denied = "authentication failed: AccessDenied: Forbidden: Invalid signature";
    let no_bucket = "bucket not found: NoSuchBucket: The specified bucket does not exist";
    let bad_token = "authentication failed: InvalidToken: \
                     The provided token is malformed or otherwise invalid.";
    let fail = |s: String| Expect::Fail(format!("error: {s}"));

    // In order: each level's run of a read follows its run of the write it reads.
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<String>, Env, Expect)> = vec![
        // The object the wrong-secret reads and presign ask for, written with the right key.
        ("put", garage.args(&["cp", "f.txt", &g("plain")]), garage_ok, Expect::Ok),
        // Wrong secret key: Garage checks the signature (moto runs without authentication).
        ("wrong secret", garage.args(&["ls", &g("")]), garage_wrong,
            fail(format!("list {}: {denied}", g("")))),
        ("wrong secret", garage.args(&["cp", "f.txt", &g("denied")]), garage_wrong,
            fail(format!("put {}: {denied}", g("denied")))),
        ("wrong secret", garage.args(&["cat", &g("plain")]), garage_wrong,
            fail(format!("get {}: {denied}", g("plain")))),
        ("wrong secret option",
            garage.args(&["-o", &key_id, "-o", &sec, "-o", &tok, "cat", &g("plain")]),
            garage_ok, fail(format!("get {}: {denied}", g("plain")))),
        // A bucket that does not exist.
        ("no bucket", moto.args(&["ls", &format!("s3://{missing}/")]), moto_ok,
            fail(format!("list s3://{missing}/: {no_bucket}"))),
        ("no bucket", moto.args(&["cp", "f.txt", &format!("s3://{missing}/k")]), moto_ok,
            fail(format!("put s3://{missing}/k: {no_bucket}"))),
        ("no bucket", moto.args(&["cat", &format!("s3://{missing}/k")]), moto_ok,
            fail(format!("get s3://{missing}/k: {no_bucket}"))),
        // SSE-C on Garage: moto accepts SSE-C headers but neither encrypts nor checks them (a
        // read with a wrong or no key returns the object), so only Garage can refuse the key.
        ("sse-c put", garage.args(&["-o", "sse=sse-c", "-o", &ssec, "cp", "f.txt", &g("ssec")]),
            garage_ok, Expect::Ok),
        ("sse-c right key", garage.args(&["-o", "sse=sse-c", "-o", &ssec, "cat", &g("ssec")]),
            garage_ok, Expect::Ok),
        ("sse-c wrong key",
            garage.args(&["-o", "sse=sse-c", "-o", &ssec_wrong, "cat", &g("ssec")]), garage_ok,
            fail(format!("get {}: invalid input: InvalidRequest: Bad request: Invalid encryption \
                          key, could not decrypt object metadata.: aead::Error", g("ssec")))),
        ("sse-c no key", garage.args(&["cat", &g("ssec")]), garage_ok,
            fail(format!("get {}: invalid input: InvalidRequest: Bad request: Object is \
                          encrypted", g("ssec")))),
        // Client-side encryption through a real server: the wrong key, no key.
        ("enc put", moto.args(&["-o", "encryption_key=env:SWEEP_KEY", "cp", "f.txt", &m("enc")]),
            moto_ok, Expect::Ok),
        ("enc wrong key",
            moto.args(&["-o", "encryption_key=env:SWEEP_WRONG_KEY", "cat", &m("enc")]), moto_ok,
            fail(format!("get {}: integrity check failed: decryption failed: wrong key or corrupt \
                          data: the object was encrypted with key id k1-d9aecd2dccf959e4, the \
                          configured key is k1-56a60b828289224c", m("enc")))),
        ("enc no key", moto.args(&["cat", &m("enc")]), moto_ok,
            fail(format!("get {}: permission denied: this object is encrypted with key id \
                          k1-d9aecd2dccf959e4; set encryption_key", m("enc")))),
        // A session token the server rejects (from the environment, then as an option).
        ("token", s(&["-o", &token_opt, "ls", "s3://sweep-bucket/"]), sweep,
            fail(format!("list s3://sweep-bucket/: {bad_token}"))),
        ("token", s(&["-o", &token_opt, "cp", "f.txt", "s3://sweep-bucket/k"]), sweep,
            fail(format!("put s3://sweep-bucket/k: {bad_token}"))),
        ("token option", s(&["-o", &token_opt, "-o", &tok, "cat", "s3://sweep-bucket/k"]), sweep,
            fail(format!("get s3://sweep-bucket/k: {bad_token}"))),
        // Presign prints its URL on stdout, and only it prints one.
        ("presign", garage.args(&["presign", &g("plain")]), garage_ok, Expect::Ok),
        ("presign wrong secret", garage.args(&["presign", &g("plain")]), garage_wrong,
            Expect::Ok),
    ];

    let mut markers: Vec<&str> = markers().to_vec();
    markers.extend([SSEC_WRONG_KEY, garage.secret.as_str()]);
    let mut runs = 0;
    let mut failures = Vec::new();
    for level in ["", "-v", "-vv", "trace"] {
        for (what, args, env, expect) in &cases {
            let a = strs(args);
            let out = run_env(d, level, &a, env);
            runs += 1;
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            let presign = a.contains(&"presign");
            let at = format!("[{level}] {what} {a:?}");
            for mark in &markers {
                // A presigned URL carries the session token by design (X-Amz-Security-Token).
                let allowed = presign && *mark == TOKEN;
                if stderr.contains(mark) || (stdout.contains(mark) && !allowed) {
                    failures.push(format!("{at}: {mark} in output\n{stdout}\n{stderr}"));
                }
            }
            if stderr.contains("X-Amz-Signature")
                || (!presign && stdout.contains("X-Amz-Signature"))
            {
                failures.push(format!("{at}: a presigned URL printed unasked\n{stderr}"));
            }
            let errors: Vec<&str> = stderr
                .lines()
                .filter(|l| l.starts_with("error: "))
                .collect();
            match expect {
                Expect::Ok if out.status.code() != Some(0) || !errors.is_empty() => {
                    failures.push(format!("{at}: failed: {:?}\n{stderr}", out.status.code()))
                }
                Expect::Ok => {}
                Expect::Fail(line) => {
                    if out.status.code() != Some(1) || errors != [line.as_str()] {
                        failures.push(format!(
                            "{at}: exit {:?}, wanted 1 with\n  {line}\ngot\n{stderr}",
                            out.status.code()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures in {runs} runs:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(runs, cases.len() * 4);
    // The token was sent, and refused, on every request to the token endpoint.
    let sent = token_requests.load(Ordering::SeqCst);
    assert!(sent >= 3 * 4, "{sent} requests reached the token endpoint");
    assert_eq!(
        token_sent.load(Ordering::SeqCst),
        sent,
        "every request carried the token"
    );

    // Nothing got through with the wrong secret: Garage holds the two good writes only.
    let ls = garage.args(&["ls", &g("")]);
    let out = run_env(d, "", &strs(&ls), garage_ok);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        listing.contains("plain") && listing.contains("ssec"),
        "{listing}"
    );
    assert!(
        !listing.contains("denied"),
        "a wrong-secret put landed:\n{listing}"
    );

    // The presigned URL works against a server that checks signatures; one signed with the
    // wrong secret is refused by it.
    let presigned = |env: Env| {
        let out = run_env(d, "", &strs(&garage.args(&["presign", &g("plain")])), env);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(url.contains("X-Amz-Signature="), "{url}");
        assert!(
            url.contains(&format!("X-Amz-Security-Token={TOKEN}")),
            "{url}"
        );
        url
    };
    let (status, body) = http_get(&presigned(garage_ok));
    assert_eq!((status, body.as_slice()), (200, &b"hello"[..]));
    let (status, body) = http_get(&presigned(garage_wrong));
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("Invalid signature"));
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|a| a.to_string()).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
