//! One way for every test to start hookvault: [`Hookvault`] builds the settings (ephemeral
//! ports, a temp database, any tweaks) and starts the library's server in this process
//! ([`Hookvault::start`], with any processor) or the real binary as a child
//! ([`Hookvault::spawn`], for crash, signal and command-line tests). Both are reached through
//! [`Http`].

mod binary;
mod fake_discord;
mod fixtures;
pub mod hostile;
mod http;
mod in_process;
mod netns;
#[cfg(feature = "postgres")]
mod postgres;
mod tools;
mod ws;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hookvault::testing::store::Faults;
use hookvault::testing::Processor;
use hookvault::testing::Service;
use hookvault::Settings;

pub use binary::{command, run_cli, Binary};
pub use fake_discord::{FakeDiscord, Limit};
pub use fixtures::{order_body, webhook_fixture, webhook_fixtures, Fixture};
pub use http::{Answer, Http};
pub use in_process::InProcess;
pub use netns::remote_client;
#[cfg(feature = "postgres")]
pub(crate) use postgres::{pg_or_skip, PgDb};
pub use tools::{require, skip_or_fail, tool};
pub use ws::ws_connect;

/// A loopback port free right now, for a server the harness does not start itself (sshd, a
/// binary for another CPU under qemu) and that must be told its port up front.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("an ephemeral loopback port")
        .port()
}

/// One change to the settings.
type Tweak<'a> = Box<dyn FnOnce(&mut Settings) + 'a>;

/// What to start: settings tweaks, a processor, a database. Nothing runs until
/// [`start`](Hookvault::start), [`spawn`](Hookvault::spawn) or
/// [`spawn_refused`](Hookvault::spawn_refused).
#[derive(Default)]
pub struct Hookvault<'a> {
    tweaks: Vec<Tweak<'a>>,
    processor: Option<Arc<dyn Processor>>,
    database: Option<PathBuf>,
    faults: Option<Faults>,
    env: Vec<(String, String)>,
    run_under: Vec<String>,
}

impl<'a> Hookvault<'a> {
    pub fn new() -> Hookvault<'a> {
        Hookvault::default()
    }

    /// Changes the settings (applied in order, after the defaults below and the database).
    pub fn settings(mut self, tweak: impl FnOnce(&mut Settings) + 'a) -> Hookvault<'a> {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// Turns the live event stream on, on an ephemeral port (it is off by default).
    pub fn websocket(self) -> Hookvault<'a> {
        self.settings(|s| s.websocket.listen = "127.0.0.1:0".into())
    }

    /// Processes messages with `processor` instead of the order processor (in-process only).
    pub fn processor(mut self, processor: Arc<dyn Processor>) -> Hookvault<'a> {
        self.processor = Some(processor);
        self
    }

    /// Puts the fault-injecting store between the writer and the database (in-process only):
    /// the test fails chosen commits through `faults`.
    pub fn faults(mut self, faults: &Faults) -> Hookvault<'a> {
        self.faults = Some(faults.clone());
        self
    }

    /// Sets an environment variable for the real binary (only [`spawn`](Hookvault::spawn)):
    /// for what only the environment can say, such as a `HOOKVAULT_*` value's type or
    /// `NOTIFY_SOCKET`.
    pub fn env(mut self, name: &str, value: &str) -> Hookvault<'a> {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// Stores in the PostgreSQL database `db` as node `node` (`storage.backend = "postgres"`).
    #[cfg(feature = "postgres")]
    pub fn postgres(self, db: &PgDb, node: &str) -> Hookvault<'a> {
        let (url, node) = (db.url.clone(), node.to_string());
        self.settings(move |s| {
            s.storage.backend = "postgres".into();
            s.storage.url = Some(url);
            s.node.id = Some(node);
        })
    }

    /// Uses this database file (e.g. to start again on one a previous server left) instead of
    /// a fresh one in the server's temp directory.
    pub fn database(mut self, path: &Path) -> Hookvault<'a> {
        self.database = Some(path.to_path_buf());
        self
    }

    /// Runs the real binary under a wrapper command (spawn only; e.g. `prlimit --nofile=40`).
    pub fn run_under(mut self, wrapper: &[&str]) -> Hookvault<'a> {
        self.run_under = wrapper.iter().map(|s| s.to_string()).collect();
        self
    }

    /// The library's [`Service`] in this process, with settings tuned for tests: 4 workers,
    /// 8 handler threads, 20-200 ms backoff, a 5 s shutdown timeout.
    pub fn start(self) -> InProcess {
        self.try_start().expect("service starts")
    }

    /// Like [`start`](Hookvault::start) for a service that must fail to start: why it failed.
    pub fn start_refused(self) -> hookvault::testing::Error {
        match self.try_start() {
            Ok(_) => panic!("the service started"),
            Err(e) => e,
        }
    }

    fn try_start(self) -> hookvault::testing::Result<InProcess> {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::default();
        settings.server.handler_threads = 8;
        settings.queue.workers = 4;
        settings.queue.backoff_base_ms = 20;
        settings.queue.backoff_max_ms = 200;
        settings.queue.shutdown_timeout_s = 5;
        let processor = self.processor.clone();
        let faults = self.faults.clone();
        assert!(
            self.env.is_empty(),
            "environment variables reach only the real binary (Hookvault::spawn)"
        );
        let settings = self.finish(settings, dir.path());
        let database = settings.storage.path.clone();
        let mut builder = Service::builder(settings);
        if let Some(p) = processor {
            builder = builder.processor(p);
        }
        if let Some(f) = faults {
            builder = builder.faults(f);
        }
        let service = builder.start()?;
        Ok(InProcess::new(service, database, dir))
    }

    /// The real binary (`hookvault serve --config FILE`, the file written from these
    /// settings) with the shipped defaults but a 10 s shutdown timeout; waits until it listens.
    pub fn spawn(mut self) -> Binary {
        let env = std::mem::take(&mut self.env);
        let wrapper = std::mem::take(&mut self.run_under);
        let (config, dir) = self.write_config();
        Binary::spawn(config, dir, &env, &wrapper)
    }

    /// Like [`spawn`](Hookvault::spawn) for a server that must refuse to start: its output.
    pub fn spawn_refused(self) -> std::process::Output {
        let (config, _dir) = self.write_config();
        binary::serve_refused(&config)
    }

    fn write_config(self) -> (PathBuf, tempfile::TempDir) {
        assert!(
            self.processor.is_none() && self.faults.is_none(),
            "a processor or faults plug in only in-process (Hookvault::start)"
        );
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::default();
        settings.queue.shutdown_timeout_s = 10;
        let settings = self.finish(settings, dir.path());
        let config = dir.path().join("hookvault.toml");
        std::fs::write(&config, toml::to_string(&settings).unwrap()).unwrap();
        (config, dir)
    }

    /// Ephemeral HTTP port, event stream off, the database, then the test's tweaks.
    fn finish(self, mut settings: Settings, dir: &Path) -> Settings {
        settings.server.listen = "127.0.0.1:0".into();
        settings.websocket.listen = "off".into();
        settings.storage.path = self.database.unwrap_or_else(|| dir.join("hookvault.db"));
        for tweak in self.tweaks {
            tweak(&mut settings);
        }
        settings
    }
}
