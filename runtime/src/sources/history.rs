//! Keyword-history backfill: broadcasts a service made while the daemon was
//! down, read from a PostgreSQL table shaped like KOA's keyword history
//! (`time`, `keyword`, `ascvalue`), one table per KTL service.
//!
//! The table name is configuration, not data: it must be a plain identifier
//! (letters, digits, `_`) and is quoted; every value is a bound parameter.

use chrono::NaiveDateTime;
use sqlx::postgres::PgPool;

use super::{Broadcast, SourceError};

/// A validated, quoted table identifier.
pub fn table_ident(name: &str) -> Result<String, SourceError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok { Ok(format!("\"{name}\"")) } else { Err(SourceError::Start(format!("history table {name:?} is not a plain identifier"))) }
}

/// Broadcasts of `keyword` in (`since`, `until`], oldest first.
pub async fn broadcasts(
    pool: &PgPool,
    table: &str,
    unique: &str,
    keyword: &str,
    since: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<Vec<Broadcast>, SourceError> {
    let sql = format!(
        "SELECT time, ascvalue FROM {} WHERE keyword = $1 AND time > $2 AND time <= $3 ORDER BY time",
        table_ident(table)?
    );
    let rows: Vec<(NaiveDateTime, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(keyword)
        .bind(since)
        .bind(until)
        .fetch_all(pool)
        .await
        .map_err(|e| SourceError::Start(format!("keyword history {table}: {e}")))?;
    Ok(rows
        .into_iter()
        .map(|(t, v)| Broadcast {
            service: unique.to_string(),
            keyword: keyword.to_string(),
            value: v.unwrap_or_default(),
            time: t.and_utc().timestamp() as f64 + t.and_utc().timestamp_subsec_micros() as f64 * 1e-6,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers() {
        assert_eq!(table_ident("kbds").unwrap(), "\"kbds\"");
        assert!(table_ident("kbds; DROP TABLE x").is_err());
        assert!(table_ident("a\"b").is_err());
        assert!(table_ident("").is_err());
    }
}
