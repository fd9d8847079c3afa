/// One message handed to a worker: everything it needs, so the hot path reads nothing back
/// from the database.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub path: String,
    pub payload: Vec<u8>,
    /// Attempts already made (persisted); the worker's claim adds one.
    pub attempts: u32,
}
