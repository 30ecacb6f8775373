//! Finding a store's daemon as mKTL's own client does: a UDP call
//! `Aloha mKTL` to the registry's discovery port (10103; by broadcast
//! unless an address is configured) is answered `E komo mai:<REQ port>`;
//! the registry's request socket then answers `GET <store>._catalog` with
//! the store's block, whose `provenance` names the daemon's host and its
//! request (`rep`) and publish (`pub`) ports. Nothing here is cached: the
//! client asks again whenever its sockets fail, so a daemon that restarts on
//! another port is found again.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::net::UdpSocket;
use zeromq::{DealerSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

use super::wire;
use crate::sources::SourceError;

/// The registry's discovery port.
pub const REGISTRY_PORT: u16 = 10103;
/// The discovery call.
pub const CALL: &[u8] = b"Aloha mKTL";
/// Where the call goes when no registry is configured.
pub const DEFAULT_REGISTRY: &str = "255.255.255.255:10103";

/// Where a store's daemon listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// Request (ROUTER) socket, `tcp://host:port`.
    pub request: String,
    /// Publish socket, `tcp://host:port`.
    pub publish: String,
    /// The store's keys as its catalog lists them (empty: not known).
    pub keys: Vec<String>,
}

/// The REQ port of a discovery reply (`E komo mai:10079`), or None for a
/// datagram that is not one.
pub fn parse_reply(datagram: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(datagram).ok()?.trim_end();
    text.strip_prefix("E komo mai:")?.trim().parse().ok().filter(|p| *p != 0)
}

/// Call the registry at `registry` (`host:port`, or a broadcast address) and
/// collect the request addresses that answer within `wait` (returns as soon
/// as one answered and a short grace for others has passed).
pub async fn call(registry: &str, wait: Duration) -> Result<Vec<String>, SourceError> {
    let target = tokio::net::lookup_host(registry)
        .await
        .map_err(|e| SourceError::Start(format!("mKTL registry {registry}: {e}")))?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| SourceError::Start(format!("mKTL registry {registry}: no IPv4 address")))?;
    let sock = UdpSocket::bind("0.0.0.0:0").await.map_err(|e| SourceError::Start(format!("mKTL discovery socket: {e}")))?;
    sock.set_broadcast(true).map_err(|e| SourceError::Start(format!("mKTL discovery socket: {e}")))?;
    sock.send_to(CALL, target).await.map_err(|e| SourceError::Start(format!("mKTL discovery call to {target}: {e}")))?;
    let mut found = Vec::new();
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let until = if found.is_empty() { deadline } else { deadline.min(tokio::time::Instant::now() + Duration::from_millis(50)) };
        match tokio::time::timeout_at(until, sock.recv_from(&mut buf)).await {
            Ok(Ok((n, from))) => match parse_reply(&buf[..n]) {
                Some(port) => {
                    let addr = format!("tcp://{}:{port}", from.ip());
                    if !found.contains(&addr) {
                        found.push(addr);
                    }
                }
                // a stranger's datagram: not an answer
                None => tracing::warn!("KTL_PROTOCOL_ERROR mKTL discovery: ignored a datagram from {from} that is not an mKTL answer"),
            },
            Ok(Err(e)) => return Err(SourceError::Start(format!("mKTL discovery: {e}"))),
            Err(_) => break,
        }
    }
    if found.is_empty() {
        return Err(SourceError::Start(format!("mKTL registry {registry}: no answer to the discovery call in {wait:?}")));
    }
    Ok(found)
}

/// One request on a fresh DEALER: the REP payload (or the peer's error).
pub async fn request_once(address: &str, target: &str, timeout: Duration) -> Result<Json, SourceError> {
    let start = |e: String| SourceError::Start(format!("mKTL {address}: {e}"));
    let mut d = DealerSocket::new();
    tokio::time::timeout(timeout, d.connect(address)).await.map_err(|_| start("no connection".into()))?.map_err(|e| start(e.to_string()))?;
    let id = wire::request_id(0);
    let msg = ZmqMessage::try_from(wire::get_request(&id, target)).map_err(|e| start(e.to_string()))?;
    d.send(msg).await.map_err(|e| start(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let m = tokio::time::timeout_at(deadline, d.recv()).await.map_err(|_| start(format!("no answer to GET {target}")))?.map_err(|e| start(e.to_string()))?;
        match wire::decode_reply(&m.into_vec()).map_err(|e| SourceError::Protocol(format!("{address}: {e}")))? {
            wire::Reply::Rep { id: got, payload, .. } if got == id => {
                return match wire::peer_error(&payload) {
                    Some(e) => Err(SourceError::Start(format!("mKTL {address}: GET {target}: {e}"))),
                    None => Ok(payload),
                };
            }
            _ => continue,
        }
    }
}

/// The endpoints of `store` in a `GET <store>._catalog` answer: the block of
/// that store, its provenance entry of the lowest stratum.
pub fn endpoints_of(store: &str, catalog: &Json) -> Result<Endpoints, SourceError> {
    let store = wire::name(store);
    if catalog.get("value").and_then(Json::as_object).is_none() {
        return Err(SourceError::Protocol("mKTL catalog without a value".into()));
    }
    let block = block_of(&store, catalog).ok_or_else(|| SourceError::Start(format!("mKTL catalog has no store {store:?}")))?;
    let best = block
        .get("provenance")
        .and_then(Json::as_array)
        .and_then(|p| p.iter().min_by_key(|e| e.get("stratum").and_then(Json::as_i64).unwrap_or(i64::MAX)))
        .ok_or_else(|| SourceError::Protocol(format!("mKTL catalog of {store:?} without provenance")))?;
    let host = best.get("hostname").and_then(Json::as_str).filter(|h| !h.is_empty());
    let port = |k: &str| best.get(k).and_then(Json::as_u64).filter(|p| (1..=65535).contains(p));
    match (host, port("rep"), port("pub")) {
        (Some(h), Some(rep), Some(publ)) => {
            Ok(Endpoints { request: format!("tcp://{h}:{rep}"), publish: format!("tcp://{h}:{publ}"), keys: keys_of(block) })
        }
        _ => Err(SourceError::Protocol(format!("mKTL catalog of {store:?}: provenance without hostname, rep and pub"))),
    }
}

/// The block of `store` in a `GET <store>._catalog` answer.
fn block_of<'a>(store: &str, catalog: &'a Json) -> Option<&'a Json> {
    let store = wire::name(store);
    catalog.get("value")?.as_object()?.values().find(|b| b.get("store").and_then(Json::as_str) == Some(store.as_str()))
}

/// The keys a catalog block lists.
pub fn keys_of(block: &Json) -> Vec<String> {
    block.get("items").and_then(Json::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// The keys of `store` as its daemon's catalog lists them.
pub async fn catalog_keys(request: &str, store: &str, timeout: Duration) -> Result<Vec<String>, SourceError> {
    let catalog = request_once(request, &format!("{}._catalog", wire::name(store)), timeout).await?;
    Ok(block_of(store, &catalog).map(keys_of).unwrap_or_default())
}

/// Find `store` through the registry at `registry`.
pub async fn locate(store: &str, registry: &str, timeout: Duration) -> Result<Endpoints, SourceError> {
    let registries = call(registry, timeout).await?;
    let target = format!("{}._catalog", wire::name(store));
    let mut last = None;
    for r in registries {
        match request_once(&r, &target, timeout).await.and_then(|c| endpoints_of(store, &c)) {
            Ok(e) => return Ok(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| SourceError::Start(format!("mKTL store {store:?} not found"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_and_catalogs_parse() {
        assert_eq!(parse_reply(b"E komo mai:10079"), Some(10079));
        assert_eq!(parse_reply(b"E komo mai:10080\n"), Some(10080));
        assert_eq!(parse_reply(b"Aloha mKTL"), None);
        assert_eq!(parse_reply(b"E komo mai:0"), None);
        assert_eq!(parse_reply(&[0xff, 0xfe]), None);
        let cat: Json = serde_json::from_str(
            r#"{"value": {"u1": {"store": "nids", "hash": 154128535241959135611003889937011781551,
               "items": {"lastfile": {"type": "string"}, "_nidsclk": {}},
               "provenance": [{"stratum": 1, "hostname": "relay", "rep": 1, "pub": 2}, {"stratum": 0, "hostname": "localhost", "rep": 10080, "pub": 10140}]}}}"#,
        )
        .unwrap();
        assert_eq!(
            endpoints_of("NIDS", &cat).unwrap(),
            Endpoints {
                request: "tcp://localhost:10080".into(),
                publish: "tcp://localhost:10140".into(),
                keys: vec!["_nidsclk".into(), "lastfile".into()]
            }
        );
        assert!(endpoints_of("kpfguide", &cat).is_err());
    }

    #[tokio::test]
    async fn a_strangers_datagram_is_not_an_answer() {
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = peer.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let (n, from) = peer.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], CALL);
            peer.send_to(b"hello", from).await.unwrap();
            peer.send_to(b"E komo mai:12345", from).await.unwrap();
        });
        assert_eq!(call(&addr, Duration::from_secs(2)).await.unwrap(), vec!["tcp://127.0.0.1:12345".to_string()]);
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let err = call(&silent.local_addr().unwrap().to_string(), Duration::from_millis(200)).await.unwrap_err();
        assert!(matches!(err, SourceError::Start(_)), "{err:?}");
    }
}
