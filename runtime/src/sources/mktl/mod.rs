//! An mKTL source (the KTL successor, KeckObservatory/mKTL): broadcasts on
//! a ZeroMQ SUB socket, keyword reads as GET requests on a DEALER socket,
//! the daemon's addresses fixed in the configuration or found through the
//! registry ([`discovery`]). Names go on the wire lower case ([`wire`]).
//!
//! Besides the service's keys the subscriber listens to the store's clock
//! (`_<store>clk`, published every second by every mKTL daemon) as a sign of
//! life; its broadcasts are not forwarded.
//!
//! Once (re)subscribed, the trigger's current value is read and sent as a
//! broadcast, so a file written while the source was away is not lost.
//!
//! Both sockets recover on their own: the subscriber reconnects (finding
//! the daemon again) when its socket fails or when it has seen no broadcast
//! within the service's heartbeat period, with a backoff; a GET that gets no
//! ACK or no REP in time drops its socket, so the next read connects afresh.
//! Nothing here blocks the daemon: connecting happens in the service's own
//! task or in the read that needs it, each bounded by a timeout.

pub mod discovery;
pub mod wire;

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};
use zeromq::{DealerSocket, Socket, SocketRecv, SocketSend, SubSocket, ZmqMessage};

pub use discovery::Endpoints;

use super::{Broadcast, Events, Reader, SourceError, SourceState, now_secs, tell};

/// How an mKTL store is reached, and the bounds of its exchanges.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Store name (any case; lower case on the wire).
    pub store: String,
    /// Fixed publish address (`tcp://host:port`); None: discovery.
    pub publish: Option<String>,
    /// Fixed request address; None: from discovery (or no reads when the
    /// publish address is fixed).
    pub request: Option<String>,
    /// Registry discovery address (`host:port`, UDP), default the broadcast
    /// address on port 10103.
    pub registry: Option<String>,
    /// Bound of a connect and of the discovery exchange.
    pub connect_timeout: Duration,
    /// Bound of the ACK of a request.
    pub ack_timeout: Duration,
    /// Bound of the REP of a request.
    pub read_timeout: Duration,
}

impl Settings {
    pub fn new(store: &str) -> Settings {
        Settings {
            store: store.to_string(),
            publish: None,
            request: None,
            registry: None,
            connect_timeout: Duration::from_secs(3),
            ack_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(10),
        }
    }

    /// Whether the daemon is found through the registry.
    pub fn discovers(&self) -> bool {
        self.publish.is_none()
    }
}

/// One mKTL store: its reader and its subscriber.
pub struct Mktl {
    settings: Settings,
    request: Mutex<Option<DealerSocket>>,
    /// The endpoints discovery found last (forgotten when a socket fails).
    located: StdMutex<Option<Endpoints>>,
    ids: AtomicU64,
}

/// Why an exchange failed: the peer answered an error (the socket is fine)
/// or the socket is not to be trusted any more.
enum Failure {
    Answer(SourceError),
    Socket(SourceError),
}

impl Mktl {
    /// A source for these settings; nothing connects until it is used.
    pub fn new(settings: Settings) -> Mktl {
        Mktl { settings, request: Mutex::new(None), located: StdMutex::new(None), ids: AtomicU64::new(0) }
    }

    /// The store, as configured.
    pub fn store(&self) -> &str {
        &self.settings.store
    }

    /// Where the daemon is: the fixed addresses, or discovery's answer.
    pub async fn endpoints(&self) -> Result<Endpoints, SourceError> {
        let s = &self.settings;
        if let Some(publish) = &s.publish {
            return Ok(Endpoints { publish: publish.clone(), request: s.request.clone().unwrap_or_default(), keys: Vec::new() });
        }
        if let Some(e) = self.located.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(e);
        }
        let registry = s.registry.as_deref().unwrap_or(discovery::DEFAULT_REGISTRY);
        let mut e = discovery::locate(&s.store, registry, s.connect_timeout).await?;
        if let Some(r) = &s.request {
            e.request = r.clone();
        }
        tracing::info!("mKTL store {} found at {} (publish {})", s.store, e.request, e.publish);
        *self.located.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.clone());
        Ok(e)
    }

    /// Forget what discovery found (the next use asks again).
    fn forget(&self) {
        *self.located.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn connect_request(&self) -> Result<DealerSocket, SourceError> {
        let e = self.endpoints().await?;
        if e.request.is_empty() {
            return Err(SourceError::Read(format!("no mKTL request address for {}", self.settings.store)));
        }
        let mut d = DealerSocket::new();
        match tokio::time::timeout(self.settings.connect_timeout, d.connect(&e.request)).await {
            Ok(Ok(())) => Ok(d),
            Ok(Err(err)) => Err(SourceError::Start(format!("mKTL request {}: {err}", e.request))),
            Err(_) => Err(SourceError::Start(format!("mKTL request {}: no connection in {:?}", e.request, self.settings.connect_timeout))),
        }
    }

    /// GET the current value of `key` as KTL ascii.
    /// A read whose socket failed is tried once more on a fresh socket
    /// (found afresh), so the first read after the daemon restarted or
    /// moved does not lose its trigger.
    pub async fn get(&self, key: &str) -> Result<String, SourceError> {
        let target = wire::target(&self.settings.store, key);
        let mut slot = self.request.lock().await;
        let mut tries = 0;
        loop {
            tries += 1;
            let sock = match slot.as_mut() {
                Some(s) => s,
                None => {
                    let d = self.connect_request().await.inspect_err(|_| self.forget())?;
                    slot.insert(d)
                }
            };
            match self.exchange(sock, &target).await {
                Ok(v) => return Ok(v),
                Err(Failure::Answer(e)) => return Err(e),
                Err(Failure::Socket(e)) => {
                    // a peer that restarted (or moved) gets a new socket
                    *slot = None;
                    self.forget();
                    if tries >= 2 {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Drop the request socket (the subscriber lost its peer: so did it).
    async fn reset_request(&self) {
        *self.request.lock().await = None;
    }

    /// Send one GET and wait for its ACK (bounded) and REP (bounded).
    async fn exchange(&self, sock: &mut DealerSocket, target: &str) -> Result<String, Failure> {
        let read = |t: String| Failure::Socket(SourceError::Read(format!("mKTL GET {target}: {t}")));
        let id = wire::request_id(self.ids.fetch_add(1, Ordering::Relaxed));
        let msg = ZmqMessage::try_from(wire::get_request(&id, target)).map_err(|e| read(e.to_string()))?;
        tokio::time::timeout(self.settings.ack_timeout, sock.send(msg))
            .await
            .map_err(|_| read("could not send".into()))?
            .map_err(|e| read(e.to_string()))?;
        let start = tokio::time::Instant::now();
        let mut acked = false;
        loop {
            let bound = if acked { self.settings.read_timeout } else { self.settings.ack_timeout };
            let reply = match tokio::time::timeout_at(start + bound, sock.recv()).await {
                Err(_) if acked => return Err(read(format!("no reply within {bound:?}"))),
                Err(_) => return Err(read(format!("no acknowledgement within {bound:?}"))),
                Ok(Err(e)) => return Err(read(e.to_string())),
                Ok(Ok(m)) => m.into_vec(),
            };
            let reply = wire::decode_reply(&reply).map_err(|e| Failure::Socket(SourceError::Protocol(format!("mKTL GET {target}: {e}"))))?;
            if reply.id() != id.as_slice() {
                continue; // the late answer of an earlier request
            }
            match reply {
                wire::Reply::Ack { .. } => acked = true,
                wire::Reply::Rep { payload, .. } => {
                    if let Some(e) = wire::peer_error(&payload) {
                        return Err(Failure::Answer(SourceError::Read(format!("mKTL GET {target}: {e}"))));
                    }
                    return Ok(payload.get("value").map(wire::ascii).unwrap_or_default());
                }
            }
        }
    }

    /// Subscribe to `keys` and forward their broadcasts as the service
    /// `unique`'s until the channel closes; reconnect (and rediscover) when
    /// the socket fails or no broadcast came within `silence`.
    pub async fn subscribe(&self, unique: String, keys: Vec<String>, silence: Option<Duration>, tx: mpsc::Sender<Broadcast>, events: Events) {
        let mut backoff = Duration::from_millis(500);
        loop {
            match self.subscription(&keys).await {
                Ok((sub, publish, known)) => {
                    // beside the broadcasts, not before them
                    tokio::spawn(check_keys(self.settings.clone(), unique.clone(), keys.clone(), known, events.clone()));
                    self.catch_up(&unique, &keys, &tx).await;
                    let (ended, flowed) = self.forward(sub, &publish, &unique, silence, &tx, &events).await;
                    if tx.is_closed() {
                        return;
                    }
                    if flowed {
                        backoff = Duration::from_millis(500);
                    }
                    tell(&events, &unique, SourceState::Failed(ended)).await;
                }
                Err(e) => tell(&events, &unique, SourceState::Failed(e)).await,
            }
            self.forget();
            self.reset_request().await;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Once subscribed, the trigger's current value (the first key) goes out
    /// as a broadcast, as KTL's first poll does: a file written while the
    /// source was away is not lost (the daemon's rules decide whether it is
    /// new). Without a request address there is nothing to read.
    async fn catch_up(&self, unique: &str, keys: &[String], tx: &mpsc::Sender<Broadcast>) {
        let Some(trigger) = keys.first() else { return };
        if self.endpoints().await.map(|e| e.request.is_empty()).unwrap_or(true) {
            return;
        }
        match self.get(trigger).await {
            Ok(value) => {
                let b = Broadcast { service: unique.to_string(), keyword: wire::name(trigger), value, time: now_secs() };
                let _ = tx.send(b).await;
            }
            Err(e) => tracing::warn!("{unique}: catching up on {trigger} after connecting: {e}"),
        }
    }

    /// A SUB socket connected and subscribed to `keys`, its address, and
    /// the store's keys when discovery listed them.
    async fn subscription(&self, keys: &[String]) -> Result<(SubSocket, String, Vec<String>), SourceError> {
        let e = self.endpoints().await?;
        let mut sub = SubSocket::new();
        match tokio::time::timeout(self.settings.connect_timeout, sub.connect(&e.publish)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(SourceError::Start(format!("mKTL publish {}: {err}", e.publish))),
            Err(_) => return Err(SourceError::Start(format!("mKTL publish {}: no connection in {:?}", e.publish, self.settings.connect_timeout))),
        }
        for topic in keys.iter().map(|k| wire::topic(&self.settings.store, k)).chain([wire::clock_topic(&self.settings.store)]) {
            sub.subscribe(&topic).await.map_err(|err| SourceError::Start(format!("mKTL subscribe {topic}: {err}")))?;
        }
        Ok((sub, e.publish, e.keys))
    }

    /// Forward broadcasts until the socket fails or falls silent; returns
    /// why it ended and whether anything arrived.
    async fn forward(
        &self,
        mut sub: SubSocket,
        publish: &str,
        unique: &str,
        silence: Option<Duration>,
        tx: &mpsc::Sender<Broadcast>,
        events: &Events,
    ) -> (SourceError, bool) {
        let clock = wire::clock_key(&self.settings.store);
        let mut flowed = false;
        let mut last_bad: Option<String> = None;
        loop {
            let next = match silence {
                Some(limit) => match tokio::time::timeout(limit, sub.recv()).await {
                    Ok(r) => r,
                    Err(_) => {
                        let text = format!("mKTL {publish}: connected, but no broadcast of {} in {limit:?}", self.settings.store);
                        return (SourceError::Silent(text), flowed);
                    }
                },
                None => sub.recv().await,
            };
            let parts = match next {
                Ok(m) => m.into_vec(),
                Err(e) => return (SourceError::Start(format!("mKTL publish {publish}: {e}")), flowed),
            };
            match wire::decode_publish(&self.settings.store, &parts) {
                Ok(p) => {
                    if !flowed {
                        flowed = true;
                        tell(events, unique, SourceState::Up(publish.to_string())).await;
                    }
                    if p.key == clock {
                        continue; // liveness only
                    }
                    let b = Broadcast { service: unique.to_string(), keyword: p.key, value: wire::ascii(&p.value), time: p.time.unwrap_or_else(now_secs) };
                    if tx.send(b).await.is_err() {
                        return (SourceError::Start("stopping".into()), flowed);
                    }
                }
                Err(e) => {
                    // logged once per kind of bad message; the source keeps running
                    let text = format!("mKTL {publish}: {e}");
                    if last_bad.as_deref() != Some(text.as_str()) {
                        last_bad = Some(text.clone());
                        tell(events, unique, SourceState::Failed(SourceError::Protocol(text))).await;
                    }
                }
            }
        }
    }
}

/// A configured key the store's catalog does not list is a
/// misconfiguration (its broadcasts will never come): said once per
/// connection, the source keeps running.
async fn check_keys(settings: Settings, unique: String, keys: Vec<String>, mut known: Vec<String>, events: Events) {
    if known.is_empty() && !settings.discovers() {
        if let Some(request) = &settings.request {
            known = discovery::catalog_keys(request, &settings.store, settings.connect_timeout).await.unwrap_or_default();
        }
    }
    if known.is_empty() {
        return;
    }
    let missing: Vec<String> = keys.iter().map(|k| wire::name(k)).filter(|k| !known.contains(k)).collect();
    if missing.is_empty() {
        tell(&events, &unique, SourceState::Cleared("KTL_UNKNOWN_KEY")).await;
    } else {
        let text = format!("mKTL store {} has no key {} (check the service's trigger and heartbeat)", wire::name(&settings.store), missing.join(", "));
        tell(&events, &unique, SourceState::Failed(SourceError::UnknownKey(text))).await;
    }
}

impl Reader for Mktl {
    fn read<'a>(&'a self, keyword: &'a str) -> Pin<Box<dyn Future<Output = Result<String, SourceError>> + Send + 'a>> {
        Box::pin(self.get(keyword))
    }
}
