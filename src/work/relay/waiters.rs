//! `?wait=true`: the Discord path waits for Discord's own answer to the message's delivery.
//! Workers keep the answers of deliveries sent with `wait=true` for a while (bounded), so an
//! answer that comes before the handler starts waiting is not lost.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Answers kept at most; the oldest go first.
const KEPT: usize = 256;

/// A target's answer, passed back to the sender as it came.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Default)]
pub struct Waiters {
    answers: Mutex<VecDeque<(i64, RelayAnswer)>>,
    arrived: Condvar,
}

impl Waiters {
    pub fn answered(&self, message_id: i64, answer: RelayAnswer) {
        if let Ok(mut a) = self.answers.lock() {
            if a.len() >= KEPT {
                a.pop_front();
            }
            a.push_back((message_id, answer));
        }
        self.arrived.notify_all();
    }

    pub fn wait(&self, message_id: i64, timeout: Duration) -> Option<RelayAnswer> {
        let deadline = Instant::now() + timeout;
        let mut answers = self.answers.lock().ok()?;
        loop {
            if let Some(i) = answers.iter().position(|(id, _)| *id == message_id) {
                return answers.remove(i).map(|(_, a)| a);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            answers = self.arrived.wait_timeout(answers, left).ok()?.0;
        }
    }
}
