//! What `hookvault check` reports: the durable counters against the tables they count, and
//! the state and lease rules every row keeps. Plain data; the backend (`sqlite/check.rs`)
//! runs the queries and, with `--repair`, rebuilds what can be rebuilt.

/// One check: a name that says the rule, what the tables say it should be, what was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The rule, e.g. `counter received = messages + purged`.
    pub name: String,
    /// The counter (or rule subject) it is about, e.g. `received`: what a report names.
    pub subject: String,
    pub expected: i64,
    pub found: i64,
    /// `true` when `found` may exceed `expected` (a lower bound, not an equality).
    pub at_least: bool,
}

impl Check {
    pub fn ok(&self) -> bool {
        if self.at_least {
            self.found >= self.expected
        } else {
            self.found == self.expected
        }
    }
}

/// Every check of one run, and what `--repair` changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsistencyReport {
    pub checks: Vec<Check>,
    /// What a repair did, one line each (empty without `--repair` or when nothing was wrong).
    pub repaired: Vec<String>,
}

impl ConsistencyReport {
    pub fn consistent(&self) -> bool {
        self.checks.iter().all(Check::ok)
    }

    pub fn mismatches(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.ok())
    }
}
