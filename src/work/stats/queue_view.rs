//! The queue as the stats see it from outside `LiveStats`: the worker channel's fill and the
//! configured backlog limit, read when a snapshot is taken. The queue fills it in
//! (`QueueView::of`, beside the dispatcher), so the stats import nothing of the queue's.

/// Queue figures the stats need from outside `LiveStats`.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueView {
    pub channel_len: usize,
    pub channel_capacity: usize,
    pub max_backlog: u64,
}
