//! Wires the pieces together in the order the promise needs: storage first (recovered), then
//! the writer with its commit pipeline, the workers and the feeder, and only then the
//! listeners. Stops in reverse. This is the one place that knows every layer; the layers
//! themselves only know the ones below them.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::events::{Broadcaster, EventSink};
use crate::http::listener_watchdog::OnDead;
use crate::http::{AppState, BoundListener, HttpServer};
use crate::pipeline::Pipeline;
use crate::queue::backoff::Backoff;
use crate::queue::{
    BodyLoader, Dispatcher, Feeder, LeaseKeeper, LeaseKeeping, Processor, WorkerPool,
    WorkerSettings,
};
use crate::shutdown::Shutdown;
use crate::stats::{LiveStats, QueueView, StatsSnapshot};
use crate::store::{
    self, Faults, FaultyStore, Lease, RetentionSweeper, WriteStore, Writer, WriterHandle,
};
use crate::time::now_ms;

pub struct Service {
    settings: Settings,
    http: HttpServer,
    events: Option<Broadcaster>,
    feeder: Feeder,
    leases: LeaseKeeper,
    retention: RetentionSweeper,
    workers: WorkerPool,
    writer: Writer,
    shutdown: Shutdown,
    live: Arc<LiveStats>,
    state: Arc<AppState>,
}

/// What a stop did, for the one-line summary in the log.
#[derive(Debug, Clone)]
pub struct StopSummary {
    pub took: Duration,
    pub left_queued: u64,
    pub workers_left_behind: usize,
    pub processed_total: u64,
    pub dead_total: u64,
}

/// How to start a [`Service`] with something other than the defaults: another processor
/// (tests use failing, slow or panicking ones) or a store that fails commits on command.
pub struct ServiceBuilder {
    settings: Settings,
    processor: Option<Arc<dyn Processor>>,
    faults: Option<Faults>,
    on_listener_dead: Option<OnDead>,
}

impl ServiceBuilder {
    /// What to do when the HTTP listener stops answering (after the watchdog logged why). The
    /// default ends the process with exit code 71, so a service manager restarts it.
    pub fn on_listener_dead(mut self, action: OnDead) -> Self {
        self.on_listener_dead = Some(action);
        self
    }

    /// Workers run `processor` instead of the order processor.
    pub fn processor(mut self, processor: Arc<dyn Processor>) -> Self {
        self.processor = Some(processor);
        self
    }

    /// Commits go through a [`FaultyStore`] switched by `faults` (keep a clone to switch it).
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = Some(faults);
        self
    }

    pub fn start(self) -> Result<Service> {
        let processor = match self.processor {
            Some(p) => p,
            None => crate::orders::processor_for(&self.settings)?,
        };
        let on_dead = self.on_listener_dead.unwrap_or_else(|| {
            Arc::new(|_why: &str| std::process::exit(crate::error::EXIT_LISTENER_DEAD))
        });
        Service::start_inner(self.settings, processor, self.faults, on_dead)
    }
}

impl Service {
    /// Starts with the order processor.
    pub fn start(settings: Settings) -> Result<Service> {
        Service::builder(settings).start()
    }

    /// Starts with any processor (tests use failing, slow or panicking ones).
    pub fn start_with(settings: Settings, processor: Arc<dyn Processor>) -> Result<Service> {
        Service::builder(settings).processor(processor).start()
    }

    pub fn builder(settings: Settings) -> ServiceBuilder {
        ServiceBuilder {
            settings,
            processor: None,
            faults: None,
            on_listener_dead: None,
        }
    }

    fn start_inner(
        settings: Settings,
        processor: Arc<dyn Processor>,
        faults: Option<Faults>,
        on_listener_dead: OnDead,
    ) -> Result<Service> {
        let bound = BoundListener::bind(
            &settings.server.listen,
            Duration::from_secs(settings.server.idle_timeout_s),
        )?;
        let (mut write_store, reader) = store::open(&settings.storage)?;
        let lease = Lease {
            owner: settings.node_id().into(),
            duration_ms: settings.queue.lease_s.saturating_mul(1000) as i64,
        };
        let recovered = write_store.recover_in_flight(&lease.owner, now_ms())?;
        let counters = reader.counters()?;
        let live = Arc::new(LiveStats::new(&counters));
        let (dispatcher, receivers) = Dispatcher::new(settings.queue.capacity);
        let shutdown = Shutdown::new();

        let (events, sink) = if settings.websocket.listen == "off" {
            (None, EventSink::disabled())
        } else {
            let stats_live = live.clone();
            let stats_dispatcher = dispatcher.clone();
            let stats_reader = reader.clone();
            let max_backlog = settings.queue.max_backlog;
            let stats = Box::new(move || {
                let view = QueueView::of(&stats_dispatcher, max_backlog);
                serde_json::to_value(StatsSnapshot::build(
                    &stats_live,
                    view,
                    stats_reader.file_sizes(),
                ))
                .unwrap_or_default()
            });
            let (b, sink) = Broadcaster::start(
                &settings.websocket.listen,
                settings.server.admin_token.clone(),
                settings.server.allowed_hosts.clone(),
                stats,
                shutdown.receiver(),
            )
            .map_err(|e| Error::Bind {
                addr: settings.websocket.listen.clone(),
                source: e,
            })?;
            (Some(b), sink)
        };

        let write_store: Box<dyn WriteStore> = match faults {
            Some(faults) => Box::new(FaultyStore::new(write_store, faults)),
            None => write_store,
        };
        let (writer, writer_handle) = Writer::start(
            write_store,
            Box::new(Pipeline::new(
                live.clone(),
                dispatcher.clone(),
                sink.clone(),
            )),
        );
        let workers = WorkerPool::start(
            WorkerSettings {
                workers: settings.queue.workers,
                lease: lease.clone(),
                max_retries: settings.queue.max_retries,
                backoff: Backoff {
                    base_ms: settings.queue.backoff_base_ms,
                    max_ms: settings.queue.backoff_max_ms,
                },
            },
            processor,
            receivers.jobs,
            BodyLoader::new(reader.clone(), dispatcher.clone()),
            writer_handle.clone(),
            shutdown.signal(),
            live.clone(),
        );
        let feeder = Feeder::start(
            reader.clone(),
            dispatcher.clone(),
            receivers.wake,
            shutdown.receiver(),
        );
        let leases = LeaseKeeper::start(
            LeaseKeeping {
                lease,
                writer: writer_handle.clone(),
                reader: reader.clone(),
                dispatcher: dispatcher.clone(),
                live: live.clone(),
            },
            shutdown.receiver(),
        );
        let retention = RetentionSweeper::start(
            writer_handle.clone(),
            settings.storage.retention_days,
            shutdown.receiver(),
        );
        let state = Arc::new(AppState {
            settings: settings.clone(),
            writer: writer_handle,
            reader,
            live: live.clone(),
            dispatcher,
            events: sink,
            ws_addr: events.as_ref().map(Broadcaster::local_addr),
        });
        let http = HttpServer::start(
            bound,
            settings.server.handler_threads,
            state.clone(),
            on_listener_dead,
        );
        live.is_running.store(true, Relaxed);
        if recovered > 0 {
            log::info!("recovered {recovered} messages that were in flight at the last stop; they are queued again");
        }
        Ok(Service {
            settings,
            http,
            events,
            feeder,
            leases,
            retention,
            workers,
            writer,
            shutdown,
            live,
            state,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr()
    }

    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.events.as_ref().map(Broadcaster::local_addr)
    }

    pub fn stats(&self) -> StatsSnapshot {
        StatsSnapshot::build(
            &self.live,
            self.state.queue_view(),
            self.state.reader.file_sizes(),
        )
    }

    /// A way to submit writes (maintenance tasks, tests).
    pub fn writer(&self) -> WriterHandle {
        self.state.writer.clone()
    }

    /// Graceful stop: no new requests, requests in hand answered, workers drain the channel
    /// until `queue.shutdown_timeout_s`, outcomes committed, WAL checkpointed.
    pub fn stop(mut self) -> StopSummary {
        let started = Instant::now();
        self.live.is_running.store(false, Relaxed);
        self.http.stop();
        let drain = Duration::from_secs(self.settings.queue.shutdown_timeout_s);
        let deadline = self.shutdown.begin(drain);
        let left_behind = self.workers.join(deadline + Duration::from_secs(1));
        if left_behind > 0 {
            log::warn!("{left_behind} workers were still busy at the deadline; their messages resume at the next start");
        }
        self.feeder.join();
        self.leases.join();
        self.retention.join();
        if let Some(events) = self.events.take() {
            events.join();
        }
        drop(self.state);
        self.writer.stop();
        StopSummary {
            took: started.elapsed(),
            left_queued: self.live.queue_size(),
            workers_left_behind: left_behind,
            processed_total: self.live.processed.load(Relaxed),
            dead_total: self.live.dead.load(Relaxed),
        }
    }
}
