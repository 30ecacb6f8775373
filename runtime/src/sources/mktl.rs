//! An mKTL subscriber (the KTL successor; protocol of KeckObservatory/mKTL,
//! doc/protocol.rst, version 'a'). Broadcasts arrive on a ZeroMQ SUB socket
//! as multipart messages `[topic "store.KEY.", version, JSON payload
//! {"value", "time"}, (bulk)]`; the subscription is the topic. Reads use a
//! DEALER socket: `[version, id, "GET", "store.KEY", flags, payload]`,
//! answered by an ACK and a REP carrying `{"value", "time"}` or `{"error"}`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value as Json;
use tokio::sync::{Mutex, mpsc};
use zeromq::{DealerSocket, Socket, SocketRecv, SocketSend, SubSocket, ZmqMessage};

use super::{Broadcast, Reader, SourceError, now_secs};

/// The protocol version this client speaks.
pub const VERSION: &[u8] = b"a";

/// Text of a JSON value as a KTL ascii value.
pub fn ascii(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        Json::Bool(b) => if *b { "true".into() } else { "false".into() },
        other => other.to_string(),
    }
}

/// Decode a published message: (key without the trailing '.', value, time).
pub fn decode_publish(parts: &[Bytes]) -> Result<(String, String, Option<f64>), SourceError> {
    if parts.len() < 3 {
        return Err(SourceError::Failed(format!("mKTL broadcast with {} parts", parts.len())));
    }
    if parts[1].as_ref() != VERSION {
        return Err(SourceError::Failed(format!("mKTL protocol version {:?} not supported", String::from_utf8_lossy(&parts[1]))));
    }
    let topic = String::from_utf8_lossy(&parts[0]).trim_end_matches('.').to_string();
    let payload: Json = serde_json::from_slice(&parts[2]).map_err(|e| SourceError::Failed(format!("mKTL payload: {e}")))?;
    Ok((topic, payload.get("value").map(ascii).unwrap_or_default(), payload.get("time").and_then(Json::as_f64)))
}

/// Subscriber of one mKTL store's publish socket.
pub struct Mktl {
    pub store: String,
    request: Option<Mutex<DealerSocket>>,
    ids: AtomicU64,
    timeout: Duration,
}

impl Mktl {
    /// Connect the request socket (when given) for reads.
    pub async fn connect(store: &str, request: Option<&str>, timeout: Duration) -> Result<Mktl, SourceError> {
        let request = match request {
            Some(addr) => {
                let mut d = DealerSocket::new();
                d.connect(addr).await.map_err(|e| SourceError::Failed(format!("mKTL request {addr}: {e}")))?;
                Some(Mutex::new(d))
            }
            None => None,
        };
        Ok(Mktl { store: store.to_string(), request, ids: AtomicU64::new(1), timeout })
    }

    /// GET the current value of `KEY` of this store.
    pub async fn get(&self, key: &str) -> Result<String, SourceError> {
        let Some(sock) = &self.request else {
            return Err(SourceError::Failed(format!("no mKTL request address for {}", self.store)));
        };
        let id = self.ids.fetch_add(1, Ordering::Relaxed).to_be_bytes().to_vec();
        let target = format!("{}.{key}", self.store);
        let frames: Vec<Bytes> = vec![
            Bytes::from_static(VERSION),
            Bytes::from(id.clone()),
            Bytes::from_static(b"GET"),
            Bytes::from(target.clone()),
            Bytes::from_static(b"\0"),
            Bytes::new(),
        ];
        let mut s = sock.lock().await;
        let msg = ZmqMessage::try_from(frames).map_err(|e| SourceError::Failed(e.to_string()))?;
        s.send(msg).await.map_err(|e| SourceError::Failed(format!("mKTL GET {target}: {e}")))?;
        loop {
            let reply = tokio::time::timeout(self.timeout, s.recv())
                .await
                .map_err(|_| SourceError::Failed(format!("mKTL GET {target}: no answer")))?
                .map_err(|e| SourceError::Failed(format!("mKTL GET {target}: {e}")))?
                .into_vec();
            // version, id, type, target, flags, payload
            if reply.len() < 6 || reply[1].as_ref() != id.as_slice() {
                continue;
            }
            match reply[2].as_ref() {
                b"ACK" => continue,
                b"REP" => {
                    let payload: Json = serde_json::from_slice(&reply[5]).map_err(|e| SourceError::Failed(format!("mKTL reply: {e}")))?;
                    if let Some(err) = payload.get("error").filter(|e| !e.is_null()) {
                        return Err(SourceError::Failed(format!("mKTL GET {target}: {err}")));
                    }
                    return Ok(payload.get("value").map(ascii).unwrap_or_default());
                }
                other => return Err(SourceError::Failed(format!("mKTL GET {target}: unexpected {:?}", String::from_utf8_lossy(other)))),
            }
        }
    }

    /// Subscribe to `keys` on the publish socket and forward broadcasts for
    /// the service `unique` until the channel closes.
    pub async fn subscribe(
        publish: String,
        store: String,
        unique: String,
        keys: Vec<String>,
        tx: mpsc::Sender<Broadcast>,
        errors: mpsc::Sender<(String, String)>,
    ) {
        loop {
            let mut sub = SubSocket::new();
            if let Err(e) = sub.connect(&publish).await {
                let _ = errors.send((unique.clone(), format!("mKTL publish {publish}: {e}"))).await;
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
            for k in &keys {
                if let Err(e) = sub.subscribe(&format!("{store}.{k}.")).await {
                    let _ = errors.send((unique.clone(), format!("mKTL subscribe {k}: {e}"))).await;
                }
            }
            loop {
                match sub.recv().await {
                    Ok(m) => match decode_publish(&m.into_vec()) {
                        Ok((topic, value, time)) => {
                            let keyword = topic.rsplit('.').next().unwrap_or("").to_string();
                            let b = Broadcast { service: unique.clone(), keyword, value, time: time.unwrap_or_else(now_secs) };
                            if tx.send(b).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = errors.send((unique.clone(), e.to_string())).await;
                        }
                    },
                    Err(e) => {
                        let _ = errors.send((unique.clone(), format!("mKTL {publish}: {e}"))).await;
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

impl Reader for Mktl {
    fn read<'a>(&'a self, keyword: &'a str) -> Pin<Box<dyn Future<Output = Result<String, SourceError>> + Send + 'a>> {
        Box::pin(self.get(keyword))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasts_decode() {
        let parts = vec![
            Bytes::from_static(b"kpfguide.LASTFILENAME."),
            Bytes::from_static(b"a"),
            Bytes::from_static(br#"{"value": "/sdata1701/kpf1/image_672.fits", "time": 1718000000.5}"#),
        ];
        let (topic, value, time) = decode_publish(&parts).unwrap();
        assert_eq!((topic.as_str(), value.as_str(), time), ("kpfguide.LASTFILENAME", "/sdata1701/kpf1/image_672.fits", Some(1718000000.5)));
        let bad = vec![Bytes::from_static(b"x."), Bytes::from_static(b"z"), Bytes::from_static(b"{}")];
        assert!(decode_publish(&bad).is_err());
        assert_eq!(ascii(&serde_json::json!(17)), "17");
        assert_eq!(ascii(&serde_json::json!(false)), "false");
    }
}
