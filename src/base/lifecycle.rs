//! How background threads start and stop. One mechanism for all of them:
//!
//! - [`Stop`]: the word to stop, cloned into every thread. It is a channel whose only sender
//!   is dropped, so one [`Stopper`] wakes any number of threads at once, a thread can wait for
//!   it beside its own channels (`select!` on [`Stop::receiver`]), and its sleeps end early
//!   ([`Stop::sleep`]).
//! - [`Thread`]: a named thread that says when it has ended, so it is waited for with a
//!   deadline; one still running then is left behind and one that panicked is logged.
//! - [`Component`]: whatever owns threads and can stop them; [`Background`] is the usual one
//!   (threads that end on one `Stop`).
//! - [`Components`]: the started components in start order. Stopping walks the list backwards,
//!   in one loop, and so does dropping it: a start step that fails stops what the steps before
//!   it started.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError};

use crate::base::shutdown::DrainDeadline;

/// Told to stop once the [`Stopper`] it came from stops (or is dropped). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Stop {
    rx: Receiver<()>,
}

impl Stop {
    /// Whether the stop has been given.
    pub fn is_stopping(&self) -> bool {
        matches!(self.rx.try_recv(), Err(TryRecvError::Disconnected))
    }

    /// Sleeps `d` unless the stop comes first; true when it did (the sleep was cut short).
    pub fn sleep(&self, d: Duration) -> bool {
        !matches!(self.rx.recv_timeout(d), Err(RecvTimeoutError::Timeout))
    }

    /// Waits until the stop is given.
    pub fn wait(&self) {
        let _ = self.rx.recv();
    }

    /// For `select!` beside other channels: ready (disconnected) once the stop is given.
    pub fn receiver(&self) -> &Receiver<()> {
        &self.rx
    }
}

/// Gives the [`Stop`] its threads wait for: [`Stopper::stop`], or dropping it.
#[derive(Debug)]
pub struct Stopper {
    trigger: Option<Sender<()>>,
    stop: Stop,
}

impl Default for Stopper {
    fn default() -> Self {
        Self::new()
    }
}

impl Stopper {
    pub fn new() -> Stopper {
        let (tx, rx) = bounded(0);
        Stopper {
            trigger: Some(tx),
            stop: Stop { rx },
        }
    }

    /// A [`Stop`] for one more thread.
    pub fn signal(&self) -> Stop {
        self.stop.clone()
    }

    /// Tells every thread holding one of this stopper's [`Stop`]s to stop.
    pub fn stop(&mut self) {
        self.trigger = None;
    }
}

/// How a thread ended when it was waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    Ended,
    Panicked,
    /// Still running at the deadline; it runs on, detached.
    LeftBehind,
}

/// A named thread that can be waited for with a deadline. Dropping it detaches the thread.
#[derive(Debug)]
pub struct Thread {
    name: String,
    handle: JoinHandle<()>,
    /// Disconnects when the thread's body returns or unwinds.
    ended: Receiver<()>,
}

impl Thread {
    /// Starts `body` on a thread named `name` (the name shows in `top -H` and in panics).
    pub fn spawn(
        name: impl Into<String>,
        body: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Thread> {
        Thread::start(name.into(), None, body)
    }

    /// Like [`Thread::spawn`] with a stack of `stack` bytes, for threads started in numbers.
    pub fn spawn_with_stack(
        name: impl Into<String>,
        stack: usize,
        body: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Thread> {
        Thread::start(name.into(), Some(stack), body)
    }

    fn start(
        name: String,
        stack: Option<usize>,
        body: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Thread> {
        let (ended_tx, ended) = bounded::<()>(0);
        let mut builder = std::thread::Builder::new().name(name.clone());
        if let Some(stack) = stack {
            builder = builder.stack_size(stack);
        }
        let handle = builder
            .spawn(move || {
                // Dropped when `body` returns or unwinds: the end is heard either way.
                let _ended = ended_tx;
                body();
            })
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot start thread {name}: {e}"))
            })?;
        Ok(Thread {
            name,
            handle,
            ended,
        })
    }

    #[cfg(test)]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for the thread until `deadline`; one still running then is left behind (logged).
    pub fn join_by(self, deadline: Instant) -> Joined {
        match self.ended.recv_deadline(deadline) {
            Err(RecvTimeoutError::Timeout) => {
                log::warn!(
                    "thread {} was still running at the stop's deadline; left behind",
                    self.name
                );
                Joined::LeftBehind
            }
            _ => self.reap(),
        }
    }

    /// Waits for the thread however long it takes.
    pub fn join(self) -> Joined {
        let _ = self.ended.recv();
        self.reap()
    }

    fn reap(self) -> Joined {
        match self.handle.join() {
            Ok(()) => Joined::Ended,
            Err(panic) => {
                log::error!("thread {} panicked: {}", self.name, panic_message(&*panic));
                Joined::Panicked
            }
        }
    }
}

/// What a panic said, for the log.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".into()
    }
}

/// Something started that owns threads and can stop them.
pub trait Component: Send {
    /// For the log and the stop report.
    fn name(&self) -> &'static str;

    /// Stops its threads and waits for them until `deadline`; returns how many were still
    /// running then (left behind, and logged by name).
    fn stop(self: Box<Self>, deadline: Instant) -> usize;
}

/// Threads that end when one `Stop` is given: the usual `Component`.
pub struct Background {
    name: &'static str,
    stopper: Stopper,
    threads: Vec<Thread>,
}

impl Background {
    /// No threads yet; `name` names the component (its threads get their own names).
    pub fn new(name: &'static str) -> Background {
        Background {
            name,
            stopper: Stopper::new(),
            threads: Vec::new(),
        }
    }

    /// Starts a thread named `thread` running `body` with this component's `Stop`.
    pub fn spawn(
        &mut self,
        thread: impl Into<String>,
        body: impl FnOnce(Stop) + Send + 'static,
    ) -> std::io::Result<()> {
        let stop = self.stopper.signal();
        self.threads
            .push(Thread::spawn(thread, move || body(stop))?);
        Ok(())
    }

    /// Like [`Background::spawn`] with a stack of `stack` bytes.
    pub fn spawn_with_stack(
        &mut self,
        thread: impl Into<String>,
        stack: usize,
        body: impl FnOnce(Stop) + Send + 'static,
    ) -> std::io::Result<()> {
        let stop = self.stopper.signal();
        self.threads
            .push(Thread::spawn_with_stack(thread, stack, move || body(stop))?);
        Ok(())
    }

    /// How many threads it started.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    /// Gives the stop without waiting (for a component that must wake its threads another
    /// way too before it waits).
    pub fn give_stop(&mut self) {
        self.stopper.stop();
    }

    /// Waits for every thread until `deadline`; how many were left behind.
    pub fn wait(mut self, deadline: Instant) -> usize {
        self.threads
            .drain(..)
            .map(|t| t.join_by(deadline))
            .filter(|j| *j == Joined::LeftBehind)
            .count()
    }

    /// Gives the stop and waits for every thread until `deadline`; how many were left behind.
    pub fn stop(mut self, deadline: Instant) -> usize {
        self.give_stop();
        self.wait(deadline)
    }
}

impl Drop for Background {
    /// A component dropped unstopped (a later thread of it could not start): its threads stop.
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.give_stop();
            let deadline = Instant::now() + LATE;
            for t in self.threads.drain(..) {
                t.join_by(deadline);
            }
        }
    }
}

impl Component for Background {
    fn name(&self) -> &'static str {
        self.name
    }

    fn stop(self: Box<Self>, deadline: Instant) -> usize {
        Background::stop(*self, deadline)
    }
}

/// Threads still running after the drain's end are waited for this much longer (a worker
/// that took a message just before the deadline), then left behind.
const LATE: Duration = Duration::from_secs(1);

/// The started components, in start order; stopped in reverse, once. The stop begins the
/// drain clock the workers read ([`DrainDeadline`]), and every component then has until the
/// drain's end (plus a second) before its threads are left behind.
pub struct Components {
    started: Vec<Box<dyn Component>>,
    drain: DrainDeadline,
    drain_for: Duration,
}

/// What a stop did.
#[derive(Debug, Default)]
pub struct Stopped {
    /// Per component (by name) that left any: threads still running at the deadline.
    pub left_behind: Vec<(&'static str, usize)>,
}

impl Stopped {
    /// Threads `component` left behind.
    pub fn left_behind_by(&self, component: &str) -> usize {
        self.left_behind
            .iter()
            .filter(|(name, _)| *name == component)
            .map(|(_, n)| n)
            .sum()
    }
}

impl Components {
    /// An empty list; a stop gives the workers `drain_for` to empty their channel.
    pub fn new(drain_for: Duration) -> Components {
        Components {
            started: Vec::new(),
            drain: DrainDeadline::default(),
            drain_for,
        }
    }

    /// The drain's deadline, set when the stop begins (for the workers).
    pub fn drain(&self) -> DrainDeadline {
        self.drain.clone()
    }

    /// Adds a started component: it stops before every one added earlier.
    pub fn push(&mut self, component: impl Component + 'static) {
        self.started.push(Box::new(component));
    }

    /// Stops every component, the last started first.
    pub fn stop(&mut self) -> Stopped {
        let deadline = self.drain.begin(self.drain_for) + LATE;
        let mut stopped = Stopped::default();
        while let Some(component) = self.started.pop() {
            let name = component.name();
            let began = Instant::now();
            let left = component.stop(deadline);
            log::debug!("stopped {name} in {:?}", began.elapsed());
            if left > 0 {
                stopped.left_behind.push((name, left));
            }
        }
        stopped
    }
}

impl Drop for Components {
    /// A start step that failed, or a service dropped without a stop: stop what was started.
    fn drop(&mut self) {
        if !self.started.is_empty() {
            self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_stop_wakes_every_thread_and_cuts_sleeps_short() {
        let mut stopper = Stopper::new();
        let (a, b) = (stopper.signal(), stopper.signal());
        assert!(!a.is_stopping());
        assert!(
            !a.sleep(Duration::from_millis(1)),
            "no stop yet: the sleep ran out"
        );
        let sleeper = std::thread::spawn(move || b.sleep(Duration::from_secs(60)));
        stopper.stop();
        assert!(sleeper.join().unwrap(), "the sleep was cut short");
        assert!(a.is_stopping());
        a.wait();
    }

    #[test]
    fn dropping_the_stopper_stops_too() {
        let stopper = Stopper::new();
        let stop = stopper.signal();
        drop(stopper);
        assert!(stop.is_stopping());
    }

    #[test]
    fn a_join_tells_ended_panicked_and_left_behind() {
        let soon = || Instant::now() + Duration::from_secs(5);
        let ended = Thread::spawn("t-ended", || {}).unwrap();
        assert_eq!(ended.name(), "t-ended");
        assert_eq!(ended.join_by(soon()), Joined::Ended);
        let panicked = Thread::spawn("t-panics", || panic!("on purpose")).unwrap();
        assert_eq!(panicked.join_by(soon()), Joined::Panicked);
        let stopper = Stopper::new();
        let stop = stopper.signal();
        let stuck = Thread::spawn("t-stuck", move || stop.wait()).unwrap();
        let t = Instant::now();
        assert_eq!(
            stuck.join_by(t + Duration::from_millis(50)),
            Joined::LeftBehind
        );
        assert!(t.elapsed() >= Duration::from_millis(50));
        drop(stopper);
    }

    #[test]
    fn an_ended_thread_is_reaped_even_past_the_deadline() {
        let t = Thread::spawn("t-past", || {}).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(t.join_by(Instant::now()), Joined::Ended);
    }

    /// Records its name when stopped.
    struct Named(&'static str, Arc<Mutex<Vec<&'static str>>>);

    impl Component for Named {
        fn name(&self) -> &'static str {
            self.0
        }
        fn stop(self: Box<Self>, _deadline: Instant) -> usize {
            self.1.lock().unwrap().push(self.0);
            usize::from(self.0 == "stuck")
        }
    }

    #[test]
    fn components_stop_in_reverse_once_also_when_dropped() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut list = Components::new(Duration::ZERO);
        for name in ["writer", "stuck", "http"] {
            list.push(Named(name, log.clone()));
        }
        let stopped = list.stop();
        assert_eq!(*log.lock().unwrap(), ["http", "stuck", "writer"]);
        assert_eq!(stopped.left_behind_by("stuck"), 1);
        assert_eq!(stopped.left_behind_by("http"), 0);
        drop(list);
        assert_eq!(log.lock().unwrap().len(), 3, "stopped once");

        let log = Arc::new(Mutex::new(Vec::new()));
        let mut list = Components::new(Duration::ZERO);
        list.push(Named("first", log.clone()));
        list.push(Named("second", log.clone()));
        drop(list);
        assert_eq!(*log.lock().unwrap(), ["second", "first"]);
    }

    #[test]
    fn a_background_stops_all_its_threads() {
        let mut bg = Background::new("loops");
        for i in 0..3 {
            bg.spawn(format!("loop-{i}"), |stop| stop.wait()).unwrap();
        }
        assert_eq!(
            Background::stop(bg, Instant::now() + Duration::from_secs(5)),
            0
        );
    }
}
