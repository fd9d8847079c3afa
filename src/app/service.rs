//! Wires the pieces together in the order the promise needs, as one list of started
//! components ([`Components`]):
//!
//! 1. the listeners are bound, not yet served, so a taken port fails before anything runs;
//! 2. storage is opened and recovered (what was in flight at the last stop is queued again);
//! 3. the writer, with the pipeline as its commit observer;
//! 4. the workers, then the feeder, the lease keeper and the retention sweeper;
//! 5. the relay, then the alerts (sent as the relay's deliveries);
//! 6. with other nodes on the database, the cluster's figures and the other nodes' events;
//! 7. the listeners last: the WebSocket broadcaster, then HTTP.
//!
//! A stop walks the list backwards: no new requests first, the writer last, after everything
//! that sends it ops. A start step that fails stops what the steps before it started, the same
//! way. This is the one place that knows every layer; the layers themselves only know the ones
//! below them.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::{AppState, BoundListener, HttpServer};
use crate::base::error::{Error, Result};
use crate::base::lifecycle::Components;
use crate::base::time::now_ms;
use crate::edge::listener_watchdog::OnDead;
use crate::settings::sources::SourceList;
use crate::settings::Settings;
use crate::store::{
    self, Cluster, ClusterCounters, Duty, Faults, Leadership, Lease, NodeIdentity, OpenedStore,
    ReadStore, RemoteEvent, RetentionSweeper, SingleNode, WriteStore, Writer, WriterHandle,
};
use crate::work::alerts::relay_sink::{relay_figures, relay_label, RelaySink};
use crate::work::alerts::{AlertFigures, AlertInputs, AlertRunner, AlertService};
use crate::work::events::{BoundEvents, Event, EventSink};
use crate::work::pipeline::Pipeline;
use crate::work::queue::backoff::Backoff;
use crate::work::queue::dispatch::DispatchReceivers;
use crate::work::queue::{
    feeder, BodyLoader, BySource, Dispatcher, Feeder, LeaseKeeper, LeaseKeeping, Processor,
    SharedClaims, WorkerPool, WorkerSettings,
};
use crate::work::relay::{Relay, RelayInbox, RelayStart, RelayWake};
use crate::work::stats::cluster::ClusterRefresher;
use crate::work::stats::{LiveStats, QueueView, StatsSnapshot};

pub struct Service {
    /// Everything started, in start order; stopped in reverse.
    components: Components,
    http_addr: SocketAddr,
    ws_addr: Option<SocketAddr>,
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

    /// Transactions go through a [`FaultyBackend`](crate::store::faults::FaultyBackend) switched by
    /// `faults` (keep a clone to switch it).
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = Some(faults);
        self
    }

    pub fn start(self) -> Result<Service> {
        let processor = match self.processor {
            Some(p) => p,
            None => crate::work::orders::processor_for(&self.settings)?,
        };
        let on_dead = self.on_listener_dead.unwrap_or_else(|| {
            Arc::new(|_why: &str| std::process::exit(crate::base::error::EXIT_LISTENER_DEAD))
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
        let sources = Arc::new(sources_of(&settings)?);
        let processor: Arc<dyn Processor> = Arc::new(BySource::new(processor, sources.clone()));
        let listeners = Listeners::bind(&settings)?;
        let storage = Storage::open(&settings, faults)?;
        let mut started = Components::new(Duration::from_secs(settings.queue.shutdown_timeout_s));
        let (w, receivers) = Wiring::new(settings, &storage, &listeners)?;
        let relay_inbox = RelayInbox::new();
        let writer = start_writer(&w, storage.writer, relay_inbox.wake(), &mut started)?;
        start_work(&w, processor, receivers, &writer, &mut started)?;
        let relay = start_relay(&w, &writer, relay_inbox, &mut started)?;
        let alerts = start_alerts(&w, &relay, storage.cluster.as_ref(), &mut started)?;
        if let Some(cluster) = storage.cluster {
            start_cluster(&w, cluster, storage.split, &mut started)?;
        }
        let state = w.app_state(sources, writer, relay, alerts, listeners.ws_addr());
        let http_addr = listeners.http.local_addr();
        serve(listeners, &state, on_listener_dead, &mut started)?;
        w.live.is_running.store(true, Relaxed);
        if storage.recovered > 0 {
            log::info!(
                "recovered {} messages that were in flight at the last stop; they are queued again",
                storage.recovered
            );
        }
        Ok(Service {
            components: started,
            http_addr,
            ws_addr: state.ws_addr,
            live: w.live,
            state,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws_addr
    }

    pub fn stats(&self) -> StatsSnapshot {
        snapshot(&self.state)
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
        let stopped = self.components.stop();
        let left_behind = stopped.left_behind_by("workers");
        if left_behind > 0 {
            log::warn!("{left_behind} workers were still busy at the deadline; their messages resume at the next start");
        }
        StopSummary {
            took: started.elapsed(),
            left_queued: self.live.queue_size(),
            workers_left_behind: left_behind,
            processed_total: self.live.processed.load(Relaxed),
            dead_total: self.live.dead.load(Relaxed),
        }
    }
}

/// The stats as `/stats` shows them.
fn snapshot(state: &AppState) -> StatsSnapshot {
    StatsSnapshot::build(
        &state.live,
        state.queue_view(),
        state.reader.storage_health(),
    )
}

/// A thread that could not start fails the start (what started before it is stopped).
fn thread_error(e: std::io::Error) -> Error {
    Error::Other(e.to_string())
}

/// The listening sockets, bound before anything else starts and served last.
struct Listeners {
    http: BoundListener,
    /// `None` when `websocket.listen` is `off`.
    events: Option<BoundEvents>,
    /// Where commits publish events (a no-op without the event stream).
    sink: EventSink,
}

impl Listeners {
    fn bind(settings: &Settings) -> Result<Listeners> {
        let http = BoundListener::bind(&settings.server)?;
        let listen = &settings.websocket.listen;
        if listen == "off" {
            return Ok(Listeners {
                http,
                events: None,
                sink: EventSink::disabled(),
            });
        }
        let (events, sink) = BoundEvents::bind(listen).map_err(|e| Error::Bind {
            addr: listen.clone(),
            source: e,
        })?;
        Ok(Listeners {
            http,
            events: Some(events),
            sink,
        })
    }

    fn ws_addr(&self) -> Option<SocketAddr> {
        self.events.as_ref().map(BoundEvents::local_addr)
    }
}

/// Storage, opened and recovered: what was in flight at the last stop is queued again.
struct Storage {
    writer: Box<dyn WriteStore>,
    reader: Arc<dyn ReadStore>,
    cluster: Option<Cluster>,
    /// With other nodes: the cluster's figures, and what of them the others wrote, in one
    /// read (see stats/cluster.rs).
    split: Option<ClusterCounters>,
    lease: Lease,
    recovered: u64,
}

impl Storage {
    fn open(settings: &Settings, faults: Option<Faults>) -> Result<Storage> {
        let identity = NodeIdentity {
            id: settings.node_id(),
            lease: Duration::from_secs(settings.queue.lease_s),
        };
        let lease = Lease {
            owner: identity.id.clone().into(),
            duration_ms: settings.queue.lease_s.saturating_mul(1000) as i64,
        };
        let OpenedStore {
            mut writer,
            reader,
            cluster,
        } = store::open_node(&settings.storage, &identity, faults)?;
        let recovered = writer.recover_in_flight(&lease.owner, now_ms())?;
        let split = match &cluster {
            Some(c) => reader.cluster_counters(&c.node)?,
            None => None,
        };
        Ok(Storage {
            writer,
            reader,
            cluster,
            split,
            lease,
            recovered,
        })
    }
}

fn live_figures(storage: &Storage) -> Result<Arc<LiveStats>> {
    let reader = storage.reader.as_ref();
    let counters = match &storage.split {
        Some(s) => s.all.clone(),
        None => reader.counters()?,
    };
    let live = Arc::new(LiveStats::new(&counters));
    if storage.split.is_some() {
        live.set_gauges(&counters);
    }
    live.relay.count_from(
        &store::deliveries_by_state(reader)?,
        &store::owed_by_label(reader)?,
    );
    Ok(live)
}

/// What the start steps after storage share.
struct Wiring {
    settings: Settings,
    live: Arc<LiveStats>,
    reader: Arc<dyn ReadStore>,
    dispatcher: Dispatcher,
    /// This node's lease on what its workers and relay take.
    lease: Lease,
    events: EventSink,
    /// Other nodes share the database.
    shared: bool,
}

impl Wiring {
    /// The live figures from the durable counters (the cluster's, with other nodes), and the
    /// dispatcher with its receiving ends.
    fn new(
        settings: Settings,
        storage: &Storage,
        listeners: &Listeners,
    ) -> Result<(Wiring, DispatchReceivers)> {
        let (dispatcher, receivers) = Dispatcher::new(settings.queue.capacity);
        let wiring = Wiring {
            live: live_figures(storage)?,
            reader: storage.reader.clone(),
            dispatcher,
            lease: storage.lease.clone(),
            events: listeners.sink.clone(),
            shared: storage.cluster.is_some(),
            settings,
        };
        Ok((wiring, receivers))
    }

    /// What the HTTP handlers share.
    fn app_state(
        &self,
        sources: Arc<SourceList>,
        writer: WriterHandle,
        relay: Relay,
        alerts: Option<Arc<AlertService>>,
        ws_addr: Option<SocketAddr>,
    ) -> Arc<AppState> {
        Arc::new(AppState {
            alerts,
            settings: self.settings.clone(),
            sources,
            writer,
            reader: self.reader.clone(),
            live: self.live.clone(),
            dispatcher: self.dispatcher.clone(),
            events: self.events.clone(),
            ws_addr,
            relay,
        })
    }

    fn backoff(&self) -> Backoff {
        Backoff {
            base_ms: self.settings.queue.backoff_base_ms,
            max_ms: self.settings.queue.backoff_max_ms,
        }
    }
}

/// The writer, with the pipeline as its commit observer.
fn start_writer(
    w: &Wiring,
    store: Box<dyn WriteStore>,
    relay: RelayWake,
    started: &mut Components,
) -> Result<WriterHandle> {
    let pipeline = Pipeline::new(
        w.live.clone(),
        w.dispatcher.clone(),
        w.events.clone(),
        relay,
    );
    let (writer, handle) = Writer::start(store, Box::new(pipeline)).map_err(thread_error)?;
    started.push(writer);
    Ok(handle)
}

/// The workers, then the feeder that hands them what waits on disk, the lease keeper and the
/// retention sweeper.
fn start_work(
    w: &Wiring,
    processor: Arc<dyn Processor>,
    receivers: DispatchReceivers,
    writer: &WriterHandle,
    started: &mut Components,
) -> Result<()> {
    let queue = &w.settings.queue;
    let settings = WorkerSettings {
        workers: queue.workers,
        lease: w.lease.clone(),
        max_retries: queue.max_retries,
        backoff: w.backoff(),
        shared: w.shared.then(|| SharedClaims {
            dispatcher: w.dispatcher.clone(),
            claim_timeout: Duration::from_secs(30),
        }),
    };
    let bodies = BodyLoader::new(w.reader.clone(), w.dispatcher.clone());
    let drain = started.drain();
    let workers = WorkerPool::start(
        settings,
        processor,
        receivers.jobs,
        bodies,
        writer.clone(),
        drain,
        w.live.clone(),
    );
    started.push(workers.map_err(thread_error)?);
    let poll = w.shared.then_some(feeder::SHARED_POLL);
    let feeder = Feeder::start(w.reader.clone(), w.dispatcher.clone(), receivers.wake, poll);
    started.push(feeder.map_err(thread_error)?);
    let leases = LeaseKeeper::start(LeaseKeeping {
        lease: w.lease.clone(),
        writer: writer.clone(),
        reader: w.reader.clone(),
        dispatcher: w.dispatcher.clone(),
        live: w.live.clone(),
        shared: w.shared,
    });
    started.push(leases.map_err(thread_error)?);
    let retention = RetentionSweeper::start(writer.clone(), w.settings.storage.retention_days);
    started.push(retention.map_err(thread_error)?);
    Ok(())
}

/// The relay: its scheduler and workers.
fn start_relay(
    w: &Wiring,
    writer: &WriterHandle,
    inbox: RelayInbox,
    started: &mut Components,
) -> Result<Relay> {
    let start = RelayStart {
        settings: w.settings.relay.clone(),
        backoff: w.backoff(),
        lease: w.lease.clone(),
        writer: writer.clone(),
        reader: w.reader.clone(),
        shared: w.shared,
        live: w.live.clone(),
    };
    let (relay, threads) = Relay::start(start, inbox)?;
    started.push(threads);
    Ok(relay)
}

/// With other nodes on the database: the cluster's figures, and the other nodes' events for
/// this node's WebSocket clients.
fn start_cluster(
    w: &Wiring,
    cluster: Cluster,
    split: Option<ClusterCounters>,
    started: &mut Components,
) -> Result<()> {
    log::info!(
        "node {} sharing the database with other nodes (lease {:?})",
        cluster.node,
        cluster.lease
    );
    let seen = split.map(|s| s.others).unwrap_or_default();
    let figures =
        ClusterRefresher::start(w.reader.clone(), w.live.clone(), cluster.node.clone(), seen);
    started.push(figures.map_err(thread_error)?);
    let events = cluster.listen(remote_events(w.events.clone()));
    started.push(events.map_err(thread_error)?);
    Ok(())
}

/// The listeners, served last: the WebSocket broadcaster, then HTTP (which stops first).
fn serve(
    listeners: Listeners,
    state: &Arc<AppState>,
    on_listener_dead: OnDead,
    started: &mut Components,
) -> Result<()> {
    let server = &state.settings.server;
    if let Some(events) = listeners.events {
        let stats_state = state.clone();
        let stats =
            Box::new(move || serde_json::to_value(snapshot(&stats_state)).unwrap_or_default());
        let broadcaster = events.serve(
            server.admin_token.clone(),
            server.allowed_hosts.clone(),
            stats,
        );
        started.push(broadcaster.map_err(thread_error)?);
    }
    HttpServer::start(
        listeners.http,
        server.handler_threads,
        state.clone(),
        on_listener_dead,
        started,
    )
}

/// Other nodes' committed events, published to this node's WebSocket clients.
fn remote_events(sink: EventSink) -> Box<dyn Fn(RemoteEvent) + Send> {
    Box::new(move |e| {
        let event = match e {
            RemoteEvent::Received { id } => Event::WebhookReceived { id, source: None },
            RemoteEvent::Dead { id, error } => Event::WebhookDead { id, error },
            RemoteEvent::OrderCreated(order) => {
                if !sink.has_clients() {
                    return;
                }
                Event::OrderCreated {
                    order: serde_json::to_value(order.as_ref()).unwrap_or_default(),
                }
            }
        };
        sink.publish(event);
    })
}

/// The configured sources, resolved; their paths checked against the built-in routes (a
/// check the settings alone cannot make). `check-config` runs the same.
pub fn sources_of(settings: &Settings) -> Result<SourceList> {
    let sources = SourceList::new(
        &settings.sources,
        settings.ingest.token.as_deref(),
        settings.server.max_body_bytes,
    )
    .map_err(Error::Config)?;
    crate::api::routes::check_source_paths(&sources).map_err(Error::Config)?;
    Ok(sources)
}

/// The alerts, when `[[alerts]]` targets are configured: sent as the relay's deliveries, the
/// checks on the node that leads them (one node of a cluster).
fn start_alerts(
    w: &Wiring,
    relay: &Relay,
    cluster: Option<&Cluster>,
    started: &mut Components,
) -> Result<Option<Arc<AlertService>>> {
    let leadership: Box<dyn Leadership> = match cluster {
        Some(c) => c.leadership(Duty::Alerts),
        None => Box::new(SingleNode),
    };
    let targets = w.settings.alerts.clone();
    let figures = Arc::new(AlertFigures::new(&targets));
    let sink = Arc::new(RelaySink(relay.clone()));
    let node = w.settings.node_id();
    let (snap_live, snap_dispatcher, snap_reader) =
        (w.live.clone(), w.dispatcher.clone(), w.reader.clone());
    let max_backlog = w.settings.queue.max_backlog;
    let (dead_live, relay_live) = (w.live.clone(), w.live.clone());
    let runner = AlertRunner::start(AlertInputs {
        alert_labels: targets.iter().map(relay_label).collect(),
        targets: targets.clone(),
        limits: w.settings.alerting.clone(),
        node: node.clone(),
        snapshot: Box::new(move || {
            StatsSnapshot::build(
                &snap_live,
                QueueView::of(&snap_dispatcher, max_backlog),
                snap_reader.storage_health(),
            )
        }),
        dead_total: Box::new(move || dead_live.dead.load(Relaxed)),
        relay_figures: Box::new(move || relay_figures(&relay_live)),
        reader: w.reader.clone(),
        leadership,
        sink: sink.clone(),
        figures: figures.clone(),
    });
    started.push(runner.map_err(thread_error)?);
    if targets.is_empty() {
        return Ok(None);
    }
    let service = AlertService {
        targets,
        sink,
        figures,
        node,
    };
    Ok(Some(Arc::new(service)))
}
