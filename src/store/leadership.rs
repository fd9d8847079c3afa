//! One node at a time for a duty that keeps state between its runs (alerts: which
//! conditions are active, what was told when). Retention needs only "one sweep at a time" and
//! takes a transaction's advisory lock per batch; a duty with memory holds the same kind of
//! PostgreSQL advisory lock for a whole session instead, so it stays with one node until that
//! node stops or loses its connection, when the database lets go of it and the next node's
//! attempt takes it. A single node (SQLite) always leads.

/// Asked before every run of the duty.
pub trait Leadership: Send {
    /// Whether this node leads now; tries to become the leader when it does not.
    fn lead(&mut self) -> bool;
}

/// The one node of a database nobody shares.
pub struct SingleNode;

impl Leadership for SingleNode {
    fn lead(&mut self) -> bool {
        true
    }
}

/// Duties that elect a node: each has its own lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duty {
    Alerts,
}

impl Duty {
    /// The advisory lock key, in the family of the migration (`…0001`) and retention
    /// (`…0002`) keys: "hookva" then the duty's number.
    pub fn lock_key(self) -> i64 {
        match self {
            Duty::Alerts => 0x686f_6f6b_7661_0003,
        }
    }
}
