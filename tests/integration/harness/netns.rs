//! A client that is not on loopback without leaving this machine: a network namespace made by
//! the test, joined to this one by a veth pair (`ip netns`, `ip link`; needs root, which CI
//! has). The server listens on the host side of the pair — never on the machine's own LAN
//! address — and a test thread that enters the namespace reaches it from the other side.
//! Everything is removed when the [`Netns`] is dropped.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Netns {
    name: String,
    /// The host side of the pair: where the server listens.
    pub host_ip: IpAddr,
    /// The client's address inside the namespace.
    pub client_ip: IpAddr,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// A fresh namespace and veth pair on a /30 of 10.213.0.0/16 chosen per process and call.
    pub fn create() -> Result<Netns, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = (std::process::id() * 7 + NEXT.fetch_add(1, Ordering::Relaxed)) % 16_000;
        let name = format!("hvtest{n}");
        let (host_if, client_if) = (format!("hvh{n}"), format!("hvc{n}"));
        let (a, b) = ((n / 64) as u8, ((n % 64) * 4) as u8);
        let host = Ipv4Addr::new(10, 213 + (n / 16_384) as u8, a, b + 1);
        let client = Ipv4Addr::new(10, 213 + (n / 16_384) as u8, a, b + 2);
        ip(&["netns", "add", &name])?;
        let netns = Netns {
            name: name.clone(),
            host_ip: host.into(),
            client_ip: client.into(),
        };
        let in_ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", name.as_str(), "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &client_if,
        ])?;
        ip(&["link", "set", &client_if, "netns", &name])?;
        ip(&["addr", "add", &format!("{host}/30"), "dev", &host_if])?;
        ip(&["link", "set", &host_if, "up"])?;
        in_ns(&["addr", "add", &format!("{client}/30"), "dev", &client_if])?;
        in_ns(&["link", "set", &client_if, "up"])?;
        in_ns(&["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    /// Runs `f` on a thread inside the namespace: every socket it opens is the client's.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let fd = std::fs::File::open(&path).expect("open the namespace");
                    rustix::thread::move_into_link_name_space(
                        std::os::fd::AsFd::as_fd(&fd),
                        Some(rustix::thread::LinkNameSpaceType::Network),
                    )
                    .expect("enter the namespace");
                    f()
                })
                .join()
                .expect("the namespace thread")
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair with it.
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// A namespace, or `None` after [`super::skip_or_fail`] (no root, no `ip`).
pub fn remote_client() -> Option<Netns> {
    match Netns::create() {
        Ok(n) => Some(n),
        Err(why) => {
            super::skip_or_fail(&format!("no network namespace for a remote client: {why}"));
            None
        }
    }
}
