//! TLS by default: plain http to a host other than this machine is refused before any request,
//! with an error that says what to do; `allow_http=true` lets it through.

use std::net::{TcpListener, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cairn");

/// This machine's address on its outward interface (not loopback): a "remote" host that a
/// test can listen on. Connecting a UDP socket sends nothing.
fn outward_ip() -> std::net::IpAddr {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    s.connect("10.255.255.254:9").unwrap();
    let ip = s.local_addr().unwrap().ip();
    assert!(
        !ip.is_loopback() && !ip.is_unspecified(),
        "no outward interface: {ip}"
    );
    ip
}

fn cairn(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .current_dir(dir)
        .env_clear()
        .env("HOME", dir)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", "AKIDTLS")
        .env("AWS_SECRET_ACCESS_KEY", "tls-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn plain_http_off_this_machine_needs_allow_http_and_sends_nothing_without_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), b"hello").unwrap();
    let listener = TcpListener::bind((outward_ip(), 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let ep = format!("endpoint={endpoint}");

    for (how, args) in [
        (
            "option",
            vec!["-o", &ep, "cp", "f.txt", "s3://tls-bucket/k"],
        ),
        ("option", vec!["-o", &ep, "ls", "s3://tls-bucket/"]),
    ] {
        let t = Instant::now();
        let out = cairn(dir.path(), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{how} {args:?}: {err}");
        assert!(
            err.contains(&format!("endpoint {endpoint} is plain http")),
            "{err}"
        );
        assert!(err.contains("unencrypted"), "{err}");
        assert!(err.contains("set allow_http=true"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(10), "refused at once");
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("{args:?}: a connection reached the endpoint: {other:?}"),
        }
    }
    // The environment's endpoint follows the same rule.
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("HOME", dir.path())
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "AKIDTLS")
        .env("AWS_SECRET_ACCESS_KEY", "tls-secret")
        .env("AWS_REGION", "us-east-1")
        .args(["ls", "s3://tls-bucket/"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("set allow_http=true"), "{err}");
    assert!(listener.accept().is_err(), "nothing sent");

    // With allow_http=true the request goes out: the listener sees a connection.
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("HOME", dir.path())
        .env("AWS_ACCESS_KEY_ID", "AKIDTLS")
        .env("AWS_SECRET_ACCESS_KEY", "tls-secret")
        .env("AWS_REGION", "us-east-1")
        .args(["-o", &ep, "-o", "allow_http=true", "-o", "max_retries=0"])
        .args(["-o", "timeout=2s", "ls", "s3://tls-bucket/"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let connected = loop {
        match listener.accept() {
            Ok(_) => break true,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(connected, "allow_http=true reaches the endpoint");
}
