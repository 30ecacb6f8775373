//! The mKTL source against the captured traffic of a real mKTL daemon and
//! registry (`data_dir()/mktl`), replayed byte for byte by a stand-in peer
//! the test starts: broadcasts decoded, reads answered, errors in one line,
//! discovery through the registry, and both sockets recovering when the
//! daemon restarts on the same or another port.

use std::time::Duration;

use koa_dep::sources::mktl::{Mktl, Settings};
use koa_dep::sources::{Broadcast, SourceError, SourceEvent, SourceState};
use koa_dep_tests::mktl::{Answers, Captured, Peer, Registry, load};
use koa_dep_tests::runtime;
use tokio::sync::mpsc;

/// The nids daemon's raw GETs that answer a value, one group per key.
fn read_answers(caps: &[Captured]) -> Answers {
    Answers::from_capture(caps, 10080, |g| ["raw-01", "raw-02", "raw-04", "raw-07", "raw-08"].contains(&g))
}

fn fixed(peer: &Peer) -> Settings {
    let mut s = Settings::new("NIDS");
    s.publish = Some(format!("tcp://127.0.0.1:{}", peer.pub_port));
    s.request = Some(format!("tcp://127.0.0.1:{}", peer.rep_port));
    s
}

/// Start `m`'s subscriber for the nids keys as typed in KTL's upper case.
fn subscribe(m: &std::sync::Arc<Mktl>, silence: Option<Duration>) -> (mpsc::Receiver<Broadcast>, mpsc::Receiver<SourceEvent>) {
    let (tx, rx) = mpsc::channel(1024);
    let (etx, erx) = mpsc::channel(1024);
    let keys = ["LASTFILE", "ITERATION", "LFRAMENO", "WDISK", "OUTFILE"].map(String::from).to_vec();
    let m = m.clone();
    tokio::spawn(async move { m.subscribe("nids".into(), keys, silence, tx, etx).await });
    (rx, erx)
}

/// The value the captured `nids.lastfile.` broadcast carries.
const PUBLISHED: &str = "/sdata/nires/2024mar15/s240315_0016.fits";
/// The value the captured GET of lastfile answers (raw-01).
const CURRENT: &str = "/sdata/nires/2024mar15/s240315_0017.fits";

/// Publish `frames` until a broadcast of `keyword` arrives (a subscriber
/// only receives once its subscription reached the publisher), with
/// `value` when given (a catch-up read's broadcast is not a published one).
async fn publish_until(peer: &Peer, frames: &[Vec<u8>], rx: &mut mpsc::Receiver<Broadcast>, keyword: &str, secs: u64) -> Option<Broadcast> {
    let want = (keyword == "lastfile").then_some(PUBLISHED);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        peer.publish(frames).await;
        if let Ok(Some(b)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            if b.keyword == keyword && want.is_none_or(|v| b.value == v) {
                return Some(b);
            }
        }
    }
    None
}

#[test]
fn captured_broadcasts_reach_the_subscriber_decoded() {
    let caps = load("publish.jsonl");
    assert_eq!(caps.len(), 40);
    runtime().block_on(async {
        let peer = Peer::start(Answers::default()).await;
        let m = std::sync::Arc::new(Mktl::new(fixed(&peer)));
        let (mut rx, mut events) = subscribe(&m, None);
        // the first captured heartbeat, until the subscription is in place
        let first = publish_until(&peer, &caps[0].frames, &mut rx, "iteration", 20).await.expect("a heartbeat arrives");
        assert_eq!((first.value.as_str(), first.time), ("56", 1796193407.4607291));
        assert!(matches!(events.recv().await, Some(SourceEvent { state: SourceState::Up(_), .. })), "the source says it is up");
        tokio::time::sleep(Duration::from_millis(500)).await;
        while rx.try_recv().is_ok() {}
        for c in &caps {
            peer.publish(&c.frames).await;
        }
        let mut got = Vec::new();
        while let Ok(Some(b)) = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
            got.push((b.keyword, b.value));
        }
        let beats: Vec<&str> = got.iter().filter(|(k, _)| k == "iteration").map(|(_, v)| v.as_str()).collect();
        assert_eq!(beats.len(), 11, "every heartbeat of the capture");
        let rest: Vec<(&str, &str)> = got.iter().filter(|(k, _)| k != "iteration").map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            rest,
            vec![
                ("lastfile", "/sdata/nires/2024mar15/s240315_0016.fits"),
                ("lastfile", "/sdata/nires/2024mar15/s240315_0017.fits"),
                ("outfile", "s240315_"),
                ("lframeno", "17"),
                ("lframeno", "18"),
                ("wdisk", "false"),
                ("wdisk", "true"),
            ],
            "the keys subscribed in upper case arrive (lower case topics), 18.0 as 18, booleans as KTL writes them; \
             the store's clock is liveness only and _nidscpu was not subscribed"
        );
        peer.stop().await;
    });
}

#[test]
fn reads_replay_the_captured_requests_and_errors_are_one_line() {
    let caps = load("request.jsonl");
    runtime().block_on(async {
        let peer = Peer::start(read_answers(&caps)).await;
        let m = Mktl::new(fixed(&peer));
        assert_eq!(m.get("LASTFILE").await.unwrap(), "/sdata/nires/2024mar15/s240315_0017.fits");
        assert_eq!(m.get("LFRAMENO").await.unwrap(), "18", "18.0 on the wire is 18 in KTL ascii");
        assert_eq!(m.get("WDISK").await.unwrap(), "true");
        assert_eq!(m.get("outfile").await.unwrap(), "s240315_");
        // the request is the captured raw GET byte for byte, apart from the id
        let sent = peer.requests();
        let raw01 = caps.iter().find(|c| c.group == "raw-01" && c.from_client).unwrap();
        let mut ours = sent[0].clone();
        ours[1] = raw01.frames[1].clone();
        assert_eq!(ours, raw01.frames, "version, type, target (lower case), empty flags and payload as captured");
        let ids: Vec<&[u8]> = sent.iter().map(|f| f[1].as_slice()).collect();
        assert_eq!(ids, vec![&b"00000000"[..], b"00000001", b"00000002", b"00000003"], "8 hex digits, one per request");
        // the unknown key: the peer's error in one line, no traceback
        let err = m.get("NOSUCHKEY").await.unwrap_err();
        assert!(matches!(err, SourceError::Read(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("KeyError: this daemon does not contain 'nosuchkey'"), "{text}");
        assert!(!text.contains("Traceback") && !text.contains('\n'), "{text}");
        // the socket is still good after an error answer
        assert_eq!(m.get("WDISK").await.unwrap(), "true");
        peer.stop().await;
    });
}

#[test]
fn a_reply_of_another_version_or_none_at_all_is_an_error_not_a_hang() {
    let caps = load("request.jsonl");
    runtime().block_on(async {
        let mut answers = read_answers(&caps);
        // the captured NO_ACK exchange: a REP without an ACK is accepted
        let raw11 = caps.iter().filter(|c| c.group == "raw-11" && !c.from_client).map(|c| c.frames.clone()).collect::<Vec<_>>();
        assert_eq!(raw11.len(), 1);
        answers.set("GET", "nids.outfile", b"", raw11);
        // a version 'b' answer, and no answer at all (as the daemon does to a 'b' request)
        let mut b = caps.iter().find(|c| c.group == "raw-01" && !c.from_client && c.frames[2] == b"REP").unwrap().frames.clone();
        b[0] = b"b".to_vec();
        answers.set("GET", "nids.lframeno", b"", vec![b]);
        let peer = Peer::start(answers).await;
        let mut s = fixed(&peer);
        s.ack_timeout = Duration::from_millis(300);
        let m = Mktl::new(s);
        assert_eq!(m.get("OUTFILE").await.unwrap(), "/sdata/nires/2024mar15/s240315_0018.fits", "the REP of the NO_ACK capture");
        let t = std::time::Instant::now();
        let err = m.get("LFRAMENO").await.unwrap_err();
        assert!(matches!(err, SourceError::Protocol(_)) && err.to_string().contains("version"), "{err:?}");
        let err = m.get("ITERATION").await.unwrap_err();
        assert!(err.to_string().contains("no acknowledgement"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(5), "bounded: {:?}", t.elapsed());
        // and the next read connects afresh and works
        assert_eq!(m.get("LASTFILE").await.unwrap(), "/sdata/nires/2024mar15/s240315_0017.fits");
        peer.stop().await;
    });
}

#[test]
fn both_sockets_recover_when_the_daemon_restarts_on_the_same_port() {
    let caps = load("request.jsonl");
    let publish = load("publish.jsonl");
    let lastfile = publish.iter().find(|c| c.frames[0] == b"nids.lastfile.").unwrap().frames.clone();
    runtime().block_on(async {
        let peer = Peer::start(read_answers(&caps)).await;
        let (rep, pubp) = (peer.rep_port, peer.pub_port);
        let m = std::sync::Arc::new(Mktl::new(fixed(&peer)));
        let (mut rx, _events) = subscribe(&m, Some(Duration::from_secs(2)));
        assert!(publish_until(&peer, &lastfile, &mut rx, "lastfile", 20).await.is_some());
        assert!(m.get("LASTFILE").await.is_ok());
        peer.stop().await;
        assert!(m.get("LASTFILE").await.is_err(), "the daemon is gone");
        let t = std::time::Instant::now();
        let peer = Peer::start_on(rep, pubp, read_answers(&caps)).await;
        // the very first read after the restart works (its stale socket is replaced within the read)
        assert_eq!(m.get("LASTFILE").await.ok().as_deref(), Some(CURRENT), "reads work again at once");
        assert!(publish_until(&peer, &lastfile, &mut rx, "lastfile", 20).await.is_some(), "broadcasts arrive again");
        eprintln!("recovered in {:.1} s", t.elapsed().as_secs_f64());
        peer.stop().await;
    });
}

#[test]
fn discovery_finds_the_daemon_and_follows_it_to_a_new_port() {
    let caps = load("request.jsonl");
    let publish = load("publish.jsonl");
    let lastfile = publish.iter().find(|c| c.frames[0] == b"nids.lastfile.").unwrap().frames.clone();
    runtime().block_on(async {
        let peer = Peer::start(read_answers(&caps)).await;
        let registry = Registry::start(&caps, peer.rep_port, peer.pub_port).await;
        // only the store is configured (in upper case), and where the registry listens
        let mut s = Settings::new("NIDS");
        s.registry = Some(format!("127.0.0.1:{}", registry.udp_port));
        assert!(s.discovers());
        let m = std::sync::Arc::new(Mktl::new(s));
        let found = m.endpoints().await.expect("the registry knows nids");
        assert_eq!(found.request, format!("tcp://localhost:{}", peer.rep_port), "the catalog's provenance");
        assert_eq!(m.get("LASTFILE").await.unwrap(), "/sdata/nires/2024mar15/s240315_0017.fits");
        let (mut rx, _events) = subscribe(&m, Some(Duration::from_secs(2)));
        assert!(publish_until(&peer, &lastfile, &mut rx, "lastfile", 20).await.is_some());
        let calls = registry.calls();
        // the daemon restarts on other ports and announces itself
        peer.stop().await;
        let moved = Peer::start(read_answers(&caps)).await;
        registry.announce(moved.rep_port, moved.pub_port);
        let t = std::time::Instant::now();
        assert_eq!(m.get("LASTFILE").await.ok().as_deref(), Some(CURRENT), "the first read follows the daemon to its new port");
        assert!(publish_until(&moved, &lastfile, &mut rx, "lastfile", 20).await.is_some(), "so do broadcasts");
        assert!(registry.calls() > calls, "found again through the registry");
        eprintln!("found again in {:.1} s", t.elapsed().as_secs_f64());
        moved.stop().await;
        registry.stop().await;
    });
}

#[test]
fn a_configured_key_the_catalog_lacks_is_said_with_a_code() {
    let caps = load("request.jsonl");
    runtime().block_on(async {
        let peer = Peer::start(read_answers(&caps)).await;
        let registry = Registry::start(&caps, peer.rep_port, peer.pub_port).await;
        let mut s = Settings::new("nids");
        s.registry = Some(format!("127.0.0.1:{}", registry.udp_port));
        let m = std::sync::Arc::new(Mktl::new(s));
        let (tx, _rx) = mpsc::channel(16);
        let (etx, mut events) = mpsc::channel(16);
        let keys = vec!["LASTFILE".to_string(), "LOUTFILE".to_string()];
        let mm = m.clone();
        tokio::spawn(async move { mm.subscribe("nids".into(), keys, None, tx, etx).await });
        let ev = tokio::time::timeout(Duration::from_secs(20), events.recv()).await.expect("an event").unwrap();
        let SourceState::Failed(e) = ev.state else { panic!("{ev:?}") };
        assert_eq!(e.code(), "KTL_UNKNOWN_KEY");
        assert!(e.to_string().contains("has no key loutfile"), "{e}");
        peer.stop().await;
        registry.stop().await;
    });
}

#[test]
fn on_connecting_the_triggers_current_value_is_caught_up() {
    let caps = load("request.jsonl");
    runtime().block_on(async {
        let peer = Peer::start(read_answers(&caps)).await;
        let m = std::sync::Arc::new(Mktl::new(fixed(&peer)));
        let (mut rx, _events) = subscribe(&m, None);
        // nothing is published: the file written while nobody listened comes from a read
        let b = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("a catch-up broadcast").unwrap();
        assert_eq!((b.keyword.as_str(), b.value.as_str()), ("lastfile", CURRENT));
        peer.stop().await;
    });
}

#[test]
fn strangers_and_bad_messages_are_logged_and_the_source_keeps_running() {
    let publish = load("publish.jsonl");
    let lastfile = publish.iter().find(|c| c.frames[0] == b"nids.lastfile.").unwrap().frames.clone();
    runtime().block_on(async {
        let peer = Peer::start(Answers::default()).await;
        let mut s = fixed(&peer);
        s.request = None; // broadcasts only
        let m = std::sync::Arc::new(Mktl::new(s));
        let (mut rx, mut events) = subscribe(&m, None);
        assert!(publish_until(&peer, &lastfile, &mut rx, "lastfile", 20).await.is_some());
        tokio::time::sleep(Duration::from_millis(300)).await;
        while rx.try_recv().is_ok() {}
        for bad in [
            vec![b"nids.lastfile.".to_vec(), b"b".to_vec(), lastfile[2].clone()],
            vec![b"nids.lastfile.".to_vec(), b"a".to_vec(), b"not json".to_vec()],
            vec![b"nids.lastfile.".to_vec()],
        ] {
            peer.publish(&bad).await;
        }
        peer.publish(&lastfile).await;
        let b = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
        assert_eq!(b.value, "/sdata/nires/2024mar15/s240315_0016.fits", "the good message after the bad ones");
        let mut codes = Vec::new();
        while let Ok(ev) = events.try_recv() {
            if let SourceState::Failed(e) = ev.state {
                codes.push(e.code());
            }
        }
        assert_eq!(codes, vec!["KTL_PROTOCOL_ERROR"; 3], "each bad message once, with a code");
        peer.stop().await;
    });
}
