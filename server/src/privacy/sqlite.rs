//! The SQLite backend of [`PrivacyStore`] (tables `consent_events`, `deletion_receipts`, and
//! every table holding a person's data for reading and erasing it), and [`delete_account`],
//! the erasure other stores run inside their own transactions (a guest's end, a tenant's).

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::store::{
    AccessEventRecord, ConsentChange, ContactRecord, CredentialRecord, Deletion, DeviceKeyRecord, GrantRecord,
    PendingCode, PendingContactChange, PersonalData, PictureFile, PictureMeta, PrivacyStore, ProfileRecord,
    SessionRecord, UnitRecord, Who,
};
use super::DeletionReceipt;
use crate::access::store::DoorRetention;
use crate::auth::sqlite::{find_user, forget_identifier, verify_code};
use crate::auth::store::CodeLimits;
use crate::auth::{code_key, identifier_key, CodePurpose};
use crate::db::Db;
use crate::devices::sqlite::revoke_device;
use crate::error::ApiError;
use crate::identity::Identifier;
use crate::security_log::{EventKind, NewEvent};

pub struct SqlitePrivacyStore {
    db: Db,
}

impl SqlitePrivacyStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    let out = stmt.query_map(params, f)?.collect();
    out
}

fn contact(conn: &Connection, user_id: &str) -> rusqlite::Result<Option<ContactRecord>> {
    conn.query_row("SELECT email, phone FROM users WHERE id = ?1", [user_id], |r| {
        Ok(ContactRecord { email: r.get(0)?, phone: r.get(1)? })
    })
    .optional()
}

fn consent_history(conn: &Connection, user_id: &str) -> rusqlite::Result<Vec<ConsentChange>> {
    rows(conn, "SELECT purpose, granted, at FROM consent_events WHERE user_id = ?1 ORDER BY at, id", [user_id], |r| {
        Ok(ConsentChange { purpose: r.get(0)?, granted: r.get(1)?, at: r.get(2)? })
    })
}

fn find_receipt(conn: &Connection, hash: &str) -> rusqlite::Result<Option<DeletionReceipt>> {
    conn.query_row("SELECT deleted_at, backups_purged_by FROM deletion_receipts WHERE request_hash = ?1", [hash], |r| {
        Ok(DeletionReceipt { deleted_at: r.get(0)?, backups_purged_by: r.get(1)? })
    })
    .optional()
}

/// Everything stored about `user_id`, read on `conn` (the caller's transaction, for one
/// consistent view).
fn personal_data(conn: &Connection, user_id: &str) -> rusqlite::Result<Option<PersonalData>> {
    let user = conn
        .query_row(
            "SELECT name, email, phone, unit_id, created_at, updated_at FROM users WHERE id = ?1",
            [user_id],
            |r| {
                Ok((
                    ProfileRecord { name: r.get(0)?, created_at: r.get(4)?, updated_at: r.get(5)? },
                    ContactRecord { email: r.get(1)?, phone: r.get(2)? },
                    r.get::<_, Option<String>>(3)?,
                ))
            },
        )
        .optional()?;
    let Some((profile, contact, unit_id)) = user else {
        return Ok(None);
    };
    let pending_contact_change = conn
        .query_row("SELECT field, value, expires_at FROM contact_changes WHERE user_id = ?1", [user_id], |r| {
            Ok(PendingContactChange { field: r.get(0)?, value: r.get(1)?, expires_at: r.get(2)? })
        })
        .optional()?;
    let unit = match &unit_id {
        None => None,
        Some(id) => conn
            .query_row(
                "SELECT n.id, n.name, n.kind, s.name, s.address FROM units n
                 JOIN sites s ON s.id = n.site_id WHERE n.id = ?1",
                [id],
                |r| {
                    Ok(UnitRecord {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        kind: r.get(2)?,
                        site_name: r.get(3)?,
                        site_address: r.get(4)?,
                    })
                },
            )
            .optional()?,
    };
    let picture = conn
        .query_row("SELECT content_type, length(bytes), updated_at FROM pictures WHERE user_id = ?1", [user_id], |r| {
            Ok(PictureMeta { content_type: r.get(0)?, size_bytes: r.get(1)?, updated_at: r.get(2)? })
        })
        .optional()?;
    let sessions = rows(
        conn,
        "SELECT id, device_name, created_at, last_seen_at, ip, revoked_at FROM sessions
         WHERE user_id = ?1 ORDER BY created_at, id",
        [user_id],
        |r| {
            Ok(SessionRecord {
                session_id: r.get(0)?,
                device_name: r.get(1)?,
                created_at: r.get(2)?,
                last_seen_at: r.get(3)?,
                ip: r.get(4)?,
                revoked_at: r.get(5)?,
            })
        },
    )?;
    let device_keys = rows(
        conn,
        "SELECT session_id, public_key, created_at, revoked_at FROM device_keys
         WHERE user_id = ?1 ORDER BY created_at, session_id",
        [user_id],
        |r| {
            Ok(DeviceKeyRecord {
                session_id: r.get(0)?,
                public_key: r.get(1)?,
                created_at: r.get(2)?,
                revoked_at: r.get(3)?,
            })
        },
    )?;
    let grants = rows(
        conn,
        "SELECT g.id, g.door_number, d.name, g.not_before, g.not_after, g.schedule_json,
                g.created_at
         FROM door_grants g LEFT JOIN doors d ON d.number = g.door_number
         WHERE g.user_id = ?1 ORDER BY g.door_number, g.created_at, g.id",
        [user_id],
        |r| {
            Ok(GrantRecord {
                grant_id: r.get(0)?,
                door_id: r.get(1)?,
                door_name: r.get(2)?,
                not_before: r.get(3)?,
                not_after: r.get(4)?,
                schedule_json: r.get(5)?,
                created_at: r.get(6)?,
            })
        },
    )?;
    let credentials = rows(
        conn,
        "SELECT c.id, c.session_id, c.doors, c.not_before, c.not_after, c.issued_at,
                EXISTS (SELECT 1 FROM revoked_credentials r WHERE r.credential_id = c.id)
                OR EXISTS (SELECT 1 FROM device_keys k WHERE k.public_key = c.device_key
                           AND k.revoked_at IS NOT NULL)
         FROM credentials c WHERE c.user_id = ?1 ORDER BY c.issued_at, c.id",
        [user_id],
        |r| {
            Ok(CredentialRecord {
                credential_id: r.get(0)?,
                session_id: r.get(1)?,
                doors_json: r.get(2)?,
                not_before: r.get(3)?,
                not_after: r.get(4)?,
                issued_at: r.get(5)?,
                revoked: r.get(6)?,
            })
        },
    )?;
    let (invitations_sent, guest_access) = crate::invitations::sqlite::data_of(conn, user_id)?;
    let access_retention = rows(
        conn,
        "SELECT number, name, log_retention_days FROM doors WHERE number IN (
             SELECT door_number FROM door_grants WHERE user_id = ?1
             UNION SELECT door_number FROM access_events WHERE user_id = ?1)
         ORDER BY number",
        [user_id],
        |r| Ok(DoorRetention { door_id: r.get(0)?, door_name: r.get(1)?, retention_days: r.get(2)? }),
    )?;
    let access_events = rows(
        conn,
        "SELECT e.door_number, d.name, e.lock_id, e.at, e.decision, e.credential_id,
                e.received_at, e.record
         FROM access_events e LEFT JOIN doors d ON d.number = e.door_number
         WHERE e.user_id = ?1 ORDER BY e.at DESC, e.id DESC",
        [user_id],
        |r| {
            Ok(AccessEventRecord {
                door_id: r.get(0)?,
                door_name: r.get(1)?,
                lock_id: r.get(2)?,
                at: r.get(3)?,
                decision: r.get(4)?,
                credential_id: r.get(5)?,
                received_at: r.get(6)?,
                record: r.get(7)?,
            })
        },
    )?;
    let consent_history = consent_history(conn, user_id)?;
    let mut pending_codes = Vec::new();
    let mut code_requests = Vec::new();
    for raw in [&contact.email, &contact.phone].into_iter().flatten() {
        let Some(identifier) = Identifier::parse(raw) else {
            continue;
        };
        for purpose in [CodePurpose::SignIn, CodePurpose::DeleteAccount] {
            pending_codes.extend(rows(
                conn,
                "SELECT purpose, expires_at, attempts FROM one_time_codes WHERE identifier_hash = ?1",
                [code_key(&identifier, purpose)],
                |r| Ok(PendingCode { purpose: r.get(0)?, expires_at: r.get(1)?, attempts: r.get(2)? }),
            )?);
        }
        code_requests.extend(rows(
            conn,
            "SELECT at FROM rate_events WHERE key = ?1 ORDER BY at",
            [identifier_key(&identifier)],
            |r| r.get::<_, i64>(0),
        )?);
    }
    Ok(Some(PersonalData {
        profile,
        contact,
        pending_contact_change,
        unit,
        picture,
        sessions,
        device_keys,
        grants,
        credentials,
        invitations_sent,
        guest_access,
        access_retention,
        access_events,
        consent_history,
        pending_codes,
        code_requests,
    }))
}

/// The deletion code check and erasure of [`PrivacyStore::confirm_deletion`], in one
/// transaction. A stored receipt for `request_hash` is returned only to someone without a
/// live account (a retry after success): a live account never owns a receipt, so it must not
/// see or reuse another person's.
fn confirm_deletion(
    conn: &mut Connection,
    who: &Who,
    code: &str,
    request_hash: &str,
    now: i64,
    limits: CodeLimits,
    backup_retention_s: i64,
) -> Result<Deletion, ApiError> {
    let tx = conn.transaction()?;
    let (user_id, identifier) = match who {
        Who::User(user_id) => {
            let Some(ContactRecord { email, phone }) = contact(&tx, user_id)? else {
                return Ok(Deletion::AccountGone);
            };
            let candidates: Vec<Identifier> =
                [email, phone].into_iter().flatten().filter_map(|raw| Identifier::parse(&raw)).collect();
            // The code went to the email (else the phone); take whichever has one pending.
            let mut chosen = None;
            for identifier in &candidates {
                let pending = tx
                    .query_row(
                        "SELECT 1 FROM one_time_codes WHERE identifier_hash = ?1",
                        [code_key(identifier, CodePurpose::DeleteAccount)],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                if pending {
                    chosen = Some(identifier.clone());
                    break;
                }
            }
            let Some(identifier) = chosen.or_else(|| candidates.into_iter().next()) else {
                return Ok(Deletion::CodeRejected(ApiError::InvalidCode));
            };
            (Some(user_id.clone()), identifier)
        }
        Who::Identifier(identifier) => match find_user(&tx, identifier)? {
            // No account (any more) by that address: a resubmitted form gets its receipt,
            // like `GET /v1/deletion-receipts/{request_id}` would give it.
            None => match find_receipt(&tx, request_hash)? {
                Some(receipt) => return Ok(Deletion::AlreadyDeleted(receipt)),
                None => (None, identifier.clone()),
            },
            user_id => (user_id, identifier.clone()),
        },
    };
    if let Err(err) = verify_code(&tx, &identifier, CodePurpose::DeleteAccount, code, now, limits)? {
        tx.commit()?;
        return Ok(Deletion::CodeRejected(err));
    }
    let Some(user_id) = user_id else {
        tx.commit()?;
        return Ok(Deletion::NoAccount);
    };
    if find_receipt(&tx, request_hash)?.is_some() {
        // Someone else's request id. Nothing of theirs is shown, and the code stays unused
        // (no commit) so the person can retry with a fresh id.
        return Ok(Deletion::RequestIdTaken);
    }
    // Recorded first, so that deleting the account gives this event the same pseudonym as
    // the account's earlier ones.
    crate::security_log::sqlite::record_in(&tx, &NewEvent::new(EventKind::AccountDeleted, now).subject(&user_id))?;
    delete_account(&tx, &user_id, now)?;
    let receipt = DeletionReceipt { deleted_at: now, backups_purged_by: now + backup_retention_s };
    tx.execute(
        "INSERT INTO deletion_receipts (request_hash, deleted_at, backups_purged_by)
         VALUES (?1, ?2, ?3)",
        params![request_hash, receipt.deleted_at, receipt.backups_purged_by],
    )?;
    tx.commit()?;
    tracing::info!("account deleted");
    checkpoint(conn);
    Ok(Deletion::Deleted(receipt))
}

/// Copies the WAL into the database and truncates it, so deleted rows do not linger in old
/// WAL frames. Best effort: a busy reader only delays it to the next checkpoint.
fn checkpoint(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "WAL checkpoint failed");
    }
}

/// Deletes every row holding the person's data. Their live sessions are revoked first, so
/// their device keys and unexpired credential ids go on the revocation list (unlinked from
/// them, and dropped once expired). Access events are kept for the building, anonymised:
/// no user, no credential id, no signed record; only lock/door, time and decision remain.
pub(crate) fn delete_account(tx: &Transaction<'_>, user_id: &str, now: i64) -> rusqlite::Result<()> {
    let (email, phone): (Option<String>, Option<String>) =
        tx.query_row("SELECT email, phone FROM users WHERE id = ?1", [user_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let live: Vec<String> =
        rows(tx, "SELECT id FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL", [user_id], |r| r.get(0))?;
    for session_id in live {
        revoke_device(tx, &session_id, now)?;
    }
    // What a tenant issued ends with them: invitations, and every guest who accepted one.
    crate::invitations::sqlite::revoke_everything_issued_by(tx, user_id, now)?;
    // The security log keeps what happened, but no longer who: a fresh random pseudonym.
    crate::security_log::sqlite::forget_user(tx, user_id)?;
    tx.execute(
        "UPDATE access_events SET user_id = NULL, credential_id = zeroblob(16), record = x''
         WHERE user_id = ?1
            OR credential_id IN (SELECT id FROM credentials WHERE user_id = ?1)",
        [user_id],
    )?;
    // A pending new address counts too: codes were requested for it.
    let pending: Option<String> =
        tx.query_row("SELECT value FROM contact_changes WHERE user_id = ?1", [user_id], |r| r.get(0)).optional()?;
    for raw in [email, phone, pending].into_iter().flatten() {
        if let Some(identifier) = Identifier::parse(&raw) {
            forget_identifier(tx, &identifier)?;
        }
    }
    for sql in [
        "DELETE FROM contact_changes WHERE user_id = ?1",
        "DELETE FROM consent_events WHERE user_id = ?1",
        "DELETE FROM pictures WHERE user_id = ?1",
        "DELETE FROM credentials WHERE user_id = ?1",
        "DELETE FROM device_keys WHERE user_id = ?1",
        "DELETE FROM door_grants WHERE user_id = ?1",
        "DELETE FROM access_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = ?1)",
        "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = ?1)",
        "DELETE FROM sessions WHERE user_id = ?1",
        "DELETE FROM users WHERE id = ?1",
    ] {
        tx.execute(sql, [user_id])?;
    }
    Ok(())
}

#[async_trait]
impl PrivacyStore for SqlitePrivacyStore {
    async fn personal_data(&self, user_id: &str) -> Result<Option<PersonalData>, ApiError> {
        let user_id = user_id.to_owned();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let data = personal_data(&tx, &user_id)?;
                tx.commit()?;
                Ok(data)
            })
            .await
    }

    async fn export(&self, user_id: &str) -> Result<Option<(PersonalData, Option<PictureFile>)>, ApiError> {
        let user_id = user_id.to_owned();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let Some(data) = personal_data(&tx, &user_id)? else {
                    return Ok(None);
                };
                let picture = tx
                    .query_row("SELECT content_type, bytes FROM pictures WHERE user_id = ?1", [&user_id], |r| {
                        Ok(PictureFile { content_type: r.get(0)?, bytes: r.get(1)? })
                    })
                    .optional()?;
                tx.commit()?;
                Ok(Some((data, picture)))
            })
            .await
    }

    async fn contact(&self, user_id: &str) -> Result<Option<ContactRecord>, ApiError> {
        let user_id = user_id.to_owned();
        self.db.call(move |conn| Ok(contact(conn, &user_id)?)).await
    }

    async fn account_exists(&self, identifier: &Identifier) -> Result<bool, ApiError> {
        let identifier = identifier.clone();
        self.db.call(move |conn| Ok(find_user(conn, &identifier)?.is_some())).await
    }

    async fn consent_history(&self, user_id: &str) -> Result<Vec<ConsentChange>, ApiError> {
        let user_id = user_id.to_owned();
        self.db.call(move |conn| Ok(consent_history(conn, &user_id)?)).await
    }

    async fn record_consent(
        &self,
        user_id: &str,
        purpose: &str,
        granted: bool,
        now: i64,
    ) -> Result<ConsentChange, ApiError> {
        let (user_id, purpose) = (user_id.to_owned(), purpose.to_owned());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                tx.execute(
                    "INSERT INTO consent_events (user_id, purpose, granted, at) VALUES (?1, ?2, ?3, ?4)",
                    params![user_id, purpose, granted, now],
                )?;
                // Another change may carry a later time: the current choice is the latest.
                let current = tx.query_row(
                    "SELECT purpose, granted, at FROM consent_events WHERE user_id = ?1 AND purpose = ?2
                     ORDER BY at DESC, id DESC LIMIT 1",
                    params![user_id, purpose],
                    |r| Ok(ConsentChange { purpose: r.get(0)?, granted: r.get(1)?, at: r.get(2)? }),
                )?;
                tx.commit()?;
                Ok(current)
            })
            .await
    }

    async fn confirm_deletion(
        &self,
        who: &Who,
        code: &str,
        request_hash: &str,
        now: i64,
        limits: CodeLimits,
        backup_retention_s: i64,
    ) -> Result<Deletion, ApiError> {
        let (who, code, request_hash) = (who.clone(), code.to_owned(), request_hash.to_owned());
        self.db
            .call(move |conn| confirm_deletion(conn, &who, &code, &request_hash, now, limits, backup_retention_s))
            .await
    }

    async fn receipt(&self, request_hash: &str) -> Result<Option<DeletionReceipt>, ApiError> {
        let request_hash = request_hash.to_owned();
        self.db.call(move |conn| Ok(find_receipt(conn, &request_hash)?)).await
    }

    async fn purge_receipts(&self, now: i64) -> Result<usize, ApiError> {
        self.db
            .call(move |conn| Ok(conn.execute("DELETE FROM deletion_receipts WHERE backups_purged_by < ?1", [now])?))
            .await
    }

    async fn compact(&self) {
        if let Err(e) = self
            .db
            .call(|conn| {
                checkpoint(conn);
                Ok(())
            })
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sqlite::SqliteAuthStore;
    use crate::privacy::store_tests::Fixture;

    async fn get_store() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open(&dir.path().join("porta.db")).unwrap();
        let now = 1_750_000_000;
        conn.execute_batch(
            "INSERT INTO sites (id, name, address) VALUES ('site-a', 'Elm House', '1 Elm St');
             INSERT INTO units (id, site_id, name, kind) VALUES ('u1', 'site-a', '4B', 'apartment');
             INSERT INTO doors (id, site_id, name, number) VALUES ('d1', 'site-a', 'Main', 1);
             INSERT INTO users (id, name, email, unit_id, created_at, updated_at) VALUES
                 ('ann', 'Ann', 'ann@a.example', 'u1', 1, 1);
             INSERT INTO users (id, name, email, created_at, updated_at) VALUES ('bob', '', 'bob@a.example', 1, 1);",
        )
        .unwrap();
        for (id, name, at) in [("s1", "Phone", now - 10), ("s2", "Tablet", now - 20)] {
            conn.execute(
                "INSERT INTO sessions (id, user_id, device_name, ip, created_at, last_seen_at)
                 VALUES (?1, 'ann', ?2, '192.0.2.7', ?3, ?3)",
                params![id, name, at],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, created_at)
             VALUES ('g1', 'ann', 1, 0, ?1, 1)",
            [crate::demo::FOREVER],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO pictures (user_id, content_type, bytes, updated_at) VALUES ('ann', 'image/png', x'010203', ?1)",
            [now],
        )
        .unwrap();
        let db = Db::new(conn);
        Fixture {
            store: Box::new(SqlitePrivacyStore::new(db.clone())),
            auth: Box::new(SqliteAuthStore::new(db)),
            _dir: Box::new(dir),
            now,
        }
    }

    crate::privacy_store_tests!(get_store);
}
