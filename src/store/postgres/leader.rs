//! [`Leadership`] on a shared database: a session-level advisory lock on a connection of its
//! own. PostgreSQL releases it when the session ends (the node stopped, crashed or lost the
//! network), so the next node's attempt takes it.

use postgres::{Client, Config};

use super::connect;
use crate::store::leadership::{Duty, Leadership};

pub struct AdvisoryLeader {
    config: Config,
    key: i64,
    client: Option<Client>,
    held: bool,
    duty: Duty,
}

impl AdvisoryLeader {
    pub fn new(config: Config, duty: Duty) -> AdvisoryLeader {
        AdvisoryLeader {
            config,
            key: duty.lock_key(),
            client: None,
            held: false,
            duty,
        }
    }

    fn try_lead(&mut self) -> Result<bool, String> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.held = false;
            self.client = Some(connect(&self.config).map_err(|e| e.to_string())?);
        }
        let client = self.client.as_mut().expect("connected above");
        if self.held {
            // Still ours while the session lives; a query proves it does.
            client.simple_query("SELECT 1").map_err(|e| e.to_string())?;
            return Ok(true);
        }
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&self.key])
            .map_err(|e| e.to_string())?;
        self.held = row.get(0);
        Ok(self.held)
    }
}

impl Leadership for AdvisoryLeader {
    fn lead(&mut self) -> bool {
        let was = self.held;
        match self.try_lead() {
            Ok(now) => {
                if now && !was {
                    log::info!("this node now leads {:?} (advisory lock)", self.duty);
                }
                now
            }
            Err(e) => {
                if was {
                    log::warn!("lost the lead of {:?}: {e}", self.duty);
                }
                // A broken session holds nothing: connect and try again next time.
                self.client = None;
                self.held = false;
                false
            }
        }
    }
}
