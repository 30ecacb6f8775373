//! A stand-in mKTL daemon and registry for tests, replaying wire traffic captured from the real
//! mKTL (`data_dir()/mktl`, described in its README.md).
//!
//! This module owns:
//! * [`load`]: the capture files as [`Captured`] messages (decoded frames, in file order);
//! * [`Answers`]: what a stand-in ROUTER replies, keyed by a request's (type, target, payload);
//! * [`Peer`]: a daemon (ROUTER for requests, PUB for broadcasts) on 127.0.0.1;
//! * [`Registry`]: a registry (UDP discovery listener and its own [`Peer`]).
//!
//! Every socket is bound on loopback; `stop` closes them so that the ports are free again.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use zeromq::{Endpoint, PubSocket, RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

/// The frames of one message.
pub type Frames = Vec<Vec<u8>>;

/// One captured message.
#[derive(Clone, Debug)]
pub struct Captured {
    pub seq: u64,
    /// Seconds since the first line of the file.
    pub t: f64,
    pub group: String,
    /// `client->daemon` (else `daemon->client`).
    pub from_client: bool,
    /// Every frame (or the one UDP datagram), decoded from `frames_b64`.
    pub frames: Frames,
    /// `tcp://127.0.0.1:<port>` of the answering process; none for UDP.
    pub endpoint: Option<String>,
}

impl Captured {
    /// The port of `endpoint`.
    pub fn port(&self) -> Option<u16> {
        self.endpoint.as_deref()?.rsplit(':').next()?.parse().ok()
    }
}

/// Load a capture file ("publish.jsonl", "request.jsonl", "discovery.jsonl") from data_dir()/mktl.
pub fn load(file: &str) -> Vec<Captured> {
    let path = crate::data_dir().join("mktl").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{file} line {}", n + 1);
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{at}: {e}"));
        let text_of = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_else(|| panic!("{at}: no text field {k:?}"));
        let from_client = match text_of("direction") {
            "client->daemon" => true,
            "daemon->client" => false,
            other => panic!("{at}: unknown direction {other:?}"),
        };
        let frames: Frames = v
            .get("frames_b64")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{at}: no frames_b64"))
            .iter()
            .map(|f| {
                let f = f.as_str().unwrap_or_else(|| panic!("{at}: a frame is not a string"));
                base64::engine::general_purpose::STANDARD.decode(f).unwrap_or_else(|e| panic!("{at}: frame base64: {e}"))
            })
            .collect();
        out.push(Captured {
            seq: v.get("seq").and_then(Value::as_u64).unwrap_or_else(|| panic!("{at}: no seq")),
            t: v.get("t").and_then(Value::as_f64).unwrap_or_else(|| panic!("{at}: no t")),
            group: text_of("group").to_string(),
            from_client,
            frames,
            endpoint: v.get("endpoint").and_then(Value::as_str).map(str::to_string),
        });
    }
    out
}

/// (type, target, payload) of a 6-frame request.
type Key = (Vec<u8>, Vec<u8>, Vec<u8>);

fn key_of(request: &[Vec<u8>]) -> Key {
    (request[2].clone(), request[3].clone(), request[5].clone())
}

/// The daemon->client messages answering the request `caps[i]`: those that follow it in the same
/// group, on the same endpoint and with the same id, up to the next request there.
fn replies_of(caps: &[Captured], i: usize) -> Vec<Frames> {
    let req = &caps[i];
    caps[i + 1..]
        .iter()
        .filter(|c| c.group == req.group && c.endpoint == req.endpoint)
        .take_while(|c| !c.from_client)
        .filter(|c| c.frames.get(1) == req.frames.get(1))
        .map(|c| c.frames.clone())
        .collect()
}

/// What the stand-in ROUTER answers. Keyed by the request's (type, target, payload) frames
/// (frames 2, 3, 5 of the 6-frame request [version, id, type, target, flags, payload]); version and
/// flags are not part of the key.
#[derive(Clone, Default, Debug)]
pub struct Answers {
    /// Key -> queue of reply lists; the last one stays.
    map: HashMap<Key, VecDeque<Vec<Frames>>>,
}

impl Answers {
    /// Every client->daemon request of request.jsonl whose group satisfies `groups(group)`
    /// and whose endpoint port is `port` (10080 = the nids daemon, 10079 = the registry),
    /// with the daemon->client messages that follow it in the same group as its replies
    /// (normally an ACK then a REP; NO_ACK flags give only the REP; a version-'b' request has none).
    ///
    /// A key asked several times answers its captured replies in capture order, then repeats the last
    /// one. The queue ignores version and flags: `raw-11` (NO_ACK) and `raw-16` (version 'b', no reply)
    /// share the key of `raw-01` (`GET nids.lastfile`, empty payload), so choose the groups accordingly.
    pub fn from_capture(caps: &[Captured], port: u16, groups: impl Fn(&str) -> bool) -> Answers {
        let mut answers = Answers::default();
        for (i, req) in caps.iter().enumerate() {
            if req.from_client && req.frames.len() == 6 && req.port() == Some(port) && groups(req.group.as_str()) {
                answers.map.entry(key_of(&req.frames)).or_default().push_back(replies_of(caps, i));
            }
        }
        answers
    }

    /// Add or replace the replies of one (type, target, payload) key; each reply is a full frame list
    /// whose frame 1 (the id) is replaced by the request's id when sent.
    pub fn set(&mut self, kind: &str, target: &str, payload: &[u8], replies: Vec<Frames>) {
        self.map.insert((kind.as_bytes().to_vec(), target.as_bytes().to_vec(), payload.to_vec()), VecDeque::from([replies]));
    }

    /// The replies to one request (6 frames) as captured, ids not yet replaced, advancing the key's
    /// queue; none for an unknown key or a request of another shape.
    pub fn answer(&mut self, request: &[Vec<u8>]) -> Vec<Frames> {
        if request.len() != 6 {
            return Vec::new();
        }
        let Some(queue) = self.map.get_mut(&key_of(request)) else {
            return Vec::new();
        };
        if queue.len() > 1 { queue.pop_front().unwrap_or_default() } else { queue.front().cloned().unwrap_or_default() }
    }

    /// The captured `GET nids._catalog` reply of the daemon (request.jsonl seq 101, group raw-13),
    /// ACK + REP, with the provenance's "rep" and "pub" ports rewritten to the given ones. The
    /// rewrite is textual (the catalog's 128-bit hash would not survive serde_json), so the rest of
    /// the payload is byte for byte the captured one.
    pub fn catalog(caps: &[Captured], rep_port: u16, pub_port: u16) -> Vec<Frames> {
        let in_group = |c: &&Captured| c.group == "raw-13" && !c.from_client;
        let rep = caps
            .iter()
            .filter(in_group)
            .find(|c| c.seq == 101)
            .expect("request.jsonl seq 101 (raw-13, the daemon's nids._catalog REP): pass load(\"request.jsonl\")");
        let ack = caps
            .iter()
            .filter(in_group)
            .find(|c| c.frames.get(2).map(Vec::as_slice) == Some(&b"ACK"[..]))
            .expect("the ACK of raw-13 in request.jsonl");
        assert_eq!(rep.frames.len(), 6, "the catalog REP has 6 frames");
        assert_eq!(rep.frames[3], b"nids._catalog", "seq 101 answers nids._catalog");
        let payload = String::from_utf8(rep.frames[5].clone()).expect("the catalog payload is UTF-8");
        let old = r#""rep": 10080, "pub": 10140"#;
        assert_eq!(payload.matches(old).count(), 1, "the catalog's provenance holds {old} once");
        let mut rep = rep.frames.clone();
        rep[5] = payload.replace(old, &format!(r#""rep": {rep_port}, "pub": {pub_port}"#)).into_bytes();
        vec![ack.frames.clone(), rep]
    }
}

/// Bind `socket` on 127.0.0.1:`port` (0: any free port), retrying for up to ~5 s while the port is
/// still being released; the bound port.
async fn bind<S: Socket>(socket: &mut S, port: u16) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match socket.bind(&format!("tcp://127.0.0.1:{port}")).await {
            Ok(Endpoint::Tcp(_, bound)) => return bound,
            Ok(other) => panic!("bound {other}, not a TCP endpoint"),
            Err(e) if Instant::now() >= deadline => panic!("bind 127.0.0.1:{port}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A stand-in mKTL daemon: a ROUTER (requests) and a PUB (broadcasts) bound on 127.0.0.1.
pub struct Peer {
    pub rep_port: u16,
    pub pub_port: u16,
    answers: Arc<Mutex<Answers>>,
    requests: Arc<Mutex<Vec<Frames>>>,
    publisher: tokio::sync::Mutex<PubSocket>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Peer {
    /// Bind both on free ports (port 0) and start answering.
    pub async fn start(answers: Answers) -> Peer {
        Peer::start_on(0, 0, answers).await
    }

    /// Bind on the given ports (to restart "on the same port"); retry the bind for up to ~5 s
    /// while the old socket's port is still being released.
    pub async fn start_on(rep_port: u16, pub_port: u16, answers: Answers) -> Peer {
        let mut router = RouterSocket::new();
        let rep_port = bind(&mut router, rep_port).await;
        let mut publisher = PubSocket::new();
        let pub_port = bind(&mut publisher, pub_port).await;
        let answers = Arc::new(Mutex::new(answers));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(router, stopped, answers.clone(), requests.clone()));
        Peer { rep_port, pub_port, answers, requests, publisher: tokio::sync::Mutex::new(publisher), stop, task }
    }

    /// Replace the answers while running.
    pub fn set_answers(&self, answers: Answers) {
        *self.answers.lock().expect("answers lock") = answers;
    }

    /// Change the answers in place while running (the other keys keep their queue positions).
    pub fn edit_answers(&self, edit: impl FnOnce(&mut Answers)) {
        edit(&mut self.answers.lock().expect("answers lock"));
    }

    /// Send one broadcast (the frames exactly as given, e.g. a captured publish message's frames).
    /// A PUB delivers only to subscribers that have already connected and subscribed.
    pub async fn publish(&self, frames: &[Vec<u8>]) {
        let message = ZmqMessage::try_from(frames.iter().map(|f| Bytes::from(f.clone())).collect::<Vec<_>>())
            .expect("a broadcast has at least one frame");
        self.publisher.lock().await.send(message).await.expect("PUB send");
    }

    /// Every request received so far, as the 6 frames the client sent (routing identity removed).
    pub fn requests(&self) -> Vec<Frames> {
        self.requests.lock().expect("requests lock").clone()
    }

    /// Stop: close both sockets so their ports are free, end the answering task.
    pub async fn stop(self) {
        let Peer { stop, task, publisher, .. } = self;
        let _ = stop.send(());
        task.await.expect("the answering task ended cleanly");
        let _ = publisher.into_inner().close().await;
    }
}

/// The answering task: record each request, send its replies with the request's id, until `stopped`.
async fn serve(
    mut router: RouterSocket,
    mut stopped: oneshot::Receiver<()>,
    answers: Arc<Mutex<Answers>>,
    requests: Arc<Mutex<Vec<Frames>>>,
) {
    loop {
        let received = tokio::select! {
            _ = &mut stopped => break,
            m = router.recv() => m,
        };
        let Ok(message) = received else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        // [identity, version, id, type, target, flags, payload]
        let mut frames = message.into_vec();
        if frames.is_empty() {
            continue;
        }
        let identity = frames.remove(0);
        let request: Frames = frames.iter().map(|f| f.to_vec()).collect();
        requests.lock().expect("requests lock").push(request.clone());
        let replies = answers.lock().expect("answers lock").answer(&request);
        for reply in replies {
            let mut out = vec![identity.clone()];
            out.extend(reply.into_iter().enumerate().map(|(i, f)| if i == 1 { Bytes::from(request[1].clone()) } else { Bytes::from(f) }));
            let message = ZmqMessage::try_from(out).expect("a reply has frames");
            // the client may have gone meanwhile: then there is no one to answer
            let _ = router.send(message).await;
        }
    }
    let _ = router.close().await;
}

/// A stand-in mKTL registry: a UDP discovery listener and its own ROUTER.
pub struct Registry {
    pub udp_port: u16,
    /// The registry's own REQ port (the one the UDP reply names).
    pub rep_port: u16,
    /// The registry's ROUTER (and PUB): its requests, its answers.
    pub peer: Peer,
    caps: Vec<Captured>,
    calls: Arc<AtomicUsize>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Registry {
    /// UDP on 127.0.0.1:0 answering exactly b"Aloha mKTL" (a trailing "\n" tolerated; anything else,
    /// e.g. "aloha mktl" or "hello", gets no answer, as discovery.jsonl's udp-probe group shows) with
    /// b"E komo mai:<rep_port>" (ASCII decimal), and a ROUTER whose answers are the registry's captured
    /// ones after the daemon announced itself (request.jsonl groups `raw2-*` and `mk-14` on 10079) and
    /// whose `GET nids._catalog` (empty payload, as mk sends it) answer is
    /// `Answers::catalog(caps, daemon_rep, daemon_pub)`. `caps` is `load("request.jsonl")`.
    pub async fn start(caps: &[Captured], daemon_rep: u16, daemon_pub: u16) -> Registry {
        let mut answers = Answers::from_capture(caps, 10079, |g| !g.starts_with("raw-"));
        answers.set("GET", "nids._catalog", b"", Answers::catalog(caps, daemon_rep, daemon_pub));
        let peer = Peer::start(answers).await;
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind the registry's UDP socket");
        let udp_port = udp.local_addr().expect("UDP local address").port();
        let calls = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(discovery(udp, format!("E komo mai:{}", peer.rep_port), calls.clone(), stopped));
        Registry { udp_port, rep_port: peer.rep_port, peer, caps: caps.to_vec(), calls, stop, task }
    }

    /// The daemon moved: answer the catalog with the new ports from now on.
    pub fn announce(&self, daemon_rep: u16, daemon_pub: u16) {
        let catalog = Answers::catalog(&self.caps, daemon_rep, daemon_pub);
        self.peer.edit_answers(|a| a.set("GET", "nids._catalog", b"", catalog));
    }

    /// How many UDP calls were answered.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Stop: close the UDP socket and the ROUTER and PUB.
    pub async fn stop(self) {
        let Registry { peer, stop, task, .. } = self;
        let _ = stop.send(());
        task.await.expect("the discovery task ended cleanly");
        peer.stop().await;
    }
}

/// The UDP listener: answer each exact call with `reply`, until `stopped`.
async fn discovery(udp: tokio::net::UdpSocket, reply: String, calls: Arc<AtomicUsize>, mut stopped: oneshot::Receiver<()>) {
    let mut buf = [0u8; 2048];
    loop {
        let received = tokio::select! {
            _ = &mut stopped => break,
            r = udp.recv_from(&mut buf) => r,
        };
        // an error here is an ICMP report about an earlier datagram: keep listening
        let Ok((n, from)) = received else {
            continue;
        };
        let call = &buf[..n];
        if (call == b"Aloha mKTL" || call == b"Aloha mKTL\n") && udp.send_to(reply.as_bytes(), from).await.is_ok() {
            calls.fetch_add(1, Ordering::SeqCst);
        }
    }
}
