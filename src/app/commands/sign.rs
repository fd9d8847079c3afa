//! `hookvault sign --source NAME [--config FILE] [--id ID] [--timestamp T] FILE|-`: the headers
//! a sender would send for a body, one `Name:value` per line, so an operator can test a
//! source with curl (`docs/operations.md`, "Sources and signatures") or check a sender.
//!
//! The lines carry no space after the colon: `$(hookvault sign ...)` in a shell splits on
//! spaces, and each line must stay one `-H` argument.

use std::io::Read;
use std::path::Path;

use super::load_settings;
use crate::base::error::{Error, Result};
use crate::base::time::now_ms;
use crate::settings::sources::SchemeKind;
use crate::settings::Sources;

pub struct SignRequest {
    pub source: String,
    pub id: Option<String>,
    pub timestamp: Option<String>,
    /// A file, or `-` for standard input.
    pub body: String,
}

pub fn run(sources: Sources, request: SignRequest) -> Result<()> {
    let settings = load_settings(sources)?;
    let list = crate::app::service::sources_of(&settings)?;
    let Some(source) = list.by_name(&request.source) else {
        return Err(Error::Usage(format!(
            "no source named {:?}; the configured sources are {}",
            request.source,
            list.names().join(", ")
        )));
    };
    let timestamp = match &request.timestamp {
        None => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| Error::Usage(format!("--timestamp takes Unix seconds, got {t:?}")))?,
        ),
    };
    let body = read_body(&request.body)?;
    let kind = source.verifier.kind();
    if kind == SchemeKind::Stripe && request.id.is_some() {
        eprintln!("hookvault: stripe: the delivery id is the event's \"id\" in the body; --id is not used");
    }
    let mut lines: Vec<(String, String)> = Vec::new();
    if let Some(token) = &source.token {
        lines.push(("X-Webhook-Token".into(), token.clone()));
    }
    lines.extend(source.verifier.sign(
        &body,
        request.id.as_deref(),
        timestamp,
        now_ms().div_euclid(1000),
    ));
    if kind == SchemeKind::None {
        eprintln!(
            "hookvault: source {:?} checks no signature (verify = \"none\")",
            source.name
        );
    }
    for (name, value) in lines {
        println!("{name}:{value}");
    }
    Ok(())
}

fn read_body(from: &str) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    if from == "-" {
        std::io::stdin()
            .read_to_end(&mut body)
            .map_err(|e| Error::Usage(format!("cannot read the body from standard input: {e}")))?;
    } else {
        body = std::fs::read(Path::new(from))
            .map_err(|e| Error::Usage(format!("cannot read the body from {from}: {e}")))?;
    }
    Ok(body)
}
