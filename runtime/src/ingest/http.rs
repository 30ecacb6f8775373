//! `/ingest_api` over the daemon's HTTP server: only configured callers
//! (`Authorization: Bearer <token>` from `daemon.ingest_tokens`, optionally
//! from `daemon.ingest_allow` addresses), GET only (HEAD is refused: it
//! would run the handler, reference defect 33), a bounded query, JSON
//! answers with honest codes, the PI notice after the reply.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::http::StatusState;
use crate::notify::Notifier;

/// The longest query accepted (bytes).
pub const MAX_QUERY: usize = 8192;

fn answer(code: u16, body: Value) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn refusal(code: u16, why: &str) -> Response {
    answer(code, json!({"apiStatus": "ERROR", "ingestErrors": [why]}))
}

/// Whether `ip` is one of `allow` (addresses or `addr/bits` prefixes); an empty list allows any.
pub fn allowed(ip: IpAddr, allow: &[String]) -> bool {
    allow.is_empty()
        || allow.iter().any(|a| {
            let (addr, bits) = a.split_once('/').map(|(a, b)| (a, b.parse::<u32>().ok())).unwrap_or((a.as_str(), None));
            match (addr.trim().parse::<IpAddr>(), ip) {
                (Ok(IpAddr::V4(net)), IpAddr::V4(ip)) => {
                    let bits = bits.unwrap_or(32).min(32);
                    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
                    u32::from(net) & mask == u32::from(ip) & mask
                }
                (Ok(IpAddr::V6(net)), IpAddr::V6(ip)) => {
                    let bits = bits.unwrap_or(128).min(128);
                    let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
                    u128::from(net) & mask == u128::from(ip) & mask
                }
                _ => false,
            }
        })
}

/// The configured caller whose token the request carries.
fn caller(headers: &HeaderMap, tokens: &std::collections::BTreeMap<String, String>) -> Option<String> {
    let given = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")?.trim();
    tokens.iter().find(|(_, t)| !t.is_empty() && crate::http::constant_time_eq(t.as_bytes(), given.as_bytes())).map(|(n, _)| n.clone())
}

pub async fn ingest_api(
    State(st): State<Arc<StatusState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let cfg = &st.archiver.cfg;
    if cfg.daemon.ingest_tokens.is_empty() {
        return refusal(404, "the ingest callback is not configured (daemon.ingest_tokens)");
    }
    if method != Method::GET {
        return refusal(405, "GET only");
    }
    if !allowed(peer.ip(), &cfg.daemon.ingest_allow) {
        tracing::warn!("ingest callback from {peer} refused: not in daemon.ingest_allow");
        return refusal(403, "this address may not call the ingest callback");
    }
    let Some(caller) = caller(&headers, &cfg.daemon.ingest_tokens) else {
        tracing::warn!("ingest callback from {peer} refused: no valid bearer token");
        let mut r = refusal(401, "a valid bearer token is required");
        r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        return r;
    };
    let query = query.unwrap_or_default();
    if query.len() > MAX_QUERY {
        return refusal(414, &format!("the query is longer than {MAX_QUERY} bytes"));
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let notifier = Notifier::new(cfg.notify.clone(), st.archiver.db.clone());
    let ans = super::callback::handle(&st.archiver, &notifier, &format!("{caller} ({peer})"), &pairs).await;
    if let Some(id) = ans.pi_notice {
        let a = st.archiver.clone();
        tokio::spawn(async move {
            let r = super::pi::notify(&a, &notifier, id).await;
            tracing::info!("PI notice of row {id}: {r:?}");
        });
    }
    answer(ans.http, ans.body)
}
