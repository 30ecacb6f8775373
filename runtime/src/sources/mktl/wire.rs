//! The mKTL wire format (protocol version `a`), as the captured traffic of
//! a real daemon shows it (`../shared/data/mktl/README.md` in the test data):
//!
//! * a request is 6 frames `[version, id, type, target, flags, payload]`,
//!   answered by an ACK `[version, id, "ACK", "", "", ""]` and then a REP
//!   `[version, id, "REP", target, "", payload]` with the id and the target
//!   echoed byte for byte;
//! * a broadcast is `[topic, version, payload]` with the topic
//!   `store + "." + key + "."`;
//! * store and key names are lower case on the wire whatever case the
//!   configuration uses (mKTL lower-cases every name it declares, and
//!   ZeroMQ's topic prefix match is case-sensitive);
//! * a payload is JSON `{"value", "time"}` or `{"error": {"type", "text", "debug"}}`.

use bytes::Bytes;
use serde_json::Value as Json;

/// The protocol version this client speaks.
pub const VERSION: &[u8] = b"a";

/// A frame the peer sent that this client cannot use.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum WireError {
    #[error("mKTL message with {0} frames")]
    Frames(usize),
    #[error("mKTL protocol version {0:?} not supported (this client speaks \"a\")")]
    Version(String),
    #[error("mKTL payload is not JSON: {0}")]
    Json(String),
    #[error("mKTL message type {0:?} unexpected")]
    Type(String),
    #[error("mKTL broadcast topic {0:?} is not of store {1:?}")]
    Topic(String, String),
}

/// A store or key name as mKTL has it.
pub fn name(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}

/// The request target of `key` in `store`: `store.key`, lower case.
pub fn target(store: &str, key: &str) -> String {
    format!("{}.{}", name(store), name(key))
}

/// The broadcast topic of `key` in `store`: `store.key.`, lower case.
pub fn topic(store: &str, key: &str) -> String {
    format!("{}.", target(store, key))
}

/// The key of a store's clock (`_nidsclk`), which every mKTL daemon
/// publishes once a second.
pub fn clock_key(store: &str) -> String {
    format!("_{}clk", name(store))
}

/// The topic of a store's clock.
pub fn clock_topic(store: &str) -> String {
    topic(store, &clock_key(store))
}

/// A GET request for `target` with request id `id`: empty flags and an
/// empty payload (the daemon answers its current value).
pub fn get_request(id: &[u8], target: &str) -> Vec<Bytes> {
    vec![
        Bytes::from_static(VERSION),
        Bytes::copy_from_slice(id),
        Bytes::from_static(b"GET"),
        Bytes::copy_from_slice(target.as_bytes()),
        Bytes::new(),
        Bytes::new(),
    ]
}

/// The request id of the `n`th request: 8 lower-case hex digits, as mKTL's
/// own client sends.
pub fn request_id(n: u64) -> Vec<u8> {
    format!("{:08x}", n & 0xffff_ffff).into_bytes()
}

/// A reply to a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Ack { id: Vec<u8> },
    Rep { id: Vec<u8>, target: Vec<u8>, payload: Json },
}

impl Reply {
    pub fn id(&self) -> &[u8] {
        match self {
            Reply::Ack { id } | Reply::Rep { id, .. } => id,
        }
    }
}

/// Decode a reply (6 frames, version `a`, type ACK or REP).
pub fn decode_reply(frames: &[Bytes]) -> Result<Reply, WireError> {
    if frames.len() < 6 {
        return Err(WireError::Frames(frames.len()));
    }
    if frames[0].as_ref() != VERSION {
        return Err(WireError::Version(String::from_utf8_lossy(&frames[0]).into_owned()));
    }
    let id = frames[1].to_vec();
    match frames[2].as_ref() {
        b"ACK" => Ok(Reply::Ack { id }),
        b"REP" => Ok(Reply::Rep { id, target: frames[3].to_vec(), payload: json(&frames[5])? }),
        other => Err(WireError::Type(String::from_utf8_lossy(other).into_owned())),
    }
}

fn json(b: &[u8]) -> Result<Json, WireError> {
    serde_json::from_slice(b).map_err(|e| WireError::Json(e.to_string()))
}

/// An error the peer answered, in one line: `KeyError: this daemon does not
/// contain 'nosuchkey'` (the `debug` traceback is dropped).
pub fn peer_error(payload: &Json) -> Option<String> {
    let e = payload.get("error").filter(|e| !e.is_null())?;
    let kind = e.get("type").and_then(Json::as_str).unwrap_or("error");
    let text = match e.get("text") {
        Some(Json::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    // Python's KeyError text arrives quoted ("\"this daemon …\"")
    let text = text.lines().next().unwrap_or("").trim().trim_matches('"').trim();
    Some(if text.is_empty() { kind.to_string() } else { format!("{kind}: {text}") })
}

/// A decoded broadcast.
#[derive(Clone, Debug, PartialEq)]
pub struct Publish {
    /// The key, lower case as on the wire.
    pub key: String,
    pub value: Json,
    pub time: Option<f64>,
}

/// Decode a broadcast of `store` (`[topic, version, payload, (bulk)]`).
pub fn decode_publish(store: &str, frames: &[Bytes]) -> Result<Publish, WireError> {
    if frames.len() < 3 {
        return Err(WireError::Frames(frames.len()));
    }
    if frames[1].as_ref() != VERSION {
        return Err(WireError::Version(String::from_utf8_lossy(&frames[1]).into_owned()));
    }
    let topic = String::from_utf8_lossy(&frames[0]);
    let prefix = format!("{}.", name(store));
    let key = topic
        .strip_prefix(&prefix)
        .map(|k| k.trim_end_matches('.'))
        .filter(|k| !k.is_empty())
        .ok_or_else(|| WireError::Topic(topic.to_string(), name(store)))?;
    let payload = json(&frames[2])?;
    Ok(Publish { key: key.to_string(), value: payload.get("value").cloned().unwrap_or(Json::Null), time: payload.get("time").and_then(Json::as_f64) })
}

/// A JSON value as a KTL ascii value: strings as they are, null empty,
/// booleans `true`/`false`, integral numbers without a fraction (`18.0` →
/// `18`, so zero-filling makes `0018`), other numbers as JSON writes them.
pub fn ascii(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() && f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(parts: &[&[u8]]) -> Vec<Bytes> {
        parts.iter().map(|p| Bytes::copy_from_slice(p)).collect()
    }

    #[test]
    fn names_go_on_the_wire_lower_case() {
        assert_eq!(target("NIDS", "LASTFILE"), "nids.lastfile");
        assert_eq!(topic("nids", "ITERATION"), "nids.iteration.");
        assert_eq!(request_id(10), b"0000000a");
        assert_eq!(clock_topic("NIDS"), "nids._nidsclk.");
    }

    #[test]
    fn values_render_as_ktl_ascii() {
        assert_eq!(ascii(&serde_json::json!(17)), "17");
        assert_eq!(ascii(&serde_json::from_str::<Json>("18.0").unwrap()), "18");
        assert_eq!(ascii(&serde_json::json!(0.25)), "0.25");
        assert_eq!(ascii(&serde_json::json!(false)), "false");
        assert_eq!(ascii(&Json::Null), "");
        let huge: Json = serde_json::from_str("1e300").unwrap();
        assert_eq!(ascii(&huge), huge.to_string(), "beyond integer range: as JSON writes it");
    }

    #[test]
    fn broadcasts_and_replies_decode() {
        let p = decode_publish("NIDS", &frames(&[b"nids.lframeno.", b"a", br#"{"value": 18.0, "time": 1796193412.094}"#])).unwrap();
        assert_eq!((p.key.as_str(), ascii(&p.value), p.time), ("lframeno", "18".to_string(), Some(1796193412.094)));
        assert!(matches!(decode_publish("nids", &frames(&[b"x.", b"a", b"{}"])), Err(WireError::Topic(..))));
        assert!(matches!(decode_publish("nids", &frames(&[b"nids.a.", b"b", b"{}"])), Err(WireError::Version(_))));
        assert!(matches!(decode_publish("nids", &frames(&[b"nids.a.", b"a", b"not json"])), Err(WireError::Json(_))));
        let ack = decode_reply(&frames(&[b"a", b"00000001", b"ACK", b"", b"", b""])).unwrap();
        assert_eq!(ack, Reply::Ack { id: b"00000001".to_vec() });
        let err = br#"{"error": {"type": "KeyError", "text": "\"this daemon does not contain 'nosuchkey'\"", "debug": "Traceback (most recent call last):\n  File x"}}"#;
        let Reply::Rep { payload, .. } = decode_reply(&frames(&[b"a", b"1", b"REP", b"nids.nosuchkey", b"", err])).unwrap() else { panic!() };
        assert_eq!(peer_error(&payload).unwrap(), "KeyError: this daemon does not contain 'nosuchkey'");
        assert!(matches!(decode_reply(&frames(&[b"b", b"1", b"REP", b"t", b"", b"{}"])), Err(WireError::Version(_))));
    }
}
