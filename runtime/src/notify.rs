//! One error path: every problem the daemon or a job reports goes through
//! [`Notifier::report`], which logs it and e-mails the administrators over
//! SMTP (lettre) at most once per (instrument, code) per throttle period,
//! recording each mail in `dep_error_notify` so the throttle holds across
//! restarts and across daemons sharing a database.

use chrono::Duration;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::Notify as NotifyConfig;
use crate::db::Db;

pub struct Notifier {
    cfg: NotifyConfig,
    db: Db,
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    /// Check, send and record one report at a time, so two jobs failing
    /// together with the same code send one mail.
    gate: tokio::sync::Mutex<()>,
}

/// What happened to a report.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Mailed,
    Throttled,
    /// No SMTP server or recipients configured: logged only.
    NotConfigured,
    Failed(String),
}

impl Notifier {
    pub fn new(cfg: NotifyConfig, db: Db) -> Notifier {
        let transport = cfg
            .smtp_host
            .as_ref()
            .map(|h| AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(h).port(cfg.smtp_port).build());
        Notifier { cfg, db, transport, gate: tokio::sync::Mutex::new(()) }
    }

    /// Send one message (not throttled: the caller decides, as the PI
    /// notice does through `koa_pi_notify`).
    pub async fn send(&self, to: &[String], bcc: &[String], subject: &str, body: &str) -> Outcome {
        let Some(transport) = &self.transport else { return Outcome::NotConfigured };
        if to.is_empty() {
            return Outcome::NotConfigured;
        }
        let mut b = Message::builder().subject(subject);
        match self.cfg.from.parse::<Mailbox>() {
            Ok(f) => b = b.from(f),
            Err(e) => return Outcome::Failed(format!("bad sender {}: {e}", self.cfg.from)),
        }
        for (t, is_bcc) in to.iter().map(|t| (t, false)).chain(bcc.iter().map(|t| (t, true))) {
            match t.parse::<Mailbox>() {
                Ok(m) if is_bcc => b = b.bcc(m),
                Ok(m) => b = b.to(m),
                Err(e) => return Outcome::Failed(format!("bad recipient {t}: {e}")),
            }
        }
        match b.body(body.to_string()) {
            Ok(msg) => match transport.send(msg).await {
                Ok(_) => Outcome::Mailed,
                Err(e) => Outcome::Failed(e.to_string()),
            },
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    /// The administrators' addresses.
    pub fn admins(&self) -> &[String] {
        &self.cfg.to
    }

    /// Report a problem with a status code for an instrument.
    pub async fn report(&self, instrument: &str, code: &str, text: &str) -> Outcome {
        tracing::error!("{instrument} {code}: {text}");
        let Some(transport) = &self.transport else { return Outcome::NotConfigured };
        if self.cfg.to.is_empty() {
            return Outcome::NotConfigured;
        }
        let _one_at_a_time = self.gate.lock().await;
        let since = crate::db::now() - Duration::minutes(self.cfg.throttle_min as i64);
        match self.db.notified_since(instrument, code, since).await {
            Ok(true) => return Outcome::Throttled,
            Ok(false) => {}
            Err(e) => tracing::warn!("notification throttle check failed: {e}"),
        }
        let mut b = Message::builder().subject(format!("KOA DEP ERROR: [{instrument}] {code}"));
        match self.cfg.from.parse::<Mailbox>() {
            Ok(f) => b = b.from(f),
            Err(e) => return Outcome::Failed(format!("bad sender {}: {e}", self.cfg.from)),
        }
        for t in &self.cfg.to {
            match t.parse::<Mailbox>() {
                Ok(m) => b = b.to(m),
                Err(e) => return Outcome::Failed(format!("bad recipient {t}: {e}")),
            }
        }
        let msg = match b.body(format!("{code}\n{text}\n")) {
            Ok(m) => m,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        match transport.send(msg).await {
            Ok(_) => {
                if let Err(e) = self.db.record_notification(instrument, code, &self.cfg.to.join(", ")).await {
                    tracing::warn!("recording the notification failed: {e}");
                }
                Outcome::Mailed
            }
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }
}
