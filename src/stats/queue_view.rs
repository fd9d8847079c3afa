//! The queue as the stats see it from outside `LiveStats`: the worker channel's fill and the
//! configured backlog limit, read when a snapshot is taken.

/// Queue figures the stats need from outside `LiveStats`.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueView {
    pub channel_len: usize,
    pub channel_capacity: usize,
    pub max_backlog: u64,
}

impl QueueView {
    /// The channel as it is now, against the configured backlog limit.
    pub fn of(dispatcher: &crate::queue::Dispatcher, max_backlog: u64) -> QueueView {
        QueueView {
            channel_len: dispatcher.channel_len(),
            channel_capacity: dispatcher.channel_capacity(),
            max_backlog,
        }
    }
}
