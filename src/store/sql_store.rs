//! The write store every SQL backend is: the state machine (`state_machine.rs`) run in the
//! backend's transactions. A backend only provides [`SqlBackend`]; this is its [`WriteStore`].

use std::time::Duration;

use super::sql::SqlBackend;
use super::state_machine;
use crate::store::error::StoreResult;
use crate::store::model::{CounterDelta, OpOutcome, WriteOp};
use crate::store::seam::WriteStore;

pub struct SqlStore<B> {
    pub(crate) backend: B,
}

impl<B: SqlBackend> SqlStore<B> {
    pub fn new(backend: B) -> Self {
        SqlStore { backend }
    }

    pub fn into_backend(self) -> B {
        self.backend
    }
}

impl<B: SqlBackend> WriteStore for SqlStore<B> {
    fn commit_batch(
        &mut self,
        ops: &[WriteOp],
        now_ms: i64,
    ) -> StoreResult<(Vec<OpOutcome>, CounterDelta)> {
        self.backend
            .transaction(|tx| state_machine::apply_batch(tx, ops, now_ms))
    }

    fn recover_in_flight(&mut self, owner: &str, now_ms: i64) -> StoreResult<u64> {
        self.backend
            .transaction(|tx| state_machine::recover_in_flight(tx, owner, now_ms))
    }

    fn maintain(&mut self, idle_for: Duration) -> StoreResult<Option<Duration>> {
        self.backend.maintain(idle_for)
    }

    fn close(&mut self) -> StoreResult<()> {
        self.backend.close()
    }
}
