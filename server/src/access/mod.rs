//! Access events: phones upload the lock-signed audit records they were handed, the server
//! verifies them with the lock's certified key and attributes each to the owner of the
//! credential it names (not to the uploader). Residents read their own log; events are
//! purged once older than their door's retention.
//!
//! Storage is behind [`store::AccessStore`] (SQLite: [`sqlite`]).

#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;
pub mod store;
#[cfg(test)]
pub mod store_tests;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use porta_protocol::{AuditRecord, Decision, DenyReason};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use self::store::{AccessStore, NewAccessEvent};
use crate::auth::AuthUser;
use crate::authority::store::AuthorityStore;
use crate::authority::unb64;
use crate::clock::Clock;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::AppState;

/// Most records accepted in one upload.
pub const MAX_EVENTS_PER_BATCH: usize = 500;
/// How often the background task purges expired events.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(3600);
/// Most events returned by `GET /v1/me/access-log`.
pub const MAX_LOG_EVENTS: u32 = 1000;
/// How far ahead of the server's clock a lock's clock may be and its records still count.
pub const MAX_LOCK_CLOCK_AHEAD_S: i64 = 300;
/// Retention of events at a door the server does not know, when no door is known at all.
pub const DEFAULT_RETENTION_DAYS: i64 = 90;

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
    let named: Vec<(u32, u32)> = records.iter().map(|(record, _)| (record.lock_id, record.door_id)).collect();
    let locks = state.access.record_locks(&named).await?;
    let mut result = IngestResult { accepted: 0, duplicates: 0, expired: 0, implausible_time: 0 };
    let mut events = Vec::with_capacity(records.len());
    // Every record must verify before anything is stored.
    for ((record, bytes), lock) in records.into_iter().zip(locks) {
        let lock = lock.ok_or(ApiError::InvalidRecord)?;
        let lock_key: [u8; 32] = lock.public_key.try_into().map_err(|_| ApiError::InvalidRecord)?;
        if record.verify(&lock_key).is_err() {
            return Err(ApiError::InvalidRecord);
        }
        let counter = i64::try_from(record.counter).map_err(|_| ApiError::InvalidRecord)?;
        let at = match check_time(record.time, now, lock.retention_days) {
            // A record a lock signed after its certificate was revoked: the lock was replaced
            // or taken out, so whoever holds it now could date records at will. Records dated
            // before the revocation still arrive from phones that met the lock then.
            Ok(at) if lock.revoked_at.is_some_and(|revoked| at > revoked) => {
                result.implausible_time += 1;
                continue;
            }
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
        events.push(NewAccessEvent {
            lock_id: record.lock_id,
            counter,
            door: lock.door,
            credential_id: record.credential_id,
            decision: record.decision.code(),
            at,
            record: bytes,
        });
    }
    for stored in state.access.store_events(events, now).await? {
        if stored {
            result.accepted += 1;
        } else {
            result.duplicates += 1;
        }
    }
    Ok(ApiJson(result))
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

/// What the retention purge works on.
#[derive(Clone)]
pub struct Purge {
    pub access: Arc<dyn AccessStore>,
    pub authority: Arc<dyn AuthorityStore>,
    /// The privacy domain's part: deletion receipts, and compacting away deleted rows.
    pub privacy: Arc<dyn crate::privacy::store::PrivacyStore>,
    pub invitations: Arc<crate::invitations::Invitations>,
    pub security: Arc<dyn crate::security_log::SecurityLog>,
    /// Days security events are kept.
    pub security_retention_days: i64,
    pub clock: Arc<dyn Clock>,
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
        if let Err(e) = self.access.purge_expired(now).await {
            tracing::warn!(error = %e, "purging expired access events failed");
        }
        if let Err(e) = self.authority.prune_revocations(now).await {
            tracing::warn!(error = %e, "pruning expired revocations failed");
        }
        if let Err(e) = self.privacy.purge_receipts(now).await {
            tracing::warn!(error = %e, "purging deletion receipts failed");
        }
        // Last, so old WAL frames no longer hold the rows purged above.
        self.privacy.compact().await;
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
    let mut events = Vec::new();
    for event in state.access.user_events(&auth.user_id, now, MAX_LOG_EVENTS).await? {
        let (decision, reason) = match Decision::from_code(event.decision) {
            Ok(Decision::Opened) => (AccessDecision::Opened, None),
            Ok(Decision::Denied(r)) => (AccessDecision::Denied, Some(reason_name(r).to_owned())),
            Err(_) => (AccessDecision::Denied, None),
        };
        events.push(AccessEvent { door_id: event.door_id, door_name: event.door_name, at: event.at, decision, reason });
    }
    let retention = state
        .access
        .user_retention(&auth.user_id)
        .await?
        .into_iter()
        .map(|r| Retention { door_id: r.door_id, door_name: r.door_name, retention_days: r.retention_days })
        .collect();
    Ok(ApiJson(AccessLog { events, retention }))
}
