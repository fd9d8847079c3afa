//! No silent outage: when the HTTP listener stops accepting, hookvault exits non-zero (71)
//! within seconds, saying why; under systemd it reports `READY=1`, `WATCHDOG=1` while its
//! self-check passes, and `STOPPING=1`.

use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::Hookvault;

/// A file-descriptor limit makes tiny_http's `accept` fail (EMFILE), which ends its accept
/// loop and drops the listening socket, as a thread limit does: the process must not stay up.
#[test]
fn the_process_exits_71_when_the_listener_dies() {
    if !Path::new("/usr/bin/prlimit").exists() && !Path::new("/bin/prlimit").exists() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("prlimit (util-linux) is needed for this test in CI");
        }
        eprintln!("skipped: prlimit (util-linux) is not installed");
        return;
    }
    let mut server = Hookvault::new()
        .run_under(&["prlimit", "--nofile=48:48", "--"])
        .spawn();
    assert_eq!(server.http.get("/healthz").status, 200);
    let addr = server.http.base.trim_start_matches("http://").to_string();
    // Hold connections until the process has no descriptor left for the next accept.
    let started = Instant::now();
    let mut held = Vec::new();
    for _ in 0..80 {
        if let Ok(c) = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1)) {
            held.push(c);
        }
    }
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("hookvault still running 20 s after its listener died");
    eprintln!(
        "listener death to exit: {:?} (from the first of {} connections)",
        started.elapsed(),
        held.len()
    );
    assert_eq!(status.code(), Some(71), "stderr: {}", server.stderr());
    assert!(
        server.stderr().contains("stopped answering"),
        "the log says why: {}",
        server.stderr()
    );
}

#[test]
fn systemd_hears_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut server = Hookvault::new()
        .env("NOTIFY_SOCKET", socket_path.to_str().unwrap())
        .env("WATCHDOG_USEC", "1000000")
        .spawn();
    let mut seen: Vec<String> = Vec::new();
    let mut buf = [0u8; 512];
    let mut next = |seen: &mut Vec<String>| {
        let n = socket.recv(&mut buf).expect("a notification within 10 s");
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    };
    next(&mut seen);
    assert!(
        seen[0].starts_with("READY=1\nSTATUS=serving on http://"),
        "{seen:?}"
    );
    while !seen.iter().any(|m| m == "WATCHDOG=1") {
        next(&mut seen);
    }
    server.sigterm();
    while !seen.iter().any(|m| m.starts_with("STOPPING=1")) {
        next(&mut seen);
    }
    assert_eq!(
        server.wait_exit(Duration::from_secs(15)).unwrap().code(),
        Some(0)
    );
}
