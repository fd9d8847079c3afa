//! The real `hookvault` binary as a child process: for crash, signal and command-line tests.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::http::Http;

/// The binary Cargo built for these tests, with no inherited `HOOKVAULT_*` variables (a
/// developer's shell must not change what a test sees).
pub fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookvault"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with(hookvault::ENV_PREFIX) {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Runs `hookvault ARGS` with the extra environment `env` to completion.
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    command()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run hookvault")
}

/// `hookvault serve --config FILE` that is expected to refuse to start: its output once it
/// exits. Panics if it is still running after 15 s.
pub(super) fn serve_refused(config: &std::path::Path) -> Output {
    let mut child = command()
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hookvault");
    let until = Instant::now() + Duration::from_secs(15);
    while child.try_wait().expect("wait for hookvault").is_none() {
        if Instant::now() >= until {
            let _ = child.kill();
            panic!("hookvault serve was expected to refuse to start but is still running");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("hookvault output")
}

/// A running `hookvault serve`; killed (SIGKILL) when dropped if still running.
pub struct Binary {
    pub http: Http,
    child: Child,
    stderr_log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Binary {
    /// Starts `hookvault serve --config FILE` and waits for its "listening" line.
    /// `env`: extra variables; `wrapper`: a command the binary runs under (may be empty).
    pub(super) fn spawn(
        config: PathBuf,
        dir: tempfile::TempDir,
        env: &[(String, String)],
        wrapper: &[String],
    ) -> Binary {
        let stderr_log = dir.path().join("stderr.log");
        let mut cmd = command();
        if let Some((program, args)) = wrapper.split_first() {
            let binary = cmd.get_program().to_owned();
            let mut wrapped = Command::new(program);
            wrapped.args(args).arg(binary);
            for (name, _) in cmd.get_envs() {
                wrapped.env_remove(name);
            }
            cmd = wrapped;
        }
        let mut child = cmd
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .expect("spawn hookvault");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| {
                panic!(
                    "no listening line from hookvault: {line:?}; stderr: {}",
                    std::fs::read_to_string(&stderr_log).unwrap_or_default()
                )
            });
        Binary {
            http: Http::new(addr.parse().unwrap()),
            child,
            stderr_log,
            _dir: dir,
        }
    }

    /// The child's process id (for `/proc/PID/...`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    pub fn sigterm(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// SIGTERM, then waits (up to 30 s) for a clean exit: the graceful stop that checkpoints
    /// the WAL. Panics if it does not exit, or exits with an error.
    pub fn stop(&mut self) {
        self.sigterm();
        let status = self
            .wait_exit(Duration::from_secs(30))
            .expect("hookvault did not stop within 30 s of SIGTERM");
        assert!(
            status.success(),
            "hookvault stopped with {status}; stderr:\n{}",
            self.stderr()
        );
    }

    /// Waits for the process to exit; None if it is still running after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}
