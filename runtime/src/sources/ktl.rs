//! KTL through its command-line tool: `<command> -s SERVICE -terse KEYWORD`
//! prints the current value. Polled at an interval; a changed value is a
//! broadcast (the first value seen is one too — the daemon decides from the
//! database whether it was already handled).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Broadcast, Events, Reader, SourceError, SourceState, now_secs, tell};

#[derive(Clone, Debug)]
pub struct Ktl {
    pub command: String,
    pub service: String,
    pub timeout: Duration,
}

impl Ktl {
    /// Run the show command for one keyword.
    pub async fn show(&self, keyword: &str) -> Result<String, SourceError> {
        let mut cmd = tokio::process::Command::new(&self.command);
        cmd.args(["-s", &self.service, "-terse", keyword]).kill_on_drop(true);
        let out = tokio::time::timeout(self.timeout, cmd.output())
            .await
            .map_err(|_| SourceError::Read(format!("{} -s {} {keyword}: no answer in {:?}", self.command, self.service, self.timeout)))?
            .map_err(|e| SourceError::Start(format!("{}: {e}", self.command)))?;
        if !out.status.success() {
            return Err(SourceError::Read(format!(
                "{} -s {} {keyword}: {} {}",
                self.command,
                self.service,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Poll `keywords` every `interval`, sending changes as broadcasts for
    /// `unique` (the service's unique name). Read failures and recoveries are sent to `events`.
    pub async fn poll(
        self,
        unique: String,
        keywords: Vec<String>,
        interval: Duration,
        tx: mpsc::Sender<Broadcast>,
        events: Events,
    ) {
        let mut last: Vec<Option<String>> = vec![None; keywords.len()];
        let mut healthy = false;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            for (i, k) in keywords.iter().enumerate() {
                match self.show(k).await {
                    Ok(v) => {
                        if !healthy {
                            healthy = true;
                            tell(&events, &unique, SourceState::Up(format!("{} -s {}", self.command, self.service))).await;
                        }
                        if last[i].as_deref() != Some(v.as_str()) {
                            last[i] = Some(v.clone());
                            let b = Broadcast { service: unique.clone(), keyword: k.clone(), value: v, time: now_secs() };
                            if tx.send(b).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        healthy = false;
                        tell(&events, &unique, SourceState::Failed(e)).await;
                    }
                }
            }
        }
    }
}

impl Reader for Ktl {
    fn read<'a>(&'a self, keyword: &'a str) -> Pin<Box<dyn Future<Output = Result<String, SourceError>> + Send + 'a>> {
        Box::pin(self.show(keyword))
    }
}
