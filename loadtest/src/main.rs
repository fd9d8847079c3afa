//! `hookvault-loadtest`: arguments in, run, report out, exit status.

use std::process::ExitCode;

use hookvault_loadtest::args::{self, Command, HELP};
use hookvault_loadtest::{run, seed_lines, BaselineServer, Scenario};

fn main() -> ExitCode {
    let command = match args::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hookvault-loadtest: {e}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Command::Baseline { listen, threads } => match BaselineServer::start(&listen, threads) {
            Ok(server) => {
                eprintln!(
                    "baseline server on {} ({threads} threads): every request gets 200 {}; Ctrl-C to stop",
                    server.url(),
                    hookvault_loadtest::baseline::BASELINE_BODY
                );
                server.wait();
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hookvault-loadtest: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run(opts) => match run(&opts) {
            Ok(report) => {
                if opts.json {
                    println!("{}", report.to_json());
                    // stdout holds only the JSON object; say why a run failed on stderr too
                    for f in &report.failures {
                        eprintln!("hookvault-loadtest: FAIL: {f}");
                    }
                } else {
                    if opts.scenario == Some(Scenario::Seed100) {
                        print!("{}", seed_lines(&report));
                        println!();
                    }
                    print!("{}", report.to_text());
                }
                if report.ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("hookvault-loadtest: {e}");
                ExitCode::from(2)
            }
        },
    }
}
