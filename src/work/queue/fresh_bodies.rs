//! Bodies of messages just committed and handed to the workers on the fast path, kept for the
//! worker that starts them so it need not read them back from the database.
//!
//! Reading a body back cost a read transaction per job: with every commit the reader's page
//! cache is stale, so SQLite re-reads the WAL index and the pages (`pread`), about half of the
//! workers' CPU under load (docs/performance.md, "Cost per webhook"). The body was in the
//! writer's hands at the commit anyway; keeping it here is a hash insert on the writer thread
//! and a hash remove on the worker's.
//!
//! Bounded, so payload memory stays bounded by settings and not by the backlog (the point of
//! `queue::bodies`): only bodies up to [`MAX_BODY`] are kept, at most [`MAX_BYTES`] and
//! [`MAX_ENTRIES`] in all, the oldest dropped first. A body that is not here (too large,
//! dropped, or a ticket from the feeder) is read from the store as before: this is a shortcut,
//! never the only copy. A message's body never changes once stored, so a kept one is the
//! stored one.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Larger bodies are read back from the store: a few of them would use up the budget.
pub const MAX_BODY: usize = 64 * 1024;
/// All kept bodies together.
pub const MAX_BYTES: usize = 1024 * 1024;
/// Kept bodies (and remembered ids) at most, however small.
pub const MAX_ENTRIES: usize = 4096;

#[derive(Default)]
pub struct FreshBodies {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    bodies: HashMap<i64, Vec<u8>>,
    /// Ids in the order they were kept, for dropping the oldest; may name ids already taken.
    order: VecDeque<i64>,
    bytes: usize,
}

impl Kept {
    fn drop_oldest(&mut self) {
        if let Some(id) = self.order.pop_front() {
            if let Some(body) = self.bodies.remove(&id) {
                self.bytes -= body.len();
            }
        }
    }
}

impl FreshBodies {
    /// Keeps `body` for message `id` if it fits; it is dropped otherwise.
    pub fn keep(&self, id: i64, body: Vec<u8>) {
        if body.len() > MAX_BODY {
            return;
        }
        let Ok(mut k) = self.kept.lock() else {
            return;
        };
        // Ids already taken at the front cost nothing to forget; this keeps `order` short
        // while workers keep up.
        while k
            .order
            .front()
            .is_some_and(|front| !k.bodies.contains_key(front))
        {
            k.order.pop_front();
        }
        k.bytes += body.len();
        if let Some(old) = k.bodies.insert(id, body) {
            k.bytes -= old.len();
        } else {
            k.order.push_back(id);
        }
        while k.bytes > MAX_BYTES || k.order.len() > MAX_ENTRIES {
            k.drop_oldest();
        }
    }

    /// The kept body of message `id`, removed from here; `None` when it was not kept.
    pub fn take(&self, id: i64) -> Option<Vec<u8>> {
        let mut k = self.kept.lock().ok()?;
        let body = k.bodies.remove(&id)?;
        k.bytes -= body.len();
        Some(body)
    }

    /// Forgets message `id`'s body (it was not handed over after all).
    pub fn forget(&self, id: i64) {
        let _ = self.take(id);
    }

    /// Kept bodies and their bytes.
    #[cfg(test)]
    pub fn held(&self) -> (usize, usize) {
        self.kept
            .lock()
            .map(|k| (k.bodies.len(), k.bytes))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_body_is_taken_once() {
        let f = FreshBodies::default();
        f.keep(1, b"one".to_vec());
        assert_eq!(f.take(1).as_deref(), Some(&b"one"[..]));
        assert_eq!(f.take(1), None);
        assert_eq!(f.held(), (0, 0));
    }

    #[test]
    fn large_bodies_are_not_kept() {
        let f = FreshBodies::default();
        f.keep(1, vec![0; MAX_BODY + 1]);
        assert_eq!(f.take(1), None);
        f.keep(2, vec![0; MAX_BODY]);
        assert_eq!(f.take(2).map(|b| b.len()), Some(MAX_BODY));
    }

    #[test]
    fn the_budget_drops_the_oldest() {
        let f = FreshBodies::default();
        let per = MAX_BODY;
        let fit = MAX_BYTES / per;
        for id in 0..(fit as i64 + 3) {
            f.keep(id, vec![0; per]);
        }
        let (n, bytes) = f.held();
        assert!(bytes <= MAX_BYTES && n == fit, "{n} bodies, {bytes} bytes");
        assert_eq!(f.take(0), None, "the oldest went first");
        assert!(f.take(fit as i64 + 2).is_some(), "the newest stays");
        for id in 0..(MAX_ENTRIES as i64 * 3) {
            f.keep(1_000_000 + id, vec![1]);
        }
        let (n, _) = f.held();
        assert!(n <= MAX_ENTRIES, "{n} bodies kept");
        assert!(f.kept.lock().unwrap().order.len() <= MAX_ENTRIES);
    }

    #[test]
    fn ids_taken_promptly_leave_no_trace() {
        let f = FreshBodies::default();
        for id in 0..100_000 {
            f.keep(id, b"{}".to_vec());
            assert!(f.take(id).is_some());
        }
        assert!(f.kept.lock().unwrap().order.len() <= 1);
    }
}
