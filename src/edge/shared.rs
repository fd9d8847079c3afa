//! What the gate's accept loop ([`super::gate`]) and each of its connections
//! ([`super::connection`]) share: the limits from `[server]` and the gate's running state.

use std::collections::HashMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::activity::Activity;
use crate::base::lifecycle::Stop;

/// The gate's limits, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// What the accept loop and every connection share.
pub struct Shared {
    pub(super) stop: Stop,
    pub(super) next_id: AtomicU64,
    pub(super) open: AtomicUsize,
    /// Open client connections, to close them at a stop.
    pub(super) clients: Mutex<HashMap<u64, TcpStream>>,
    pub(super) hop: PathBuf,
    pub(super) activity: Arc<Activity>,
}

impl Shared {
    pub fn stopping(&self) -> bool {
        self.stop.is_stopping()
    }

    pub fn hop_path(&self) -> &Path {
        &self.hop
    }

    pub fn activity(&self) -> &Activity {
        &self.activity
    }
}
