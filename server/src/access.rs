//! Access events: phones upload the lock-signed audit records they were handed, the server
//! verifies them with the lock's certified key and attributes each to the owner of the
//! credential it names (not to the uploader). Residents read their own log; events are
//! purged once older than their door's retention.

use std::time::Duration;

use axum::extract::State;
use porta_protocol::{AuditRecord, Decision, DenyReason};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::authority::unb64;
use crate::clock::Clock;
use crate::db::Db;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::AppState;

/// Most records accepted in one upload.
pub const MAX_EVENTS_PER_BATCH: usize = 500;
/// How often the background task purges expired events.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(3600);
/// Most events returned by `GET /v1/me/access-log`.
pub const MAX_LOG_EVENTS: i64 = 1000;
/// How far ahead of the server's clock a lock's clock may be and its records still count.
pub const MAX_LOCK_CLOCK_AHEAD_S: i64 = 300;
/// Retention of events at a door the server does not know (as in [`purge_expired`]).
const DEFAULT_RETENTION_DAYS: i64 = 90;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessEventUpload {
    /// A lock-signed audit record (protocol encoding, 102 bytes), base64.
    #[schema(format = Byte, pattern = r"^[A-Za-z0-9+/]{136}$")]
    pub audit_record: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessEventBatch {
    /// At most 500 records.
    #[schema(max_items = 500)]
    #[serde(deserialize_with = "crate::error::nested_objects")]
    pub events: Vec<AccessEventUpload>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResult {
    /// Records stored now.
    pub accepted: usize,
    /// Records already stored before (same lock and audit counter), or repeated in the batch.
    pub duplicates: usize,
    /// Records older than their door's log retention: not stored, as they would be purged at
    /// once.
    pub expired: usize,
    /// Records dated more than 5 minutes after their upload: the lock's clock is wrong. Not
    /// stored.
    pub implausible_time: usize,
}

/// Upload audit records collected from locks.
///
/// Any signed-in user may upload any record: each is attributed to the owner of the
/// credential it names. Either every record verifies or nothing is stored. Records that
/// verify but are past retention or carry an implausible time are counted and dropped, so
/// the phone can clear them from its outbox.
#[utoipa::path(
    post,
    path = "/v1/me/access-events",
    tag = "access",
    security(("bearer" = [])),
    request_body = AccessEventBatch,
    responses(
        (status = 200, description = "Stored", body = IngestResult),
        (status = 400, description = "`invalid_record` (nothing stored), `too_many_events` or `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
    )
)]
pub async fn ingest(
    State(state): State<AppState>,
    _auth: AuthUser,
    ApiJson(batch): ApiJson<AccessEventBatch>,
) -> Result<ApiJson<IngestResult>, ApiError> {
    if batch.events.len() > MAX_EVENTS_PER_BATCH {
        return Err(ApiError::TooManyEvents);
    }
    let mut records = Vec::with_capacity(batch.events.len());
    for event in &batch.events {
        let bytes = unb64(&event.audit_record).ok_or(ApiError::InvalidRecord)?;
        let record = AuditRecord::from_bytes(&bytes).map_err(|_| ApiError::InvalidRecord)?;
        records.push((record, bytes));
    }
    let now = state.clock.now();
    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            let mut result = IngestResult { accepted: 0, duplicates: 0, expired: 0, implausible_time: 0 };
            for (record, bytes) in &records {
                let lock: Option<(Vec<u8>, Option<u32>)> = tx
                    .query_row(
                        // The door the record names (SPEC §2.5), if the lock controls it; else
                        // (no authenticated phone) the lock's first door.
                        "SELECT l.public_key, COALESCE(
                             (SELECT door_number FROM lock_doors d WHERE d.lock_id = l.lock_id AND d.door_number = ?2),
                             (SELECT MIN(door_number) FROM lock_doors d WHERE d.lock_id = l.lock_id))
                         FROM locks l WHERE l.lock_id = ?1",
                        params![record.lock_id, record.door_id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let Some((lock_key, door)) = lock else {
                    return Err(ApiError::InvalidRecord);
                };
                let lock_key: [u8; 32] = lock_key.try_into().map_err(|_| ApiError::InvalidRecord)?;
                if record.verify(&lock_key).is_err() {
                    return Err(ApiError::InvalidRecord);
                }
                let counter = i64::try_from(record.counter).map_err(|_| ApiError::InvalidRecord)?;
                let at = match check_time(record.time, now, retention_days(&tx, door)?) {
                    Ok(at) => at,
                    Err(TimeVerdict::Expired) => {
                        result.expired += 1;
                        continue;
                    }
                    Err(TimeVerdict::Implausible) => {
                        result.implausible_time += 1;
                        continue;
                    }
                };
                let owner: Option<String> = tx
                    .query_row("SELECT user_id FROM credentials WHERE id = ?1", [record.credential_id.to_vec()], |r| {
                        r.get(0)
                    })
                    .optional()?;
                // A credential id that maps to no one (e.g. of a deleted account) is a stable
                // identifier with no use here: the event is kept without it, like the
                // anonymised events of deleted accounts.
                let (credential_id, stored_record): (Vec<u8>, &[u8]) = if owner.is_some() {
                    (record.credential_id.to_vec(), bytes.as_slice())
                } else if record.credential_id == [0u8; 16] {
                    (vec![0u8; 16], bytes.as_slice())
                } else {
                    (vec![0u8; 16], &[])
                };
                let inserted = tx.execute(
                    "INSERT OR IGNORE INTO access_events
                         (lock_id, counter, door_number, credential_id, user_id, decision, at,
                          received_at, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        record.lock_id,
                        counter,
                        door,
                        credential_id,
                        owner,
                        record.decision.code(),
                        at,
                        now,
                        stored_record
                    ],
                )?;
                if inserted == 1 {
                    result.accepted += 1;
                } else {
                    result.duplicates += 1;
                }
            }
            purge_expired(&tx, now)?;
            tx.commit()?;
            Ok(result)
        })
        .await
        .map(ApiJson)
}

enum TimeVerdict {
    /// Older than the door's retention.
    Expired,
    /// Later than the upload, beyond the allowed skew.
    Implausible,
}

/// Bounds the lock time of an uploaded record and returns it as stored.
///
/// A record's time is the lock's *effective* time at the decision: the later of its own clock
/// and the newest site-signed time update a phone carried to it. The lock signs it, but it is
/// only as good as that clock, and the server trusts the stored time for the log's order and
/// for retention: a record dated 2100 would head the log and never be purged. So:
/// - later than the upload plus [`MAX_LOCK_CLOCK_AHEAD_S`] is refused: an event cannot
///   happen after it was uploaded, and a lock's clock only drifts a little ahead (time
///   updates never move it back, so a lock that ran far ahead stays wrong until fixed);
/// - older than the door's retention is dropped as expired: it would be purged at once.
///
/// There is deliberately no bound at the named credential's `not_before`: a lock whose clock
/// is behind signs genuine records before it, a `not_yet_valid` denial is exactly that, and
/// a failed handshake is recorded before the carried time update is applied.
fn check_time(lock_time: u64, now: i64, retention_days: i64) -> Result<i64, TimeVerdict> {
    let at = i64::try_from(lock_time).map_err(|_| TimeVerdict::Implausible)?;
    if at > now.saturating_add(MAX_LOCK_CLOCK_AHEAD_S) {
        return Err(TimeVerdict::Implausible);
    }
    if at < now.saturating_sub(retention_days.saturating_mul(86400)) {
        return Err(TimeVerdict::Expired);
    }
    Ok(at)
}

/// Log retention of `door` in days; for an unknown door the longest of the site, as
/// [`purge_expired`] applies.
fn retention_days(conn: &Connection, door: Option<u32>) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COALESCE((SELECT log_retention_days FROM doors WHERE number = ?1),
                         (SELECT MAX(log_retention_days) FROM doors), ?2)",
        params![door, DEFAULT_RETENTION_DAYS],
        |r| r.get(0),
    )
}

/// Deletes access events older than their door's `log_retention_days` (and any stored before
/// upload times were bounded whose time lies beyond its arrival: they would never expire), and
/// issued-credential records too old for any event that could still name them. Returns the
/// events deleted.
pub fn purge_expired(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    let events = conn.execute(
        "DELETE FROM access_events WHERE at < ?1 - 86400 * COALESCE(
             (SELECT d.log_retention_days FROM doors d WHERE d.number = access_events.door_number),
             (SELECT MAX(log_retention_days) FROM doors), ?2)
             OR at > received_at + ?3",
        params![now, DEFAULT_RETENTION_DAYS, MAX_LOCK_CLOCK_AHEAD_S],
    )?;
    conn.execute(
        "DELETE FROM credentials WHERE not_after < ?1 - 86400 *
             COALESCE((SELECT MAX(log_retention_days) FROM doors), 90)",
        [now],
    )?;
    if events > 0 {
        tracing::info!(events, "purged access events past retention");
    }
    Ok(events)
}

/// What the retention purge works on.
#[derive(Clone)]
pub struct Purge {
    pub db: Db,
    pub invitations: std::sync::Arc<crate::invitations::Invitations>,
    pub security: std::sync::Arc<dyn crate::security_log::SecurityLog>,
    /// Days security events are kept.
    pub security_retention_days: i64,
    pub clock: std::sync::Arc<dyn Clock>,
}

impl Purge {
    /// One run of the purge, as the loop does it every [`PURGE_INTERVAL`]: ended invitations
    /// and guests, access events past their door's retention, old revocations and receipts,
    /// and security events past theirs. Failures are logged; the next run tries again.
    pub async fn run_once(&self) {
        let now = self.clock.now();
        // Ended invitations and guests first, so their anonymised log rows are purged on time.
        match self.invitations.store().purge(now).await {
            Ok(purged) if purged.invitations + purged.guests > 0 => {
                tracing::info!(invitations = purged.invitations, guests = purged.guests, "purged ended invitations");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging ended invitations failed"),
        }
        match self.security.purge(now, self.security_retention_days).await {
            Ok(0) => {}
            Ok(events) => tracing::info!(events, "purged security events past retention"),
            Err(e) => tracing::warn!(error = %e, "purging security events failed"),
        }
        if let Err(e) = self
            .db
            .call(move |conn| {
                purge_expired(conn, now)?;
                crate::authority::sqlite::prune_revocations(conn, now)?;
                crate::privacy::purge_receipts(conn, now)?;
                // Old WAL frames may still hold rows deleted since the last run.
                crate::privacy::checkpoint(conn);
                Ok(())
            })
            .await
        {
            tracing::warn!(error = %e, "purging expired access events failed");
        }
    }
}

/// Runs [`Purge::run_once`] now and then every [`PURGE_INTERVAL`], forever.
pub async fn purge_loop(purge: Purge) {
    let mut interval = tokio::time::interval(PURGE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        purge.run_once().await;
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccessDecision {
    Opened,
    Denied,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessEvent {
    pub door_id: Option<u32>,
    pub door_name: Option<String>,
    /// Lock time of the attempt, unix seconds.
    pub at: i64,
    pub decision: AccessDecision,
    /// Only when denied: `expired`, `not_yet_valid`, `outside_schedule`, `revoked`,
    /// `wrong_door`, `bad_signature`, `malformed`, `timeout` or `decrypt_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Retention {
    pub door_id: u32,
    pub door_name: String,
    pub retention_days: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessLog {
    /// Newest first (at most 1000).
    pub events: Vec<AccessEvent>,
    /// How long each of the caller's doors keeps events.
    pub retention: Vec<Retention>,
}

pub(crate) fn reason_name(reason: DenyReason) -> &'static str {
    match reason {
        DenyReason::Expired => "expired",
        DenyReason::NotYetValid => "not_yet_valid",
        DenyReason::OutsideSchedule => "outside_schedule",
        DenyReason::Revoked => "revoked",
        DenyReason::WrongDoor => "wrong_door",
        DenyReason::BadSignature => "bad_signature",
        DenyReason::Malformed => "malformed",
        DenyReason::Timeout => "timeout",
        DenyReason::DecryptFailed => "decrypt_failed",
    }
}

/// The caller's own access events, newest first, and each door's retention.
#[utoipa::path(
    get,
    path = "/v1/me/access-log",
    tag = "access",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's access log", body = AccessLog),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
    )
)]
pub async fn access_log(State(state): State<AppState>, auth: AuthUser) -> Result<ApiJson<AccessLog>, ApiError> {
    let now = state.clock.now();
    state
        .db
        .call(move |conn| {
            purge_expired(conn, now)?;
            let events = {
                let mut stmt = conn.prepare(
                    "SELECT e.door_number, d.name, e.at, e.decision FROM access_events e
                     LEFT JOIN doors d ON d.number = e.door_number
                     WHERE e.user_id = ?1 ORDER BY e.at DESC, e.id DESC LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![auth.user_id, MAX_LOG_EVENTS], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, u8>(3)?))
                })?;
                let mut events = Vec::new();
                for row in rows {
                    let (door_id, door_name, at, code) = row?;
                    let (decision, reason) = match Decision::from_code(code) {
                        Ok(Decision::Opened) => (AccessDecision::Opened, None),
                        Ok(Decision::Denied(r)) => (AccessDecision::Denied, Some(reason_name(r).to_owned())),
                        Err(_) => (AccessDecision::Denied, None),
                    };
                    events.push(AccessEvent { door_id, door_name, at, decision, reason });
                }
                events
            };
            let retention = {
                let mut stmt = conn.prepare(
                    "SELECT number, name, log_retention_days FROM doors WHERE number IN (
                         SELECT door_number FROM door_grants WHERE user_id = ?1
                         UNION SELECT door_number FROM access_events WHERE user_id = ?1)
                     ORDER BY number",
                )?;
                let rows = stmt.query_map([&auth.user_id], |r| {
                    Ok(Retention { door_id: r.get(0)?, door_name: r.get(1)?, retention_days: r.get(2)? })
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            Ok(AccessLog { events, retention })
        })
        .await
        .map(ApiJson)
}
