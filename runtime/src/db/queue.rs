//! The job queue on koa_status (design §7, spec §22.3): enqueueing with the
//! duplicate rules, atomic claims with leases (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL and MariaDB, a single-statement claim on SQLite), lease renewal
//! and expiry (a dead worker's jobs come back), retries with backoff for
//! transient failures, and release of claimed jobs at shutdown.

use chrono::{Duration, NaiveDateTime};

use super::{Db, DbResult, Kind, NewJob, Pool, Status, StatusRow, now};

/// Why a trigger did not become a job.
#[derive(Clone, Debug, PartialEq)]
pub enum Enqueued {
    /// A new QUEUED row.
    Queued(i64),
    /// The same path is already queued or being processed (back-to-back broadcast).
    InFlight(i64),
    /// The same content is already archived.
    SameContent(i64),
}

impl Db {
    /// Queue a level-0 file unless the same path is in flight or the same
    /// content (MD5, when known) is archived. The database's unique
    /// in-flight key decides between two concurrent enqueues of one path.
    pub async fn enqueue(&self, instrument: &str, service: &str, ofname: &str, md5: Option<&str>, transfer: bool) -> DbResult<Enqueued> {
        if let Some(row) = self.in_flight(ofname).await? {
            return Ok(Enqueued::InFlight(row.id));
        }
        if let Some(m) = md5 {
            if let Some(r) = self.by_md5(0, m).await?.into_iter().next() {
                return Ok(Enqueued::SameContent(r.id));
            }
        }
        let inserted = self
            .insert_job(&NewJob {
                level: 0,
                instrument,
                service: Some(service),
                ofname,
                status: Status::Queued,
                reprocess: false,
                transfer,
                stage_file: None,
                koaid: None,
            })
            .await;
        match inserted {
            Ok(id) => Ok(Enqueued::Queued(id)),
            Err(e) if e.is_unique_violation() => match self.in_flight(ofname).await? {
                Some(row) => Ok(Enqueued::InFlight(row.id)),
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Atomically claim the oldest due QUEUED job of a level (optionally of
    /// one instrument) for `owner`, leased until now + `lease`.
    pub async fn claim(&self, owner: &str, level: i64, instrument: Option<&str>, lease: std::time::Duration) -> DbResult<Option<StatusRow>> {
        let t = now();
        let expiry = t + Duration::from_std(lease).unwrap_or(Duration::seconds(600));
        let id: Option<i64> = match self.kind() {
            Kind::Sqlite | Kind::Postgres => scalar!(
                self,
                i64,
                fetch_optional,
                claim_sql(self.kind()),
                owner,
                expiry,
                t,
                level,
                t,
                instrument,
                instrument
            )?,
            Kind::MySql => {
                let Pool::MySql(p) = &self.pool else { unreachable!() };
                let mut tx = p.begin().await?;
                let id: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM koa_status WHERE status = 'QUEUED' AND level = ? \
                     AND (next_attempt_time IS NULL OR next_attempt_time <= ?) AND (? IS NULL OR instrument = ?) \
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
                )
                .bind(level)
                .bind(t)
                .bind(instrument)
                .bind(instrument)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(id) = id {
                    sqlx::query(
                        "UPDATE koa_status SET status = 'PROCESSING', lease_owner = ?, lease_expiry = ?, \
                         attempts = attempts + 1, process_start_time = ? WHERE id = ?",
                    )
                    .bind(owner)
                    .bind(expiry)
                    .bind(t)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                id
            }
        };
        match id {
            Some(id) => self.get(id).await,
            None => Ok(None),
        }
    }

    /// Extend the lease of a job still held by `owner`.
    pub async fn renew(&self, id: i64, owner: &str, lease: std::time::Duration) -> DbResult<bool> {
        let expiry = now() + Duration::from_std(lease).unwrap_or(Duration::seconds(600));
        let n = execute!(self, "UPDATE koa_status SET lease_expiry = ? WHERE id = ? AND lease_owner = ?", expiry, id, owner)?;
        Ok(n == 1)
    }

    /// Put a claimed job back in the queue (shutdown, or admission gave up),
    /// without counting the attempt.
    pub async fn release(&self, id: i64, owner: &str) -> DbResult<bool> {
        let n = execute!(
            self,
            "UPDATE koa_status SET status = 'QUEUED', lease_owner = NULL, lease_expiry = NULL, \
             attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END WHERE id = ? AND lease_owner = ? AND status = 'PROCESSING'",
            id,
            owner
        )?;
        Ok(n == 1)
    }

    /// Jobs whose lease ran out (their worker died, in any step: PROCESSING,
    /// TRANSFERRING, or TRANSFERRED before it finished) go back to QUEUED;
    /// the transfer start is cleared, so the job resumes at its last durable
    /// step and re-runs the transfer. Returns how many.
    pub async fn requeue_expired(&self) -> DbResult<u64> {
        Ok(execute!(
            self,
            "UPDATE koa_status SET status = 'QUEUED', lease_owner = NULL, lease_expiry = NULL, xfr_start_time = NULL \
             WHERE status IN ('PROCESSING', 'TRANSFERRING', 'TRANSFERRED') AND lease_owner IS NOT NULL \
             AND lease_expiry IS NOT NULL AND lease_expiry < ?",
            now()
        )?)
    }

    /// The owners of leases on running jobs.
    pub async fn lease_owners(&self) -> DbResult<Vec<String>> {
        Ok(scalar!(
            self,
            String,
            fetch_all,
            "SELECT DISTINCT lease_owner FROM koa_status WHERE status IN ('PROCESSING', 'TRANSFERRING', 'TRANSFERRED') AND lease_owner IS NOT NULL"
        )?)
    }

    /// Every job `owner` holds back to the queue at once (its process is
    /// gone); returns how many.
    pub async fn requeue_owner(&self, owner: &str) -> DbResult<u64> {
        Ok(execute!(
            self,
            "UPDATE koa_status SET status = 'QUEUED', lease_owner = NULL, lease_expiry = NULL, xfr_start_time = NULL \
             WHERE status IN ('PROCESSING', 'TRANSFERRING', 'TRANSFERRED') AND lease_owner = ?",
            owner
        )?)
    }

    /// Record the outcome of a job that finished while the database was
    /// away (kept in the journal meanwhile) — unless another worker has
    /// claimed the row since: only while its lease is `owner`'s or nobody's
    /// (a row requeued by lease expiry is finished here, not run again).
    /// Without an outcome, only checks. Returns whether the row was ours.
    pub async fn settle_late(&self, id: i64, owner: &str, o: Option<&super::Outcome>) -> DbResult<bool> {
        let Some(row) = self.get(id).await? else { return Ok(false) };
        if row.lease_owner.as_deref().is_some_and(|l| l != owner) {
            return Ok(false);
        }
        if let Some(o) = o {
            self.finish(id, o).await?;
        }
        Ok(true)
    }

    /// A transient failure: back to QUEUED after `delay` unless `attempts`
    /// reached `max_attempts` (then the job stays ERROR). A wait that is not
    /// the job's fault (a full disk) does not use up an attempt (`counted`).
    pub async fn retry_later(&self, id: i64, delay: std::time::Duration, max_attempts: i64, counted: bool) -> DbResult<bool> {
        let at = now() + Duration::from_std(delay).unwrap_or(Duration::seconds(60));
        let n = execute!(
            self,
            "UPDATE koa_status SET status = 'QUEUED', next_attempt_time = ?, lease_owner = NULL, lease_expiry = NULL, \
             attempts = CASE WHEN ? = 1 OR attempts = 0 THEN attempts ELSE attempts - 1 END WHERE id = ? AND attempts < ?",
            at,
            counted as i64,
            id,
            if counted { max_attempts } else { i64::MAX }
        )?;
        Ok(n == 1)
    }

    /// End a claimed job ERROR with a code before it runs (refused by
    /// admission, or started too often without finishing).
    pub async fn fail(&self, id: i64, code: &str, message: &str) -> DbResult<()> {
        let o = super::Outcome {
            status: Some(Status::Error),
            status_code: Some(code.to_string()),
            status_message: Some(message.to_string()),
            ..Default::default()
        };
        self.finish(id, &o).await
    }

    /// Jobs of a status (oldest first), for reports and tests.
    pub async fn by_status(&self, status: Status) -> DbResult<Vec<StatusRow>> {
        Ok(fetch!(self, StatusRow, fetch_all, const_format_row!("WHERE status = ? ORDER BY id"), status.as_str())?)
    }

    /// Number of jobs per status.
    pub async fn count_status(&self, status: Status) -> DbResult<i64> {
        Ok(scalar!(self, i64, fetch_one, "SELECT COUNT(*) FROM koa_status WHERE status = ?", status.as_str())?)
    }

    /// Time of the newest job created by a service (the last broadcast seen).
    pub async fn last_seen(&self, service: &str) -> DbResult<Option<NaiveDateTime>> {
        Ok(scalar!(self, Option<NaiveDateTime>, fetch_one, "SELECT MAX(creation_time) FROM koa_status WHERE service = ?", service)?)
    }

    /// Whether any row (any status, any level) has this original path.
    pub async fn known_path(&self, ofname: &str) -> DbResult<bool> {
        Ok(self.latest_any_by_ofname(ofname).await?.is_some())
    }
}

fn claim_sql(kind: Kind) -> &'static str {
    match kind {
        Kind::Postgres => {
            "UPDATE koa_status SET status = 'PROCESSING', lease_owner = ?, lease_expiry = ?, attempts = attempts + 1, \
             process_start_time = ? WHERE id = (SELECT id FROM koa_status WHERE status = 'QUEUED' AND level = ? \
             AND (next_attempt_time IS NULL OR next_attempt_time <= ?) AND (?::text IS NULL OR instrument = ?) \
             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id"
        }
        _ => {
            "UPDATE koa_status SET status = 'PROCESSING', lease_owner = ?, lease_expiry = ?, attempts = attempts + 1, \
             process_start_time = ? WHERE id = (SELECT id FROM koa_status WHERE status = 'QUEUED' AND level = ? \
             AND (next_attempt_time IS NULL OR next_attempt_time <= ?) AND (? IS NULL OR instrument = ?) \
             ORDER BY id LIMIT 1) RETURNING id"
        }
    }
}
