//! Wires the pieces together in the order the promise needs: storage first (recovered), then
//! the writer with its commit pipeline, the workers and the feeder, and only then the
//! listeners. Stops in reverse. This is the one place that knows every layer; the layers
//! themselves only know the ones below them.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::{AppState, BoundListener, HttpServer};
use crate::app::shutdown::Shutdown;
use crate::base::error::{Error, Result};
use crate::base::time::now_ms;
use crate::edge::listener_watchdog::OnDead;
use crate::settings::sources::SourceList;
use crate::settings::Settings;
use crate::store::{
    self, Duty, EventListener, Faults, Leadership, Lease, NodeIdentity, ReadStore, RemoteEvent,
    RetentionSweeper, SingleNode, WriteStore, Writer, WriterHandle,
};
use crate::work::alerts::relay_sink::{relay_figures, relay_label, RelaySink};
use crate::work::alerts::{AlertFigures, AlertInputs, AlertRunner, AlertService};
use crate::work::events::{Broadcaster, Event, EventSink};
use crate::work::pipeline::Pipeline;
use crate::work::queue::backoff::Backoff;
use crate::work::queue::{
    feeder, BodyLoader, BySource, Dispatcher, Feeder, LeaseKeeper, LeaseKeeping, Processor,
    SharedClaims, WorkerPool, WorkerSettings,
};
use crate::work::relay::{Relay, RelayInbox, RelayStart, RelayThreads};
use crate::work::stats::cluster::ClusterRefresher;
use crate::work::stats::{LiveStats, QueueView, StatsSnapshot};

pub struct Service {
    settings: Settings,
    http: HttpServer,
    events: Option<Broadcaster>,
    feeder: Feeder,
    leases: LeaseKeeper,
    retention: RetentionSweeper,
    workers: WorkerPool,
    writer: Writer,
    relay: RelayThreads,
    alerts: AlertRunner,
    /// With several nodes on one database: leases, cluster totals, other nodes' events.
    cluster: Option<ClusterThreads>,
    shutdown: Shutdown,
    live: Arc<LiveStats>,
    state: Arc<AppState>,
}

struct ClusterThreads {
    stats: ClusterRefresher,
    events: EventListener,
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

    /// Transactions go through a [`FaultyBackend`](crate::store::FaultyBackend) switched by
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
        let bound = BoundListener::bind(&settings.server)?;
        let identity = NodeIdentity {
            id: settings.node_id(),
            lease: Duration::from_secs(settings.queue.lease_s),
        };
        let lease = Lease {
            owner: identity.id.clone().into(),
            duration_ms: settings.queue.lease_s.saturating_mul(1000) as i64,
        };
        let opened = store::open_node(&settings.storage, &identity, faults)?;
        let (mut write_store, reader, cluster) = (opened.writer, opened.reader, opened.cluster);
        let recovered = write_store.recover_in_flight(&lease.owner, now_ms())?;
        // With other nodes: the cluster's figures, and what of them the others wrote, in one
        // read (see stats/cluster.rs).
        let split = match &cluster {
            Some(c) => reader.cluster_counters(&c.node)?,
            None => None,
        };
        let counters = match &split {
            Some(s) => s.all.clone(),
            None => reader.counters()?,
        };
        let live = Arc::new(LiveStats::new(&counters));
        if split.is_some() {
            live.set_gauges(&counters);
        }
        live.relay.count_from(
            &store::deliveries_by_state(reader.as_ref())?,
            &store::owed_by_label(reader.as_ref())?,
        );
        let relay_inbox = RelayInbox::new();
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
                    stats_reader.storage_health(),
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

        let (writer, writer_handle) = Writer::start(
            write_store,
            Box::new(Pipeline::new(
                live.clone(),
                dispatcher.clone(),
                sink.clone(),
                relay_inbox.wake(),
            )),
        );
        let shared = cluster.as_ref().map(|_| SharedClaims {
            dispatcher: dispatcher.clone(),
            claim_timeout: Duration::from_secs(30),
        });
        let workers = WorkerPool::start(
            WorkerSettings {
                workers: settings.queue.workers,
                lease: lease.clone(),
                max_retries: settings.queue.max_retries,
                backoff: Backoff {
                    base_ms: settings.queue.backoff_base_ms,
                    max_ms: settings.queue.backoff_max_ms,
                },
                shared,
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
            cluster.as_ref().map(|_| feeder::SHARED_POLL),
        );
        let leases = LeaseKeeper::start(
            LeaseKeeping {
                lease: lease.clone(),
                writer: writer_handle.clone(),
                reader: reader.clone(),
                dispatcher: dispatcher.clone(),
                live: live.clone(),
                shared: cluster.is_some(),
            },
            shutdown.receiver(),
        );
        let (relay, relay_threads) = Relay::start(
            RelayStart {
                settings: settings.relay.clone(),
                backoff: Backoff {
                    base_ms: settings.queue.backoff_base_ms,
                    max_ms: settings.queue.backoff_max_ms,
                },
                lease: lease.clone(),
                writer: writer_handle.clone(),
                reader: reader.clone(),
                shared: cluster.is_some(),
                live: live.clone(),
            },
            relay_inbox,
            shutdown.receiver(),
        )?;
        let retention = RetentionSweeper::start(
            writer_handle.clone(),
            settings.storage.retention_days,
            shutdown.receiver(),
        );
        // Asked before `cluster` is taken apart below: one node of a cluster leads the alerts.
        let leadership: Box<dyn Leadership> = match &cluster {
            Some(c) => c.leadership(Duty::Alerts),
            None => Box::new(SingleNode),
        };
        let (alert_service, alerts) = start_alerts(
            &settings,
            &live,
            &dispatcher,
            &reader,
            &relay,
            leadership,
            shutdown.receiver(),
        );
        let cluster = cluster.map(|c| {
            log::info!(
                "node {} sharing the database with other nodes (lease {:?})",
                c.node,
                c.lease
            );
            ClusterThreads {
                stats: ClusterRefresher::start(
                    reader.clone(),
                    live.clone(),
                    c.node.clone(),
                    split.map(|s| s.others).unwrap_or_default(),
                    shutdown.receiver(),
                ),
                events: c.listen(remote_events(sink.clone()), shutdown.receiver()),
            }
        });
        let state = Arc::new(AppState {
            alerts: alert_service,
            settings: settings.clone(),
            sources,
            writer: writer_handle,
            reader,
            live: live.clone(),
            dispatcher,
            events: sink,
            ws_addr: events.as_ref().map(Broadcaster::local_addr),
            relay,
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
            relay: relay_threads,
            alerts,
            cluster,
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
            self.state.reader.storage_health(),
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
        self.alerts.join();
        self.relay.join();
        if let Some(c) = self.cluster.take() {
            c.stats.join();
            c.events.join();
        }
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
/// checks on the node `leadership` elects.
fn start_alerts(
    settings: &Settings,
    live: &Arc<LiveStats>,
    dispatcher: &Dispatcher,
    reader: &Arc<dyn ReadStore>,
    relay: &Relay,
    leadership: Box<dyn Leadership>,
    stop: crossbeam_channel::Receiver<()>,
) -> (Option<Arc<AlertService>>, AlertRunner) {
    let targets = settings.alerts.clone();
    let figures = Arc::new(AlertFigures::new(&targets));
    let sink = Arc::new(RelaySink(relay.clone()));
    let node = settings.node_id();
    let (snap_live, snap_dispatcher, snap_reader) =
        (live.clone(), dispatcher.clone(), reader.clone());
    let max_backlog = settings.queue.max_backlog;
    let (dead_live, relay_live) = (live.clone(), live.clone());
    let runner = AlertRunner::start(
        AlertInputs {
            alert_labels: targets.iter().map(relay_label).collect(),
            targets: targets.clone(),
            limits: settings.alerting.clone(),
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
            reader: reader.clone(),
            leadership,
            sink: sink.clone(),
            figures: figures.clone(),
        },
        stop,
    );
    if targets.is_empty() {
        return (None, runner);
    }
    let service = AlertService {
        targets,
        sink,
        figures,
        node,
    };
    (Some(Arc::new(service)), runner)
}
