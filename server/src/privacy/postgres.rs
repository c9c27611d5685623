//! The PostgreSQL backend of [`PrivacyStore`] (feature `postgres`): the same tables and
//! semantics as [`super::sqlite`], and [`delete_account`], the erasure other PostgreSQL stores
//! run inside their own transactions (a guest's end, a tenant's).
//!
//! "My data" is read in one snapshot (REPEATABLE READ); a deletion's code check, erasure and
//! receipt commit together, with the code's row locked against guesses through other
//! instances.

use async_trait::async_trait;
use tokio_postgres::{GenericClient, IsolationLevel};

use super::store::{
    AccessEventRecord, ConsentChange, ContactRecord, CredentialRecord, Deletion, DeviceKeyRecord, GrantRecord,
    PendingCode, PendingContactChange, PersonalData, PictureFile, PictureMeta, PrivacyStore, ProfileRecord,
    SessionRecord, UnitRecord, Who,
};
use super::DeletionReceipt;
use crate::access::store::DoorRetention;
use crate::auth::postgres::{find_user, forget_identifier, verify_code};
use crate::auth::store::CodeLimits;
use crate::auth::{code_key, identifier_key, CodePurpose};
use crate::devices::postgres::revoke_device;
use crate::error::ApiError;
use crate::identity::Identifier;
use crate::pg::PgPool;
use crate::security_log::{EventKind, NewEvent};

pub struct PgPrivacyStore {
    pool: PgPool,
}

impl PgPrivacyStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn small<T: TryFrom<i64>>(stored: i64) -> Result<T, ApiError> {
    T::try_from(stored).map_err(|_| ApiError::Internal("stored number out of range".into()))
}

async fn contact(client: &impl GenericClient, user_id: &str) -> Result<Option<ContactRecord>, tokio_postgres::Error> {
    Ok(client
        .query_opt("SELECT email, phone FROM users WHERE id = $1", &[&user_id])
        .await?
        .map(|r| ContactRecord { email: r.get(0), phone: r.get(1) }))
}

async fn consent_history(
    client: &impl GenericClient,
    user_id: &str,
) -> Result<Vec<ConsentChange>, tokio_postgres::Error> {
    Ok(client
        .query("SELECT purpose, granted <> 0, at FROM consent_events WHERE user_id = $1 ORDER BY at, id", &[&user_id])
        .await?
        .iter()
        .map(|r| ConsentChange { purpose: r.get(0), granted: r.get(1), at: r.get(2) })
        .collect())
}

async fn find_receipt(
    client: &impl GenericClient,
    hash: &str,
) -> Result<Option<DeletionReceipt>, tokio_postgres::Error> {
    Ok(client
        .query_opt("SELECT deleted_at, backups_purged_by FROM deletion_receipts WHERE request_hash = $1", &[&hash])
        .await?
        .map(|r| DeletionReceipt { deleted_at: r.get(0), backups_purged_by: r.get(1) }))
}

/// Everything stored about `user_id`, read on `client` (the caller's snapshot).
async fn personal_data(client: &impl GenericClient, user_id: &str) -> Result<Option<PersonalData>, ApiError> {
    let Some(user) = client
        .query_opt("SELECT name, email, phone, unit_id, created_at, updated_at FROM users WHERE id = $1", &[&user_id])
        .await?
    else {
        return Ok(None);
    };
    let profile = ProfileRecord { name: user.get(0), created_at: user.get(4), updated_at: user.get(5) };
    let contact = ContactRecord { email: user.get(1), phone: user.get(2) };
    let unit_id: Option<String> = user.get(3);
    let pending_contact_change = client
        .query_opt("SELECT field, value, expires_at FROM contact_changes WHERE user_id = $1", &[&user_id])
        .await?
        .map(|r| PendingContactChange { field: r.get(0), value: r.get(1), expires_at: r.get(2) });
    let unit = match &unit_id {
        None => None,
        Some(id) => client
            .query_opt(
                "SELECT n.id, n.name, n.kind, s.name, s.address FROM units n JOIN sites s ON s.id = n.site_id
                 WHERE n.id = $1",
                &[id],
            )
            .await?
            .map(|r| UnitRecord {
                id: r.get(0),
                name: r.get(1),
                kind: r.get(2),
                site_name: r.get(3),
                site_address: r.get(4),
            }),
    };
    let picture = client
        .query_opt(
            "SELECT content_type, octet_length(bytes)::BIGINT, updated_at FROM pictures WHERE user_id = $1",
            &[&user_id],
        )
        .await?
        .map(|r| PictureMeta { content_type: r.get(0), size_bytes: r.get(1), updated_at: r.get(2) });
    let sessions = client
        .query(
            "SELECT id, device_name, created_at, last_seen_at, ip, revoked_at FROM sessions
             WHERE user_id = $1 ORDER BY created_at, id",
            &[&user_id],
        )
        .await?
        .iter()
        .map(|r| SessionRecord {
            session_id: r.get(0),
            device_name: r.get(1),
            created_at: r.get(2),
            last_seen_at: r.get(3),
            ip: r.get(4),
            revoked_at: r.get(5),
        })
        .collect();
    let device_keys = client
        .query(
            "SELECT session_id, public_key, created_at, revoked_at FROM device_keys
             WHERE user_id = $1 ORDER BY created_at, session_id",
            &[&user_id],
        )
        .await?
        .iter()
        .map(|r| DeviceKeyRecord {
            session_id: r.get(0),
            public_key: r.get(1),
            created_at: r.get(2),
            revoked_at: r.get(3),
        })
        .collect();
    let grants = client
        .query(
            "SELECT g.id, g.door_number, d.name, g.not_before, g.not_after, g.schedule_json, g.created_at
             FROM door_grants g LEFT JOIN doors d ON d.number = g.door_number
             WHERE g.user_id = $1 ORDER BY g.door_number, g.created_at, g.id",
            &[&user_id],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(GrantRecord {
                grant_id: r.get(0),
                door_id: small(r.get(1))?,
                door_name: r.get(2),
                not_before: r.get(3),
                not_after: r.get(4),
                schedule_json: r.get(5),
                created_at: r.get(6),
            })
        })
        .collect::<Result<_, ApiError>>()?;
    let credentials = client
        .query(
            "SELECT c.id, c.session_id, c.doors, c.not_before, c.not_after, c.issued_at,
                    EXISTS (SELECT 1 FROM revoked_credentials r WHERE r.credential_id = c.id)
                    OR EXISTS (SELECT 1 FROM device_keys k WHERE k.public_key = c.device_key
                               AND k.revoked_at IS NOT NULL)
             FROM credentials c WHERE c.user_id = $1 ORDER BY c.issued_at, c.id",
            &[&user_id],
        )
        .await?
        .iter()
        .map(|r| CredentialRecord {
            credential_id: r.get(0),
            session_id: r.get(1),
            doors_json: r.get(2),
            not_before: r.get(3),
            not_after: r.get(4),
            issued_at: r.get(5),
            revoked: r.get(6),
        })
        .collect();
    let (invitations_sent, guest_access) = crate::invitations::postgres::data_of(client, user_id).await?;
    let access_retention = client
        .query(
            "SELECT number, name, log_retention_days FROM doors WHERE number IN (
                 SELECT door_number FROM door_grants WHERE user_id = $1
                 UNION SELECT door_number FROM access_events WHERE user_id = $1)
             ORDER BY number",
            &[&user_id],
        )
        .await?
        .iter()
        .map(|r| Ok(DoorRetention { door_id: small(r.get(0))?, door_name: r.get(1), retention_days: r.get(2) }))
        .collect::<Result<_, ApiError>>()?;
    let access_events = client
        .query(
            "SELECT e.door_number, d.name, e.lock_id, e.at, e.decision, e.credential_id, e.received_at, e.record
             FROM access_events e LEFT JOIN doors d ON d.number = e.door_number
             WHERE e.user_id = $1 ORDER BY e.at DESC, e.id DESC",
            &[&user_id],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(AccessEventRecord {
                door_id: r.get::<_, Option<i64>>(0).map(small).transpose()?,
                door_name: r.get(1),
                lock_id: small(r.get(2))?,
                at: r.get(3),
                decision: small(r.get(4))?,
                credential_id: r.get(5),
                received_at: r.get(6),
                record: r.get(7),
            })
        })
        .collect::<Result<_, ApiError>>()?;
    let consent_history = consent_history(client, user_id).await?;
    let mut pending_codes = Vec::new();
    let mut code_requests = Vec::new();
    for raw in [&contact.email, &contact.phone].into_iter().flatten() {
        let Some(identifier) = Identifier::parse(raw) else {
            continue;
        };
        for purpose in [CodePurpose::SignIn, CodePurpose::DeleteAccount] {
            let rows = client
                .query(
                    "SELECT purpose, expires_at, attempts FROM one_time_codes WHERE identifier_hash = $1",
                    &[&code_key(&identifier, purpose)],
                )
                .await?;
            pending_codes.extend(rows.iter().map(|r| PendingCode {
                purpose: r.get(0),
                expires_at: r.get(1),
                attempts: r.get(2),
            }));
        }
        let rows = client
            .query("SELECT at FROM rate_events WHERE key = $1 ORDER BY at", &[&identifier_key(&identifier)])
            .await?;
        code_requests.extend(rows.iter().map(|r| r.get::<_, i64>(0)));
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

#[async_trait]
impl PrivacyStore for PgPrivacyStore {
    async fn personal_data(&self, user_id: &str) -> Result<Option<PersonalData>, ApiError> {
        let mut client = self.pool.get().await?;
        let tx =
            client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
        let data = personal_data(&tx, user_id).await?;
        tx.commit().await?;
        Ok(data)
    }

    async fn export(&self, user_id: &str) -> Result<Option<(PersonalData, Option<PictureFile>)>, ApiError> {
        let mut client = self.pool.get().await?;
        let tx =
            client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
        let Some(data) = personal_data(&tx, user_id).await? else {
            return Ok(None);
        };
        let picture = tx
            .query_opt("SELECT content_type, bytes FROM pictures WHERE user_id = $1", &[&user_id])
            .await?
            .map(|r| PictureFile { content_type: r.get(0), bytes: r.get(1) });
        tx.commit().await?;
        Ok(Some((data, picture)))
    }

    async fn contact(&self, user_id: &str) -> Result<Option<ContactRecord>, ApiError> {
        let client = self.pool.get().await?;
        Ok(contact(&*client, user_id).await?)
    }

    async fn account_exists(&self, identifier: &Identifier) -> Result<bool, ApiError> {
        let client = self.pool.get().await?;
        Ok(find_user(&*client, identifier).await?.is_some())
    }

    async fn consent_history(&self, user_id: &str) -> Result<Vec<ConsentChange>, ApiError> {
        let client = self.pool.get().await?;
        Ok(consent_history(&*client, user_id).await?)
    }

    async fn record_consent(
        &self,
        user_id: &str,
        purpose: &str,
        granted: bool,
        now: i64,
    ) -> Result<ConsentChange, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO consent_events (user_id, purpose, granted, at) VALUES ($1, $2, $3, $4)",
            &[&user_id, &purpose, &i64::from(granted), &now],
        )
        .await?;
        // Another change may carry a later time: the current choice is the latest.
        let r = tx
            .query_one(
                "SELECT purpose, granted <> 0, at FROM consent_events WHERE user_id = $1 AND purpose = $2
                 ORDER BY at DESC, id DESC LIMIT 1",
                &[&user_id, &purpose],
            )
            .await?;
        tx.commit().await?;
        Ok(ConsentChange { purpose: r.get(0), granted: r.get(1), at: r.get(2) })
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
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let (user_id, identifier) = match who {
            Who::User(user_id) => {
                let Some(ContactRecord { email, phone }) = contact(&tx, user_id).await? else {
                    return Ok(Deletion::AccountGone);
                };
                let candidates: Vec<Identifier> =
                    [email, phone].into_iter().flatten().filter_map(|raw| Identifier::parse(&raw)).collect();
                // The code went to the email (else the phone); take whichever has one pending.
                let mut chosen = None;
                for identifier in &candidates {
                    let key = code_key(identifier, CodePurpose::DeleteAccount);
                    if tx.query_opt("SELECT 1 FROM one_time_codes WHERE identifier_hash = $1", &[&key]).await?.is_some()
                    {
                        chosen = Some(identifier.clone());
                        break;
                    }
                }
                let Some(identifier) = chosen.or_else(|| candidates.into_iter().next()) else {
                    return Ok(Deletion::CodeRejected(ApiError::InvalidCode));
                };
                (Some(user_id.clone()), identifier)
            }
            Who::Identifier(identifier) => match find_user(&tx, identifier).await? {
                // No account (any more) by that address: a resubmitted form gets its receipt.
                None => match find_receipt(&tx, request_hash).await? {
                    Some(receipt) => return Ok(Deletion::AlreadyDeleted(receipt)),
                    None => (None, identifier.clone()),
                },
                user_id => (user_id, identifier.clone()),
            },
        };
        if let Err(err) = verify_code(&tx, &identifier, CodePurpose::DeleteAccount, code, now, limits).await? {
            tx.commit().await?;
            return Ok(Deletion::CodeRejected(err));
        }
        let Some(user_id) = user_id else {
            tx.commit().await?;
            return Ok(Deletion::NoAccount);
        };
        if find_receipt(&tx, request_hash).await?.is_some() {
            // Someone else's request id: nothing of theirs is shown, and the code stays unused
            // (no commit) so the person can retry with a fresh id.
            return Ok(Deletion::RequestIdTaken);
        }
        // Recorded first, so that deleting the account gives this event the same pseudonym as
        // the account's earlier ones.
        crate::security_log::postgres::record_in(&tx, &NewEvent::new(EventKind::AccountDeleted, now).subject(&user_id))
            .await?;
        delete_account(&tx, &user_id, now).await?;
        let receipt = DeletionReceipt { deleted_at: now, backups_purged_by: now + backup_retention_s };
        let stored = tx
            .execute(
                "INSERT INTO deletion_receipts (request_hash, deleted_at, backups_purged_by) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&request_hash, &receipt.deleted_at, &receipt.backups_purged_by],
            )
            .await?;
        if stored == 0 {
            // The same request id, taken meanwhile through another instance: as above.
            return Ok(Deletion::RequestIdTaken);
        }
        tx.commit().await?;
        tracing::info!("account deleted");
        Ok(Deletion::Deleted(receipt))
    }

    async fn receipt(&self, request_hash: &str) -> Result<Option<DeletionReceipt>, ApiError> {
        let client = self.pool.get().await?;
        Ok(find_receipt(&*client, request_hash).await?)
    }

    async fn purge_receipts(&self, now: i64) -> Result<usize, ApiError> {
        let client = self.pool.get().await?;
        let purged = client.execute("DELETE FROM deletion_receipts WHERE backups_purged_by < $1", &[&now]).await?;
        Ok(usize::try_from(purged).unwrap_or(usize::MAX))
    }

    /// Nothing to do: PostgreSQL reclaims deleted rows with its own (auto)vacuum.
    async fn compact(&self) {}
}

/// Deletes the account and what it holds, as the SQLite backend's `delete_account`: its
/// devices are revoked, what it issued is revoked, its access-log rows stay anonymised and
/// its security events under a pseudonym. Run it in a transaction.
pub(crate) async fn delete_account(client: &impl GenericClient, user_id: &str, now: i64) -> Result<(), ApiError> {
    let row = client.query_one("SELECT email, phone FROM users WHERE id = $1", &[&user_id]).await?;
    let (email, phone): (Option<String>, Option<String>) = (row.get(0), row.get(1));
    let live = client.query("SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL", &[&user_id]).await?;
    for session in live {
        let session_id: String = session.get(0);
        revoke_device(client, &session_id, now).await?;
    }
    // What a tenant issued ends with them: invitations, and every guest who accepted one.
    crate::invitations::postgres::revoke_everything_issued_by(client, user_id, now).await?;
    // The security log keeps what happened, but no longer who.
    crate::security_log::postgres::forget_user(client, user_id).await?;
    client
        .execute(
            "UPDATE access_events SET user_id = NULL, credential_id = $2, record = ''::BYTEA
             WHERE user_id = $1 OR credential_id IN (SELECT id FROM credentials WHERE user_id = $1)",
            &[&user_id, &[0u8; 16].as_slice()],
        )
        .await?;
    // A pending new address counts too: codes were requested for it.
    let pending: Option<String> =
        client.query_opt("SELECT value FROM contact_changes WHERE user_id = $1", &[&user_id]).await?.map(|r| r.get(0));
    for raw in [email, phone, pending].into_iter().flatten() {
        if let Some(identifier) = Identifier::parse(&raw) {
            forget_identifier(client, &identifier).await?;
        }
    }
    for sql in [
        "DELETE FROM contact_changes WHERE user_id = $1",
        "DELETE FROM consent_events WHERE user_id = $1",
        "DELETE FROM pictures WHERE user_id = $1",
        "DELETE FROM credentials WHERE user_id = $1",
        "DELETE FROM device_keys WHERE user_id = $1",
        "DELETE FROM door_grants WHERE user_id = $1",
        "DELETE FROM access_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1)",
        "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1)",
        "DELETE FROM sessions WHERE user_id = $1",
        "DELETE FROM users WHERE id = $1",
    ] {
        client.execute(sql, &[&user_id]).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::postgres::PgAuthStore;
    use crate::privacy::store_tests::Fixture;

    /// A fresh database with the fixture the SQLite backend's tests seed.
    async fn get_store() -> Fixture {
        let pool = crate::pg::test_support::fresh_database().await;
        let now: i64 = 1_750_000_000;
        let mut client = pool.get().await.unwrap();
        let tx = client.transaction().await.unwrap();
        tx.batch_execute(
            "INSERT INTO sites (id, name, address) VALUES ('site-a', 'Elm House', '1 Elm St');
             INSERT INTO units (id, site_id, name, kind) VALUES ('u1', 'site-a', '4B', 'apartment');
             INSERT INTO doors (id, site_id, name, number) VALUES ('d1', 'site-a', 'Main', 1);
             INSERT INTO users (id, name, email, unit_id, created_at, updated_at) VALUES
                 ('ann', 'Ann', 'ann@a.example', 'u1', 1, 1);
             INSERT INTO users (id, name, email, created_at, updated_at) VALUES ('bob', '', 'bob@a.example', 1, 1);",
        )
        .await
        .unwrap();
        for (id, name, at) in [("s1", "Phone", now - 10), ("s2", "Tablet", now - 20)] {
            tx.execute(
                "INSERT INTO sessions (id, user_id, device_name, ip, created_at, last_seen_at)
                 VALUES ($1, 'ann', $2, '192.0.2.7', $3, $3)",
                &[&id, &name, &at],
            )
            .await
            .unwrap();
        }
        tx.execute(
            "INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, created_at)
             VALUES ('g1', 'ann', 1, 0, $1, 1)",
            &[&crate::demo::FOREVER],
        )
        .await
        .unwrap();
        tx.execute(
            "INSERT INTO pictures (user_id, content_type, bytes, updated_at) VALUES ('ann', 'image/png', '\\x010203', $1)",
            &[&now],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        drop(client);
        Fixture {
            store: Box::new(PgPrivacyStore::new(pool.clone())),
            auth: Box::new(PgAuthStore::new(pool)),
            _dir: Box::new(()),
            now,
        }
    }

    crate::privacy_store_tests!(get_store);
}
