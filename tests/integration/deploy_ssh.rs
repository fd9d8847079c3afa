//! `deploy/deploy.sh` for real, against an OpenSSH server on loopback that this test starts
//! with a throwaway host key and user key. The "host" is this machine under a temporary
//! `--prefix`, and the service-manager step is a command that (re)starts the installed
//! binary in the background, so no systemd is needed. Shown: a first install answers
//! `/readyz`; a second run with the same build changes nothing; an upgrade switches to the new
//! build; a build that never becomes ready is rolled back (non-zero exit, the previous build
//! serving again); an operator's config is never overwritten; `--dry-run` changes nothing.
//!
//! Needs `/usr/sbin/sshd` (Debian's openssh-server), `ssh`, `ssh-keygen` and `curl`; without
//! them it skips, except under `CI=true`, where `.ci/run` installs them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{free_port, require, Http};

const SSHD: &str = "/usr/sbin/sshd";

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// An sshd on a free loopback port, stopped on drop.
struct Sshd {
    child: Child,
    port: u16,
    user_key: PathBuf,
    log: PathBuf,
}

impl Sshd {
    fn start(dir: &Path) -> Sshd {
        let host_key = dir.join("host_key");
        let user_key = dir.join("user_key");
        for key in [&host_key, &user_key] {
            run_ok(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(key),
            );
        }
        let authorized = dir.join("authorized_keys");
        std::fs::copy(dir.join("user_key.pub"), &authorized).unwrap();
        let port = free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PidFile {}\nStrictModes no\nUsePAM no\nPubkeyAuthentication yes\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\nAllowTcpForwarding no\nX11Forwarding no\n\
                 LogLevel ERROR\n",
                host_key.display(),
                authorized.display(),
                dir.join("sshd.pid").display()
            ),
        )
        .unwrap();
        // As root, sshd insists on its privilege-separation directory.
        if running_as_root() {
            std::fs::create_dir_all("/run/sshd").unwrap();
        }
        let log = dir.join("sshd.log");
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start sshd");
        let sshd = Sshd {
            child,
            port,
            user_key,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ok = Command::new("ssh")
                .args(sshd.ssh_args())
                .args(["127.0.0.1", "true"])
                .stdin(Stdio::null())
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return sshd;
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not accept our key within 15 s: {}",
                std::fs::read_to_string(&sshd.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn ssh_args(&self) -> Vec<String> {
        vec![
            "-p".into(),
            self.port.to_string(),
            "-i".into(),
            self.user_key.display().to_string(),
            "-o".into(),
            "StrictHostKeyChecking=no".into(),
            "-o".into(),
            "UserKnownHostsFile=/dev/null".into(),
            "-o".into(),
            "LogLevel=ERROR".into(),
            "-o".into(),
            "BatchMode=yes".into(),
        ]
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this process runs as root, read from /proc (no libc call needed).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

/// The installed service, as the service-manager command leaves it: a pid file and a log.
struct Service {
    run_dir: PathBuf,
    port: u16,
    http: Http,
}

impl Service {
    /// The `--service-manager command:` text: stops the running instance (waiting until it has
    /// exited, zombies included) and starts the linked binary in the background.
    fn restart_command(&self) -> String {
        let pid = self.run_dir.join("hookvault.pid").display().to_string();
        let log = self.run_dir.join("serve.log").display().to_string();
        format!(
            "if [ -f {pid} ]; then p=$(cat {pid}); kill $p 2>/dev/null; i=0; \
             while kill -0 $p 2>/dev/null && ! grep -q ') Z' /proc/$p/stat 2>/dev/null \
             && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; fi; \
             nohup \"$DEPLOY_BIN\" serve --config \"$DEPLOY_CONFIG\" --db \"$DEPLOY_DB\" \
             --listen 127.0.0.1:{port} --ws-listen off --workers 2 >>{log} 2>&1 </dev/null & \
             echo $! > {pid}",
            port = self.port
        )
    }

    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.run_dir.join("hookvault.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// The file the running process was started from, resolved through the symlink.
    fn running_exe(&self) -> Option<PathBuf> {
        std::fs::read_link(format!("/proc/{}/exe", self.pid()?)).ok()
    }

    /// The status of `GET path`; None while nothing answers on the port.
    fn status(&self, path: &str) -> Option<u16> {
        self.http.try_get(path).ok().map(|a| a.status)
    }

    fn post_order(&self, n: u32) -> u16 {
        let body = format!(
            r#"{{"embeds":[{{"description":"Product\nDeploy Test\nPrice\n$9.99\nOrder Number\nDEPLOY-{n}\nEmail\nd{n}@example.com"}}]}}"#
        );
        self.http
            .try_post(
                "/api/v2/webhooks/orders",
                body.as_bytes(),
                &[("Content-Type", "application/json")],
            )
            .map_or(0, |a| a.status)
    }

    fn wait_for_order(&self, n: u32) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.status(&format!("/api/v2/orders/DEPLOY-{n}")) != Some(200) {
            assert!(Instant::now() < deadline, "order DEPLOY-{n} never appeared");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Path::new(&format!("/proc/{pid}")).exists()
                && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map(|s| s.contains(") Z"))
                    .unwrap_or(true)
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

struct Deploy<'a> {
    sshd: &'a Sshd,
    prefix: PathBuf,
    service: &'a Service,
}

impl Deploy<'_> {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/deploy.sh")
    }

    /// Runs the script with `binary` and extra options; returns the output and its run time.
    fn run(&self, binary: &Path, extra: &[&str]) -> (Output, Duration) {
        let mut cmd = Command::new("bash");
        cmd.arg(Self::script())
            .arg("--binary")
            .arg(binary)
            .arg("--prefix")
            .arg(&self.prefix)
            // -p and -i as options, the rest through $SSH: both ways of passing SSH settings.
            .args(["-p", &self.sshd.port.to_string()])
            .arg("-i")
            .arg(&self.sshd.user_key)
            .env(
                "SSH",
                "ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            )
            .arg("--service-manager")
            .arg(format!("command:{}", self.service.restart_command()))
            .arg("--ready-url")
            .arg(format!("http://127.0.0.1:{}/readyz", self.service.port))
            .args(extra)
            .arg("127.0.0.1")
            .stdin(Stdio::null());
        let started = Instant::now();
        let out = cmd.output().expect("run deploy.sh");
        let took = started.elapsed();
        eprintln!(
            "--- deploy.sh {extra:?} took {:.2} s, exit {:?}\n{}{}",
            took.as_secs_f64(),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out, took)
    }

    fn link(&self) -> PathBuf {
        std::fs::read_link(self.prefix.join("usr/local/bin/hookvault")).expect("the symlink")
    }

    fn versions(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.prefix.join("usr/local/lib/hookvault"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

fn sha12(path: &Path) -> String {
    let out = run_ok(Command::new("sha256sum").arg(path));
    String::from_utf8_lossy(&out.stdout)[..12].to_string()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn deploy_installs_upgrades_and_rolls_back_over_ssh() {
    if !require(
        &[SSHD, "ssh", "ssh-keygen", "curl", "bash", "sha256sum"],
        "a real SSH server on loopback for deploy/deploy.sh; Debian: apt-get install \
         openssh-server openssh-client curl",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    let run_dir = tmp.path().join("run");
    let prefix = tmp.path().join("host");
    let builds = tmp.path().join("builds");
    for d in [&keys, &run_dir, &prefix, &builds] {
        std::fs::create_dir_all(d).unwrap();
    }
    let sshd = Sshd::start(&keys);
    let port = free_port();
    let service = Service {
        run_dir,
        port,
        http: Http::new(format!("127.0.0.1:{port}").parse().unwrap()),
    };
    let deploy = Deploy {
        sshd: &sshd,
        prefix: prefix.clone(),
        service: &service,
    };
    let build1 = PathBuf::from(env!("CARGO_BIN_EXE_hookvault"));
    let versions_dir = prefix.join("usr/local/lib/hookvault");

    // (a) First install: binary, unit, config, readiness.
    let (out, took) = deploy.run(&build1, &[]);
    assert!(out.status.success(), "first deploy failed:\n{}", text(&out));
    let v1 = versions_dir.join(format!("hookvault-0.1.0-{}", sha12(&build1)));
    assert_eq!(deploy.link(), v1);
    assert_eq!(service.running_exe().as_deref(), Some(v1.as_path()));
    assert_eq!(service.status("/readyz"), Some(200));
    let config = prefix.join("etc/hookvault/config.toml");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml"))
            .unwrap()
    );
    let unit =
        std::fs::read_to_string(prefix.join("etc/systemd/system/hookvault.service")).unwrap();
    assert!(
        unit.contains(&format!(
            "ExecStart={}/usr/local/bin/hookvault serve",
            prefix.display()
        )),
        "the unit names the prefixed paths:\n{unit}"
    );
    assert_eq!(service.post_order(1), 200);
    service.wait_for_order(1);
    eprintln!("first install over SSH: {:.2} s", took.as_secs_f64());

    // (d) The operator edits the config; no later run may overwrite it.
    let edited = format!(
        "{}\n# edited by the operator\n",
        std::fs::read_to_string(&config).unwrap()
    );
    std::fs::write(&config, &edited).unwrap();

    // Idempotent: the same build again changes nothing and does not restart the service.
    let pid_before = service.pid();
    let (out, took) = deploy.run(&build1, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nothing to do"), "{}", text(&out));
    assert_eq!(
        service.pid(),
        pid_before,
        "an idempotent run restarted the service"
    );
    assert_eq!(deploy.link(), v1);
    eprintln!("second run, same build: {:.2} s", took.as_secs_f64());

    // (b) Upgrade to a "new build": the same program with bytes appended (an ELF loader
    // ignores them), so its hash and version file differ.
    let build2 = builds.join("hookvault-new");
    let mut bytes = std::fs::read(&build1).unwrap();
    bytes.extend_from_slice(b"\nnew build marker\n");
    std::fs::write(&build2, &bytes).unwrap();
    run_ok(Command::new("chmod").args(["755"]).arg(&build2));
    let v2 = versions_dir.join(format!("hookvault-0.1.0-{}", sha12(&build2)));

    // --dry-run first: prints the steps, changes nothing.
    let before = deploy.versions();
    let (out, _) = deploy.run(&build2, &["--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    for step in ["cat > ", "check-config", "ln -sfn", "wait up to"] {
        assert!(
            said.contains(step),
            "dry run does not show '{step}':\n{said}"
        );
    }
    assert_eq!(deploy.versions(), before, "a dry run installed something");
    assert_eq!(deploy.link(), v1, "a dry run switched the link");
    assert_eq!(service.pid(), pid_before, "a dry run restarted the service");

    let (out, took) = deploy.run(&build2, &[]);
    assert!(out.status.success(), "upgrade failed:\n{}", text(&out));
    assert_eq!(deploy.link(), v2);
    assert_ne!(service.pid(), pid_before, "the upgrade did not restart");
    assert_eq!(service.running_exe().as_deref(), Some(v2.as_path()));
    assert_eq!(service.status("/readyz"), Some(200));
    assert_eq!(
        service.status("/api/v2/orders/DEPLOY-1"),
        Some(200),
        "data from before the upgrade"
    );
    assert!(v1.exists(), "the previous version is kept for rollback");
    eprintln!("upgrade over SSH: {:.2} s", took.as_secs_f64());

    // (c) A build that passes --version and check-config but never becomes ready.
    let broken = builds.join("hookvault-broken");
    std::fs::write(
        &broken,
        "#!/bin/sh\ncase \"$1\" in\n  --version) echo 'hookvault 0.1.1' ;;\n  check-config) exit 0 ;;\n  \
         *) echo 'broken build: exits at once' >&2; exit 1 ;;\nesac\n",
    )
    .unwrap();
    run_ok(Command::new("chmod").args(["755"]).arg(&broken));
    let (out, took) = deploy.run(&broken, &["--ready-timeout", "5"]);
    assert_eq!(out.status.code(), Some(2), "rollback exit:\n{}", text(&out));
    assert!(text(&out).contains("ROLLING BACK"), "{}", text(&out));
    assert_eq!(
        deploy.link(),
        v2,
        "the link points back at the previous build"
    );
    assert_eq!(service.running_exe().as_deref(), Some(v2.as_path()));
    assert_eq!(service.status("/readyz"), Some(200));
    assert_eq!(service.post_order(2), 200);
    service.wait_for_order(2);
    eprintln!(
        "failed upgrade + rollback over SSH: {:.2} s (5 s of it the readiness timeout)",
        took.as_secs_f64()
    );

    // Going back to the first build on purpose reuses its file on the host; `--keep 2` then
    // removes every version but the current and the previous one (the broken build goes).
    let (out, _) = deploy.run(&build1, &["--keep", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(deploy.link(), v1);
    assert_eq!(service.running_exe().as_deref(), Some(v1.as_path()));
    let file_name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
    let mut expected = vec![file_name(&v1), file_name(&v2)];
    expected.sort();
    assert_eq!(deploy.versions(), expected);

    // (d) After all these runs the operator's config is still theirs.
    assert_eq!(std::fs::read_to_string(&config).unwrap(), edited);
}

#[test]
fn deploy_help_and_bad_usage() {
    let out = Command::new("bash")
        .arg(Deploy::script())
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--binary",
        "--dry-run",
        "--service-manager",
        "--prefix",
        "--ready-timeout",
    ] {
        assert!(help.contains(opt), "--help does not mention {opt}");
    }
    let out = Command::new("bash")
        .arg(Deploy::script())
        .args(["--service-manager", "upstart", "host"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--service-manager"));
}

/// A stand-in for a release whose schema is one past this build's, as a shell script in front
/// of this build: `schema` answers what such a release would (`on_serve=migrate` for this
/// build's database), and `serve` moves the database to the next schema version, as a
/// migration does, and then fails, so the upgrade never becomes ready. A script in the test,
/// not a switch in the product: nothing a user can set makes a real binary pretend to migrate.
fn migrating_release(real: &Path, next_schema: i64, path: &Path) {
    let real = real.display();
    std::fs::write(
        path,
        format!(
            r#"#!/bin/sh
case "$1" in
  --version) echo 'hookvault 0.2.0' ;;
  schema) "{real}" "$@" | sed -e 's/^binary_schema=.*/binary_schema={next_schema}/' -e 's/^on_serve=none$/on_serve=migrate/' ;;
  serve)
    db=
    while [ $# -gt 0 ]; do [ "$1" = --db ] && db="$2"; shift; done
    python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("CREATE TABLE next_release_table (id INTEGER PRIMARY KEY)")
c.execute("PRAGMA user_version = {next_schema}")
c.commit()' "$db" || exit 1
    echo 'migrated the database to schema {next_schema}, then failed to start' >&2
    exit 1 ;;
  *) exec "{real}" "$@" ;;
esac
"#
        ),
    )
    .unwrap();
    run_ok(Command::new("chmod").args(["755"]).arg(path));
}

/// `key=value` from `hookvault schema` output.
fn schema_field(out: &Output, key: &str) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {key}= in {}", text(out)))
}

#[test]
fn a_failed_upgrade_that_migrated_the_schema_is_rolled_back_with_the_backup_taken_before_it() {
    if !require(
        &[
            SSHD,
            "ssh",
            "ssh-keygen",
            "curl",
            "bash",
            "sha256sum",
            "python3",
        ],
        "a real SSH server on loopback for deploy/deploy.sh, and python3 for the stand-in \
         release; Debian: apt-get install openssh-server openssh-client curl python3",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (keys, run_dir, prefix, builds) = (
        tmp.path().join("keys"),
        tmp.path().join("run"),
        tmp.path().join("host"),
        tmp.path().join("builds"),
    );
    for d in [&keys, &run_dir, &prefix, &builds] {
        std::fs::create_dir_all(d).unwrap();
    }
    let sshd = Sshd::start(&keys);
    let port = free_port();
    let service = Service {
        run_dir,
        port,
        http: Http::new(format!("127.0.0.1:{port}").parse().unwrap()),
    };
    let deploy = Deploy {
        sshd: &sshd,
        prefix: prefix.clone(),
        service: &service,
    };
    let build1 = PathBuf::from(env!("CARGO_BIN_EXE_hookvault"));
    let state_dir = prefix.join("var/lib/hookvault");
    let db = state_dir.join("hookvault.db");
    let schema_of =
        |binary: &Path, db: &Path| run_ok(Command::new(binary).arg("schema").arg("--db").arg(db));

    let (out, _) = deploy.run(&build1, &[]);
    assert!(out.status.success(), "first deploy failed:\n{}", text(&out));
    let v1 = deploy.link();
    for n in 1..=5 {
        assert_eq!(service.post_order(n), 200);
    }
    for n in 1..=5 {
        service.wait_for_order(n);
    }

    // An upgrade that keeps the schema takes no backup.
    let build2 = builds.join("hookvault-same-schema");
    let mut bytes = std::fs::read(&build1).unwrap();
    bytes.extend_from_slice(b"\nsame schema, new build\n");
    std::fs::write(&build2, &bytes).unwrap();
    run_ok(Command::new("chmod").args(["755"]).arg(&build2));
    let (out, _) = deploy.run(&build2, &[]);
    assert!(out.status.success(), "upgrade failed:\n{}", text(&out));
    assert!(
        text(&out).contains("does not migrate the database; no backup needed"),
        "{}",
        text(&out)
    );
    let v2 = deploy.link();
    assert_ne!(v1, v2);
    assert_eq!(service.post_order(6), 200);
    service.wait_for_order(6);

    // The release that migrates, then fails readiness.
    let current = schema_of(&build1, &db);
    assert_eq!(schema_field(&current, "on_serve"), "none");
    let schema: i64 = schema_field(&current, "binary_schema").parse().unwrap();
    let next = builds.join("hookvault-next-schema");
    migrating_release(&build1, schema + 1, &next);
    assert_eq!(schema_field(&schema_of(&next, &db), "on_serve"), "migrate");

    let (out, took) = deploy.run(&next, &["--ready-timeout", "5"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "rollback exit:\n{said}");
    for step in [
        "backing it up first",
        "ROLLING BACK",
        "restoring",
        "restored the database from before the upgrade",
    ] {
        assert!(said.contains(step), "deploy did not say '{step}':\n{said}");
    }
    assert_eq!(
        deploy.link(),
        v2,
        "the link points back at the previous build"
    );
    assert_eq!(service.running_exe().as_deref(), Some(v2.as_path()));
    assert_eq!(service.status("/readyz"), Some(200));
    // Every webhook acknowledged before the upgrade is served, and new ones are taken.
    for n in 1..=6 {
        assert_eq!(
            service.status(&format!("/api/v2/orders/DEPLOY-{n}")),
            Some(200),
            "order DEPLOY-{n} acknowledged before the upgrade"
        );
    }
    let stats = service.http.stats();
    assert_eq!(stats["total_received"], 6, "{stats}");
    assert_eq!(service.post_order(7), 200);
    service.wait_for_order(7);
    assert_eq!(
        schema_field(&schema_of(&build1, &db), "database_schema"),
        schema.to_string()
    );

    // What the failed release left is kept aside, and it is what the old binary refuses.
    let files: Vec<String> = std::fs::read_dir(&state_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let aside: Vec<&String> = files
        .iter()
        .filter(|f| {
            f.starts_with("hookvault.db.before-restore-")
                && !f.contains("-wal")
                && !f.contains("-shm")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{files:?}");
    let aside = state_dir.join(aside[0]);
    let refused = schema_of(&build1, &aside);
    assert_eq!(schema_field(&refused, "on_serve"), "refuse");
    assert_eq!(
        schema_field(&refused, "database_schema"),
        (schema + 1).to_string()
    );
    let refused_serve = crate::harness::Hookvault::new()
        .database(&aside)
        .spawn_refused();
    assert!(
        !refused_serve.status.success()
            && text(&refused_serve).contains(&format!("schema version {}", schema + 1)),
        "the previous binary should refuse the migrated database: {}",
        text(&refused_serve)
    );
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("hookvault.db.pre-upgrade-")),
        "the backup taken before the upgrade is kept: {files:?}"
    );
    eprintln!(
        "upgrade that migrated, failed and was rolled back with its backup: {:.2} s",
        took.as_secs_f64()
    );
}

#[test]
fn deploy_picks_the_build_for_the_hosts_machine_and_word_size() {
    // A stand-in for ssh that answers `uname -m` and `getconf LONG_BIT` as a Pi would, and
    // runs everything else (read-only inspection: this is a dry run) here under --prefix.
    let tmp = tempfile::tempdir().unwrap();
    let fake_ssh = tmp.path().join("fake-ssh");
    std::fs::write(
        &fake_ssh,
        "#!/bin/sh\nfor last; do :; done\ncase \"$last\" in\n  'uname -m') echo \"$FAKE_MACHINE\" ;;\n  \
         'getconf LONG_BIT'*) echo \"$FAKE_BITS\" ;;\n  exit) exit 0 ;;\n  *) exec sh -c \"$last\" ;;\nesac\n",
    )
    .unwrap();
    run_ok(Command::new("chmod").args(["755"]).arg(&fake_ssh));
    for (machine, bits, target) in [
        ("armv6l", "32", "arm-unknown-linux-musleabihf"),
        ("armv7l", "32", "armv7-unknown-linux-gnueabihf"),
        ("aarch64", "32", "armv7-unknown-linux-gnueabihf"),
        ("aarch64", "64", "aarch64-unknown-linux-gnu"),
        ("x86_64", "64", "x86_64-unknown-linux-gnu"),
    ] {
        let out = Command::new("bash")
            .arg(Deploy::script())
            .args(["--dry-run", "--prefix"])
            .arg(tmp.path().join("host"))
            .arg("pi.example")
            .env("SSH", &fake_ssh)
            .env("FAKE_MACHINE", machine)
            .env("FAKE_BITS", bits)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let said = text(&out);
        assert!(
            said.contains(&format!(
                "host machine {machine} ({bits}-bit userland): target {target}\n"
            )),
            "{machine}/{bits}: expected {target}:\n{said}"
        );
    }
}
