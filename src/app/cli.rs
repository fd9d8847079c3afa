//! The command line. Hand-rolled: five flags do not earn a parser dependency, and the help
//! text stays exactly what we write.

use std::path::PathBuf;

use toml::Value;

use crate::base::error::{Error, Result};
use crate::settings::Sources;

pub const HELP: &str = "\
hookvault — durable webhook intake: a 2xx means it is stored

USAGE:
    hookvault serve [--config FILE] [--listen ADDR] [--ws-listen ADDR] [--db PATH] [--workers N]
    hookvault check-config [--config FILE]   validate, print the effective config, exit 0/1
    hookvault check [--config FILE] [--db PATH] [--repair]
                                             counters and states against the tables; exit 0 when
                                             consistent, 1 when not; --repair rebuilds the counters
    hookvault reprocess [--config FILE] [--db PATH] [--since DATE] [--status STATE]
                                             re-derive orders from stored webhooks
    hookvault backup PATH [--config FILE] [--db PATH] [--force]
                                             copy the live database to PATH (beside a running serve)
    hookvault restore BACKUP [--config FILE] [--db PATH] [--force]
                                             put a backup in place (serve stopped)
    hookvault schema [--config FILE] [--db PATH]
                                             the schema version this binary runs, the database's,
                                             and what serve would do (on_serve=create, none,
                                             migrate or refuse); reads only
    hookvault migrate --from sqlite:PATH --to postgres://USER@HOST/DB
                                             copy a SQLite database into PostgreSQL, verified
                                             (a build with --features postgres; docs/cluster.md)
    hookvault sign --source NAME [--config FILE] [--id ID] [--timestamp T] FILE|-
                                             the headers a sender would send for the body in FILE
                                             (- for stdin), one Name:value a line, for curl -H
    hookvault --version | --help

OPTIONS:
    --config FILE      TOML configuration (see config.example.toml); without it, built-in defaults
    --listen ADDR      HTTP address (server.listen, default 127.0.0.1:8001)
    --ws-listen ADDR   WebSocket event stream address (websocket.listen, default 127.0.0.1:8002; \"off\")
    --db PATH          SQLite database file (storage.path, default hookvault.db)
    --workers N        worker threads (queue.workers, default 10)
    --since DATE       reprocess: only webhooks received at or after DATE (2026-11-28 or RFC 3339)
    --status STATE     reprocess: only webhooks in STATE (e.g. dead)
    --force            backup: replace an existing PATH; restore: move the current database
                       aside (to <db>.before-restore-<time>) and put the backup in its place
    --from, --to       migrate: the SQLite file and the PostgreSQL URL (password: URL or PGPASSWORD)
    --source NAME      sign: the [[sources]] name whose scheme and first secret sign the body
    --id ID            sign: the delivery id (default: a fresh one)
    --timestamp T      sign: the signed time in Unix seconds (default: now)

Settings precedence: defaults < config file < HOOKVAULT_<SECTION>_<KEY> environment < flags.
Docs: README.md, docs/operations.md, and /docs on the running server.
";

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Serve(Sources),
    CheckConfig(Sources),
    Check {
        sources: Sources,
        repair: bool,
    },
    Reprocess {
        sources: Sources,
        since: Option<String>,
        status: Option<String>,
    },
    Backup {
        sources: Sources,
        target: PathBuf,
        force: bool,
    },
    Restore {
        sources: Sources,
        backup: PathBuf,
        force: bool,
    },
    Schema(Sources),
    Migrate {
        /// The SQLite file (`--from sqlite:PATH`, the prefix removed).
        from: PathBuf,
        to: String,
    },
    Sign {
        sources: Sources,
        source: String,
        id: Option<String>,
        timestamp: Option<String>,
        /// The body's file, `-` for standard input.
        body: String,
    },
    Version,
    Help,
}

pub fn parse(args: &[String]) -> Result<Command> {
    let Some(first) = args.first() else {
        return Err(Error::Usage(
            "no command given; try `hookvault serve`".into(),
        ));
    };
    let rest = &args[1..];
    // `hookvault serve --help` is a request for help, not a mistake.
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(Command::Help);
    }
    match first.as_str() {
        "--version" | "-V" | "version" => Ok(Command::Version),
        "--help" | "-h" | "help" => Ok(Command::Help),
        "serve" => parse_flags(rest, &["--listen", "--ws-listen", "--db", "--workers"])
            .map(|(s, _)| Command::Serve(s)),
        "check-config" => parse_flags(rest, &[]).map(|(s, _)| Command::CheckConfig(s)),
        "schema" => parse_flags(rest, &["--db"]).map(|(s, _)| Command::Schema(s)),
        "check" => {
            let repair = rest.iter().any(|a| a == "--repair");
            let rest: Vec<String> = rest.iter().filter(|a| *a != "--repair").cloned().collect();
            parse_flags(&rest, &["--db"]).map(|(sources, _)| Command::Check { sources, repair })
        }
        "reprocess" => {
            let (sources, extra) = parse_flags(rest, &["--db", "--since", "--status"])?;
            let get = |name: &str| {
                extra
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            Ok(Command::Reprocess {
                sources,
                since: get("--since"),
                status: get("--status"),
            })
        }
        "migrate" => {
            let (sources, extra) = parse_flags(rest, &["--from", "--to"])?;
            if sources.file.is_some() {
                return Err(Error::Usage(
                    "migrate takes no --config: name both databases with --from and --to".into(),
                ));
            }
            let get = |name: &str| {
                extra
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            let from = get("--from").ok_or_else(|| {
                Error::Usage("migrate needs --from sqlite:PATH (the SQLite file to copy)".into())
            })?;
            let Some(path) = from.strip_prefix("sqlite:").filter(|p| !p.is_empty()) else {
                return Err(Error::Usage(format!(
                    "--from {from:?}: expected sqlite:PATH, e.g. sqlite:/var/lib/hookvault/hookvault.db"
                )));
            };
            let to = get("--to")
                .ok_or_else(|| Error::Usage("migrate needs --to postgres://USER@HOST/DB".into()))?;
            if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
                return Err(Error::Usage(format!(
                    "--to: expected a postgres:// URL, got {:?}",
                    crate::settings::mask_url_password(&to)
                )));
            }
            Ok(Command::Migrate {
                from: PathBuf::from(path),
                to,
            })
        }
        "backup" => {
            let (sources, path, force) = parse_path_command("backup", "PATH", rest)?;
            Ok(Command::Backup {
                sources,
                target: path,
                force,
            })
        }
        "restore" => {
            let (sources, path, force) = parse_path_command("restore", "BACKUP", rest)?;
            Ok(Command::Restore {
                sources,
                backup: path,
                force,
            })
        }
        "sign" => parse_sign(rest),
        other => Err(Error::Usage(format!(
            "unknown command `{other}`; the commands are serve, check-config, check, \
             reprocess, backup, restore, schema, migrate, sign"
        ))),
    }
}

/// `COMMAND PATH [--config FILE] [--db PATH] [--force]`: one file argument, the `--force`
/// switch, and the usual flags in any order.
fn parse_path_command(
    command: &str,
    what: &str,
    args: &[String],
) -> Result<(Sources, PathBuf, bool)> {
    let mut force = false;
    let mut paths = Vec::new();
    let mut flags = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--force" {
            force = true;
        } else if arg.starts_with("--") {
            flags.push(arg.clone());
            if !arg.contains('=') {
                if let Some(value) = args.get(i + 1) {
                    flags.push(value.clone());
                    i += 1;
                }
            }
        } else {
            paths.push(arg.clone());
        }
        i += 1;
    }
    let (sources, _) = parse_flags(&flags, &["--db"])?;
    match paths.as_slice() {
        [one] => Ok((sources, PathBuf::from(one), force)),
        [] => Err(Error::Usage(format!("`{command}` needs a {what}"))),
        _ => Err(Error::Usage(format!(
            "`{command}` takes one {what}, got {}",
            paths.join(" ")
        ))),
    }
}

/// `sign --source NAME [--config FILE] [--id ID] [--timestamp T] FILE|-`: one body argument
/// (`-` is standard input, not a flag) and the flags in any order.
fn parse_sign(args: &[String]) -> Result<Command> {
    let mut bodies = Vec::new();
    let mut flags = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg.starts_with("--") {
            flags.push(arg.clone());
            if !arg.contains('=') {
                if let Some(value) = args.get(i + 1) {
                    flags.push(value.clone());
                    i += 1;
                }
            }
        } else {
            bodies.push(arg.clone());
        }
        i += 1;
    }
    let (sources, extra) = parse_flags(&flags, &["--source", "--id", "--timestamp"])?;
    let get = |name: &str| {
        extra
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let source = get("--source")
        .ok_or_else(|| Error::Usage("sign needs --source NAME (a [[sources]] name)".into()))?;
    let body = match bodies.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(Error::Usage(
                "sign needs the body: a FILE, or - for standard input".into(),
            ))
        }
        _ => {
            return Err(Error::Usage(format!(
                "sign takes one body, got {}",
                bodies.join(" ")
            )))
        }
    };
    Ok(Command::Sign {
        sources,
        source,
        id: get("--id"),
        timestamp: get("--timestamp"),
        body,
    })
}

/// Parses `--flag VALUE` / `--flag=VALUE`; `allowed` lists the flags beyond `--config`.
fn parse_flags(args: &[String], allowed: &[&str]) -> Result<(Sources, Vec<(String, String)>)> {
    let mut sources = Sources::default();
    let mut extra = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if name != "--config" && !allowed.contains(&name.as_str()) {
            return Err(Error::Usage(format!("unknown option `{name}`")));
        }
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                args.get(i)
                    .cloned()
                    .ok_or_else(|| Error::Usage(format!("`{name}` needs a value")))?
            }
        };
        match name.as_str() {
            "--config" => sources.file = Some(PathBuf::from(value)),
            "--listen" => sources
                .flags
                .push(("server.listen".into(), Value::String(value))),
            "--ws-listen" => sources
                .flags
                .push(("websocket.listen".into(), Value::String(value))),
            "--db" => sources
                .flags
                .push(("storage.path".into(), Value::String(value))),
            "--workers" => {
                let n: i64 = value.parse().map_err(|_| {
                    Error::Usage(format!("--workers takes a whole number, got {value:?}"))
                })?;
                sources
                    .flags
                    .push(("queue.workers".into(), Value::Integer(n)));
            }
            _ => extra.push((name, value)),
        }
        i += 1;
    }
    Ok((sources, extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn serve_flags_become_settings() {
        let Command::Serve(s) = parse(&args(
            "serve --listen 127.0.0.1:0 --db=/tmp/x.db --workers 3 --config c.toml",
        ))
        .unwrap() else {
            panic!()
        };
        assert_eq!(s.file, Some(PathBuf::from("c.toml")));
        assert_eq!(
            s.flags[0],
            ("server.listen".into(), Value::String("127.0.0.1:0".into()))
        );
        assert_eq!(
            s.flags[1],
            ("storage.path".into(), Value::String("/tmp/x.db".into()))
        );
        assert_eq!(s.flags[2], ("queue.workers".into(), Value::Integer(3)));
    }

    #[test]
    fn mistakes_are_usage_errors() {
        for bad in [
            "",
            "frobnicate",
            "serve --nope 1",
            "serve --listen",
            "serve --workers many",
            "check-config --listen x",
        ] {
            let e = parse(&args(bad)).unwrap_err();
            assert_eq!(e.exit_code(), crate::base::error::EXIT_USAGE, "{bad}: {e}");
        }
        assert_eq!(parse(&args("--version")).unwrap(), Command::Version);
        assert_eq!(parse(&args("serve --help")).unwrap(), Command::Help);
        assert!(
            matches!(parse(&args("reprocess --status dead")).unwrap(), Command::Reprocess { status: Some(s), .. } if s == "dead")
        );
        assert!(matches!(
            parse(&args("check --repair --db x.db")).unwrap(),
            Command::Check { repair: true, sources } if sources.flags.len() == 1
        ));
        assert!(matches!(
            parse(&args("check")).unwrap(),
            Command::Check { repair: false, .. }
        ));
        assert!(parse(&args("check --workers 2")).is_err());
        for bad in [
            "backup",
            "backup a.db b.db",
            "backup --config",
            "backup a.db --listen x",
            "restore",
            "restore --force",
            "migrate --to postgres://h/db",
            "migrate --from x.db --to postgres://h/db",
            "migrate --from sqlite:x.db",
            "migrate --from sqlite:x.db --to mysql://h/db",
        ] {
            let e = parse(&args(bad)).unwrap_err();
            assert_eq!(e.exit_code(), crate::base::error::EXIT_USAGE, "{bad}: {e}");
        }
    }

    #[test]
    fn sign_takes_a_source_a_body_and_optional_id_and_time() {
        let Command::Sign {
            sources,
            source,
            id,
            timestamp,
            body,
        } = parse(&args(
            "sign --source gh --config c.toml - --id d-1 --timestamp=17",
        ))
        .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (source.as_str(), body.as_str(), sources.file),
            ("gh", "-", Some(PathBuf::from("c.toml")))
        );
        assert_eq!(
            (id.as_deref(), timestamp.as_deref()),
            (Some("d-1"), Some("17"))
        );
        for bad in [
            "sign body.json",
            "sign --source gh",
            "sign --source gh a b",
            "sign --source gh --db x a",
        ] {
            let e = parse(&args(bad)).unwrap_err();
            assert_eq!(e.exit_code(), crate::base::error::EXIT_USAGE, "{bad}: {e}");
        }
    }

    #[test]
    fn backup_and_restore_take_a_path_the_force_switch_and_the_usual_flags() {
        let Command::Backup {
            sources,
            target,
            force,
        } = parse(&args("backup --config c.toml /b/x.db --db=/d/h.db")).unwrap()
        else {
            panic!()
        };
        assert_eq!(target, PathBuf::from("/b/x.db"));
        assert!(!force);
        assert_eq!(sources.file, Some(PathBuf::from("c.toml")));
        assert_eq!(
            sources.flags,
            vec![("storage.path".into(), Value::String("/d/h.db".into()))]
        );
        let Command::Restore { backup, force, .. } =
            parse(&args("restore --force /b/x.db")).unwrap()
        else {
            panic!()
        };
        assert_eq!(backup, PathBuf::from("/b/x.db"));
        assert!(force);
        assert_eq!(
            parse(&args(
                "migrate --from sqlite:/d/x.db --to postgres://u@h/db"
            ))
            .unwrap(),
            Command::Migrate {
                from: PathBuf::from("/d/x.db"),
                to: "postgres://u@h/db".into()
            }
        );
    }
}
