//! The PostgreSQL backend of [`AccessStore`] (feature `postgres`): the same tables and
//! semantics as [`super::sqlite`]. An event is stored once per `(lock_id, counter)` however
//! many instances receive its upload (`ON CONFLICT DO NOTHING`), and the purge is plain
//! DELETEs by age, so every instance may run it.

use async_trait::async_trait;
use tokio_postgres::GenericClient;

use super::store::{AccessStore, DoorRetention, NewAccessEvent, RecordLock, UserAccessEvent};
use super::DEFAULT_RETENTION_DAYS;
use crate::error::ApiError;
use crate::pg::PgPool;

pub struct PgAccessStore {
    pool: PgPool,
}

impl PgAccessStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// A door number or lock id as stored (BIGINT) back to the protocol's `u32`.
fn door_number(stored: i64) -> Result<u32, ApiError> {
    u32::try_from(stored).map_err(|_| ApiError::Internal("door number out of range".into()))
}

fn decision(stored: i64) -> Result<u8, ApiError> {
    u8::try_from(stored).map_err(|_| ApiError::Internal("access decision out of range".into()))
}

/// Log retention of `door` in days; for an unknown door the longest of the site, as
/// [`purge_expired`] applies.
async fn retention_days(client: &impl GenericClient, door: Option<u32>) -> Result<i64, tokio_postgres::Error> {
    let door = door.map(i64::from);
    let row = client
        .query_one(
            "SELECT COALESCE((SELECT log_retention_days FROM doors WHERE number = $1),
                             (SELECT MAX(log_retention_days) FROM doors), $2::BIGINT)",
            &[&door, &DEFAULT_RETENTION_DAYS],
        )
        .await?;
    Ok(row.get(0))
}

/// Deletes access events past their door's retention, and issued-credential records too old
/// for any event that could still name them, as the SQLite backend's `purge_expired`, with
/// each statement a range on an index. Returns the events deleted.
pub(crate) async fn purge_expired(client: &impl GenericClient, now: i64) -> Result<usize, tokio_postgres::Error> {
    let longest: i64 = client
        .query_one("SELECT COALESCE(MAX(log_retention_days), $1::BIGINT) FROM doors", &[&DEFAULT_RETENTION_DAYS])
        .await?
        .get(0);
    let retentions = client.query("SELECT DISTINCT log_retention_days FROM doors", &[]).await?;
    let by_door = client
        .prepare(
            "DELETE FROM access_events
             WHERE door_number IN (SELECT number FROM doors WHERE log_retention_days = $1) AND at < $2",
        )
        .await?;
    let mut events = 0;
    for row in retentions {
        let days: i64 = row.get(0);
        events += client.execute(&by_door, &[&days, &(now - 86_400 * days)]).await?;
    }
    events += client
        .execute(
            "DELETE FROM access_events WHERE at < $1
                 AND (door_number IS NULL OR NOT EXISTS (SELECT 1 FROM doors d WHERE d.number = access_events.door_number))",
            &[&(now - 86_400 * longest)],
        )
        .await?;
    client.execute("DELETE FROM credentials WHERE not_after < $1", &[&(now - 86_400 * longest)]).await?;
    if events > 0 {
        tracing::info!(events, "purged access events past retention");
    }
    Ok(usize::try_from(events).unwrap_or(usize::MAX))
}

/// A batch of access events as columns, for one `INSERT … SELECT FROM UNNEST`.
#[derive(Default)]
struct Rows {
    lock_ids: Vec<i64>,
    counters: Vec<i64>,
    doors: Vec<Option<i64>>,
    credential_ids: Vec<Vec<u8>>,
    owners: Vec<Option<String>>,
    decisions: Vec<i64>,
    ats: Vec<i64>,
    records: Vec<Vec<u8>>,
}

#[async_trait]
impl AccessStore for PgAccessStore {
    async fn record_locks(&self, records: &[(u32, u32)]) -> Result<Vec<Option<RecordLock>>, ApiError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare(
                "SELECT l.public_key, COALESCE(
                     (SELECT door_number FROM lock_doors d WHERE d.lock_id = l.lock_id AND d.door_number = $2),
                     (SELECT MIN(door_number) FROM lock_doors d WHERE d.lock_id = l.lock_id)),
                     l.revoked_at
                 FROM locks l WHERE l.lock_id = $1",
            )
            .await?;
        // A batch comes from a few locks: each (lock, door) is looked up once, not per record.
        let mut seen: std::collections::HashMap<(u32, u32), Option<RecordLock>> = std::collections::HashMap::new();
        let mut out = Vec::with_capacity(records.len());
        for &(lock_id, door_id) in records {
            if let Some(known) = seen.get(&(lock_id, door_id)) {
                out.push(known.clone());
                continue;
            }
            let row = client.query_opt(&stmt, &[&i64::from(lock_id), &i64::from(door_id)]).await?;
            let lock = match row {
                None => None,
                Some(row) => {
                    let door = row.get::<_, Option<i64>>(1).map(door_number).transpose()?;
                    Some(RecordLock {
                        public_key: row.get(0),
                        door,
                        retention_days: retention_days(&*client, door).await?,
                        revoked_at: row.get(2),
                    })
                }
            };
            seen.insert((lock_id, door_id), lock.clone());
            out.push(lock);
        }
        Ok(out)
    }

    async fn store_events(&self, events: Vec<NewAccessEvent>, now: i64) -> Result<Vec<bool>, ApiError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // Two statements per batch, whatever its size: the owners of its credentials, then one
        // INSERT of every row. In an explicit transaction, so that only this instance's COMMIT
        // stores the batch: an instance killed while its INSERT waits on a lock stores nothing
        // (an implicit one would commit when the lock frees, after the instance is gone).
        let mut client = self.pool.get().await?;
        let client = client.transaction().await?;
        let ids: Vec<&[u8]> = events.iter().map(|e| e.credential_id.as_slice()).collect();
        let owners: std::collections::HashMap<Vec<u8>, String> = client
            .query("SELECT id, user_id FROM credentials WHERE id = ANY($1)", &[&ids])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut rows = Rows::default();
        for event in &events {
            let owner = owners.get(event.credential_id.as_slice()).cloned();
            // A credential id that maps to no one is a stable identifier with no use here: the
            // event is kept without it, like the anonymised events of deleted accounts.
            let (credential_id, record): (&[u8], &[u8]) = if owner.is_some() {
                (&event.credential_id, &event.record)
            } else if event.credential_id == [0u8; 16] {
                (&[0u8; 16], &event.record)
            } else {
                (&[0u8; 16], &[])
            };
            rows.lock_ids.push(i64::from(event.lock_id));
            rows.counters.push(event.counter);
            rows.doors.push(event.door.map(i64::from));
            rows.credential_ids.push(credential_id.to_vec());
            rows.owners.push(owner);
            rows.decisions.push(i64::from(event.decision));
            rows.ats.push(event.at);
            rows.records.push(record.to_vec());
        }
        // ON CONFLICT DO NOTHING also skips a repeat within the batch: the first is stored.
        let inserted: std::collections::HashSet<(i64, i64)> = client
            .query(
                "INSERT INTO access_events
                     (lock_id, counter, door_number, credential_id, user_id, decision, at, received_at, record)
                 SELECT lock_id, counter, door, credential, owner, decision, lock_time, $9::BIGINT, record
                 FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BYTEA[], $5::TEXT[],
                             $6::BIGINT[], $7::BIGINT[], $8::BYTEA[])
                      AS batch(lock_id, counter, door, credential, owner, decision, lock_time, record)
                 ON CONFLICT (lock_id, counter) DO NOTHING
                 RETURNING lock_id, counter",
                &[
                    &rows.lock_ids,
                    &rows.counters,
                    &rows.doors,
                    &rows.credential_ids,
                    &rows.owners,
                    &rows.decisions,
                    &rows.ats,
                    &rows.records,
                    &now,
                ],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        client.commit().await?;
        let mut reported = std::collections::HashSet::new();
        Ok(events
            .iter()
            .map(|e| {
                let key = (i64::from(e.lock_id), e.counter);
                inserted.contains(&key) && reported.insert(key)
            })
            .collect())
    }

    async fn purge_expired(&self, now: i64) -> Result<usize, ApiError> {
        let client = self.pool.get().await?;
        Ok(purge_expired(&*client, now).await?)
    }

    async fn user_events(&self, user_id: &str, now: i64, limit: u32) -> Result<Vec<UserAccessEvent>, ApiError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT e.door_number, d.name, e.at, e.decision FROM access_events e
                 LEFT JOIN doors d ON d.number = e.door_number
                 WHERE e.user_id = $1 AND e.at >= $2 - 86400 * COALESCE(d.log_retention_days,
                       (SELECT MAX(log_retention_days) FROM doors), $3::BIGINT)
                 ORDER BY e.at DESC, e.id DESC LIMIT $4",
                &[&user_id, &now, &DEFAULT_RETENTION_DAYS, &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(UserAccessEvent {
                    door_id: r.get::<_, Option<i64>>(0).map(door_number).transpose()?,
                    door_name: r.get(1),
                    at: r.get(2),
                    decision: decision(r.get(3))?,
                })
            })
            .collect()
    }

    async fn user_retention(&self, user_id: &str) -> Result<Vec<DoorRetention>, ApiError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT number, name, log_retention_days FROM doors WHERE number IN (
                     SELECT door_number FROM door_grants WHERE user_id = $1
                     UNION SELECT door_number FROM access_events WHERE user_id = $1)
                 ORDER BY number",
                &[&user_id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DoorRetention { door_id: door_number(r.get(0))?, door_name: r.get(1), retention_days: r.get(2) })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::store_tests::Fixture;

    /// A fresh database with the fixture the SQLite backend's tests seed.
    async fn get_store() -> Fixture {
        let pool = crate::pg::test_support::fresh_database().await;
        let now: i64 = 1_750_000_000;
        let mut client = pool.get().await.unwrap();
        let tx = client.transaction().await.unwrap();
        tx.batch_execute(
            "INSERT INTO sites (id, name, address) VALUES ('site-a', 'A', '');
             INSERT INTO doors (id, site_id, name, number) VALUES ('d1', 'site-a', 'Main', 1);
             INSERT INTO doors (id, site_id, name, number, log_retention_days) VALUES ('d2', 'site-a', 'Roof', 2, 7);
             INSERT INTO users (id, name, email, created_at, updated_at) VALUES
                 ('ann', 'Ann', 'ann@a.example', 1, 1), ('bob', 'Bob', 'bob@a.example', 1, 1);",
        )
        .await
        .unwrap();
        for lock in [5i64, 6] {
            tx.execute(
                "INSERT INTO locks (lock_id, site_id, public_key, certificate, created_at)
                 VALUES ($1, 'site-a', $2, ''::BYTEA, 1)",
                &[&lock, &vec![lock as u8; 32]],
            )
            .await
            .unwrap();
        }
        tx.batch_execute("INSERT INTO lock_doors (lock_id, door_number) VALUES (5, 1), (5, 2);").await.unwrap();
        tx.execute(
            "INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, created_at)
             VALUES ('g1', 'ann', 2, 0, $1, 1)",
            &[&crate::demo::FOREVER],
        )
        .await
        .unwrap();
        for (id, user) in [(1u8, "ann"), (2, "bob")] {
            tx.execute(
                "INSERT INTO credentials (id, site_id, user_id, session_id, device_key, not_before, not_after, issued_at)
                 VALUES ($1, 'site-a', $2, 's', $3, 0, $4, 0)",
                &[&vec![id; 16], &user, &[0u8; 32].as_slice(), &(now + 1000)],
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        drop(client);
        Fixture { store: Box::new(PgAccessStore::new(pool)), _dir: Box::new(()), now }
    }

    crate::access_store_tests!(get_store);

    /// A phone retrying its upload through another instance while the first is still storing
    /// it: each event is stored once, and reported stored by exactly one of the two.
    #[tokio::test]
    async fn the_same_upload_through_two_instances_at_once_is_stored_once() {
        let f = get_store().await;
        let batch: Vec<_> = (1..=20).map(|n| crate::access::store_tests::event(n, 1, 1, f.now - n)).collect();
        let store: std::sync::Arc<dyn AccessStore> = f.store.into();
        let uploads = (0..2).map(|_| {
            let (store, batch) = (store.clone(), batch.clone());
            tokio::spawn(async move { store.store_events(batch, f.now).await.unwrap() })
        });
        let mut stored = vec![0; batch.len()];
        for upload in uploads {
            for (count, was_stored) in stored.iter_mut().zip(upload.await.unwrap()) {
                *count += usize::from(was_stored);
            }
        }
        assert!(stored.iter().all(|&n| n == 1), "{stored:?}");
        assert_eq!(store.user_events("ann", f.now, 100).await.unwrap().len(), batch.len());
    }
}

/// Every instance runs the hourly purge. These check that any number of them at once leave
/// the database as one run does.
#[cfg(test)]
mod purge_tests {
    use std::sync::Arc;

    use crate::access::Purge;
    use crate::pg::test_support::{another_instance, fresh_database};
    use crate::pg::PgPool;

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86400;

    /// Something of each kind the purges remove, and what they must keep: an ended guest
    /// principal (with a device key and a credential still valid, so its purge revokes the
    /// key), a resident whose guest access ended (its credential is revoked), a guest
    /// principal left without an access, a live guest, and old and recent access events,
    /// security events, revocations, receipts and rate events.
    async fn seeded() -> PgPool {
        let pool = fresh_database().await;
        let client = pool.get().await.unwrap();
        let sql = format!(
            "INSERT INTO sites (id, name, address, revocation_version) VALUES ('s', 'Site', '', 2);
             INSERT INTO doors (id, site_id, name, number, log_retention_days) VALUES
                 ('d1', 's', 'Main', 1, 30), ('d2', 's', 'Roof', 2, 7);
             INSERT INTO users (id, name, email, created_at, updated_at) VALUES
                 ('ten', 'Tenant', 'ten@example.com', 1, 1), ('res', 'Res', 'res@example.com', 1, 1);
             INSERT INTO users (id, kind, expires_at, created_at, updated_at) VALUES
                 ('g1', 'guest', {ended}, 1, 1), ('g2', 'guest', {now} - 5, 1, 1), ('g3', 'guest', {live}, 1, 1);
             INSERT INTO invitations (id, token_hash, site_id, tenant_id, doors, not_before, not_after, uses,
                                      uses_left, created_at) VALUES
                 ('inv-old', 'h-old', 's', 'ten', '[1]', {start}, {ended}, 3, 1, {start}),
                 ('inv-live', 'h-live', 's', 'ten', '[1]', {start}, {live}, 2, 1, {start});
             INSERT INTO guest_accesses (id, invitation_id, tenant_id, user_id, site_id, doors, not_before,
                                         not_after, accept_tag, accepted_at) VALUES
                 ('ga1', 'inv-old', 'ten', 'g1', 's', '[1]', {start}, {ended}, 't1', {start}),
                 ('ga2', 'inv-old', 'ten', 'res', 's', '[1]', {start}, {ended}, 't2', {start}),
                 ('ga3', 'inv-live', 'ten', 'g3', 's', '[1]', {start}, {live}, 't3', {start});
             INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, created_at, guest_access_id)
                 VALUES ('dg1', 'g1', 1, {start}, {ended}, 1, 'ga1'), ('dg2', 'res', 1, {start}, {ended}, 1, 'ga2'),
                        ('dg3', 'g3', 1, {start}, {live}, 1, 'ga3'), ('dg4', 'ten', 1, 0, {live}, 1, NULL);
             INSERT INTO sessions (id, user_id, device_name, ip, created_at, last_seen_at) VALUES
                 ('s-g1', 'g1', 'Phone', '192.0.2.1', 1, 1), ('s-res', 'res', 'Phone', '192.0.2.2', 1, 1),
                 ('s-g3', 'g3', 'Phone', '192.0.2.3', 1, 1);
             INSERT INTO device_keys (session_id, user_id, public_key, created_at) VALUES
                 ('s-g1', 'g1', decode(repeat('01', 32), 'hex'), 1), ('s-res', 'res', decode(repeat('02', 32), 'hex'), 1),
                 ('s-g3', 'g3', decode(repeat('03', 32), 'hex'), 1);
             INSERT INTO credentials (id, site_id, user_id, session_id, device_key, not_before, not_after, issued_at,
                                      doors) VALUES
                 (decode(repeat('a1', 16), 'hex'), 's', 'g1', 's-g1', decode(repeat('01', 32), 'hex'), {start},
                  {now} + 500, {start}, '[1]'),
                 (decode(repeat('a2', 16), 'hex'), 's', 'res', 's-res', decode(repeat('02', 32), 'hex'), {start},
                  {now} + 500, {start}, '[1]'),
                 (decode(repeat('a3', 16), 'hex'), 's', 'ten', 's-ten', decode(repeat('04', 32), 'hex'), 0,
                  {now} - 40 * {day}, 0, '[1]');
             INSERT INTO access_events (lock_id, counter, door_number, credential_id, user_id, decision, at,
                                        received_at, record) VALUES
                 (5, 1, 1, decode(repeat('a1', 16), 'hex'), 'g1', 0, {now} - 60, {now} - 60, '\\x01'),
                 (5, 2, 1, decode(repeat('a3', 16), 'hex'), 'ten', 0, {now} - 40 * {day}, {now} - 40 * {day}, '\\x02'),
                 (5, 3, 2, decode(repeat('a3', 16), 'hex'), 'ten', 0, {now} - {day}, {now} - {day}, '\\x03');
             INSERT INTO security_events (at, kind, actor) VALUES
                 ({now} - 400 * {day}, 'sign_in', 'ten'), ({now} - 60, 'sign_in', 'g1'), ({now} - 60, 'sign_in', 'ten');
             INSERT INTO revoked_credentials (site_id, credential_id, not_after, revoked_at, seq) VALUES
                 ('s', decode(repeat('b1', 16), 'hex'), {now} - 1, {start}, 1),
                 ('s', decode(repeat('b2', 16), 'hex'), {live}, {start}, 2);
             INSERT INTO deletion_receipts (request_hash, deleted_at, backups_purged_by) VALUES
                 ('r-old', {start}, {now} - 1), ('r-live', {start}, {live});
             INSERT INTO rate_events (bucket, key, at) VALUES
                 ('invitation_ip', 'k', {now} - 2 * {day}), ('invitation_ip', 'k', {now} - 10);
             INSERT INTO invitation_events (tenant_id, at) VALUES ('ten', {now} - 2 * {day}), ('ten', {now} - 10);",
            now = NOW,
            day = DAY,
            start = NOW - 1000,
            ended = NOW - 100,
            live = NOW + 1000,
        );
        client.batch_execute(&sql).await.unwrap();
        drop(client);
        pool
    }

    /// The purge as an instance on `pool` runs it.
    async fn purge_on(pool: &PgPool) -> Purge {
        let invitations = crate::invitations::postgres::PgInvitationStore::new(pool.clone());
        Purge {
            access: Arc::new(super::PgAccessStore::new(pool.clone())),
            authority: Arc::new(crate::authority::postgres::PgAuthorityStore::new(pool.clone())),
            privacy: Arc::new(crate::privacy::postgres::PgPrivacyStore::new(pool.clone())),
            invitations: Arc::new(crate::invitations::Invitations::new(Arc::new(invitations)).await.unwrap()),
            security: Arc::new(crate::security_log::postgres::PgSecurityLog::new(pool.clone())),
            security_retention_days: 30,
            clock: Arc::new(crate::clock::ManualClock::new(NOW)),
        }
    }

    /// What a purge leaves, as (what, how many) pairs.
    async fn left(pool: &PgPool) -> Vec<(&'static str, String)> {
        let client = pool.get().await.unwrap();
        let mut out = Vec::new();
        for query in [
            "SELECT string_agg(id, ',' ORDER BY id) FROM users",
            "SELECT string_agg(id, ',' ORDER BY id) FROM sessions",
            "SELECT COUNT(*)::TEXT FROM device_keys",
            "SELECT COUNT(*)::TEXT FROM credentials",
            "SELECT string_agg(id, ',' ORDER BY id) FROM invitations",
            "SELECT string_agg(id, ',' ORDER BY id) FROM guest_accesses",
            "SELECT string_agg(id, ',' ORDER BY id) FROM door_grants",
            "SELECT string_agg(counter::TEXT || ':' || COALESCE(user_id, '-'), ',' ORDER BY counter) FROM access_events",
            "SELECT COUNT(*)::TEXT FROM security_events",
            "SELECT COUNT(*)::TEXT FROM security_events WHERE actor LIKE 'g_'",
            "SELECT string_agg(encode(credential_id, 'hex') || ':' || seq, ',' ORDER BY seq) FROM revoked_credentials",
            "SELECT string_agg(encode(public_key, 'hex') || ':' || seq, ',' ORDER BY seq) FROM revoked_device_keys",
            "SELECT revocation_version::TEXT FROM sites",
            "SELECT string_agg(request_hash, ',') FROM deletion_receipts",
            "SELECT COUNT(*)::TEXT FROM rate_events",
            "SELECT COUNT(*)::TEXT FROM invitation_events",
        ] {
            let value: Option<String> = client.query_one(query, &[]).await.unwrap().get(0);
            out.push((query, value.unwrap_or_default()));
        }
        out
    }

    /// The invitation purge alone, with nothing else for the runs to queue behind (the ended
    /// guests' invitations were used up, so they have no row): four runs at once, on two
    /// instances, succeed and purge each guest once between them.
    #[tokio::test]
    async fn invitation_purges_at_once_revoke_each_ended_guest_once() {
        let pool = seeded().await;
        pool.get()
            .await
            .unwrap()
            .batch_execute(
                "DELETE FROM invitations WHERE id = 'inv-old'; DELETE FROM rate_events; DELETE FROM invitation_events;",
            )
            .await
            .unwrap();
        let (a, b) = (purge_on(&pool).await, purge_on(&another_instance(&pool).await).await);
        let (a, b) = (a.invitations.store(), b.invitations.store());
        let runs = tokio::join!(a.purge(NOW), b.purge(NOW), a.purge(NOW), b.purge(NOW));
        let runs = [runs.0, runs.1, runs.2, runs.3].map(|run| run.expect("every run succeeds"));
        assert_eq!(runs.iter().map(|p| p.guests).sum::<usize>(), 3, "g1, res's access and the orphan g2: {runs:?}");
        let after = left(&pool).await;
        let value = |table: &str| after.iter().find(|(q, _)| q.contains(table)).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(value("FROM users"), "g3,res,ten");
        assert_eq!(value("revocation_version"), "4", "two new entries, numbered once each");
    }

    /// Four purges at once, two on each of two instances, leave exactly what one purge
    /// leaves: each ended guest revoked once, under one new revocation number per entry.
    #[tokio::test]
    async fn purges_at_once_on_two_instances_leave_what_one_purge_leaves() {
        let once = seeded().await;
        purge_on(&once).await.run_once().await;
        let expected = left(&once).await;

        let pool = seeded().await;
        let (a, b) = (purge_on(&pool).await, purge_on(&another_instance(&pool).await).await);
        tokio::join!(a.run_once(), b.run_once(), a.run_once(), b.run_once());
        let after = left(&pool).await;
        assert_eq!(after, expected);

        // And what one purge leaves is right: the ended guests and the orphan are gone, the
        // resident lost only the invited door, and two entries were listed (seq 3 and 4).
        let value = |table: &str| after.iter().find(|(q, _)| q.contains(table)).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(value("FROM users"), "g3,res,ten");
        assert_eq!(value("FROM guest_accesses"), "ga3");
        assert_eq!(value("FROM door_grants"), "dg3,dg4");
        assert_eq!(value("FROM access_events"), "1:-,3:ten", "g1's event anonymised, the old one purged");
        assert_eq!(value("WHERE actor LIKE"), "0", "g1's security event under a pseudonym");
        assert_eq!(value("FROM revoked_credentials"), format!("{}:2,{}:4", "b2".repeat(16), "a2".repeat(16)));
        assert_eq!(value("FROM revoked_device_keys"), format!("{}:3", "01".repeat(32)));
        assert_eq!(value("revocation_version"), "4", "bumped once per new entry");
        assert_eq!(value("FROM deletion_receipts"), "r-live");
        assert_eq!((value("FROM rate_events"), value("FROM invitation_events")), ("1".into(), "1".into()));
    }
}
