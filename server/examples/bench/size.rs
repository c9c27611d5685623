//! `bench size`: a database seeded by SQL with residents, their grants and credentials, and
//! access events spread over each door's retention, timed at a small and at the full size
//! through the server's own stores, with the query plans at full size.
//!
//! The shape: sites of 1000 residents with four doors each (every fourth door keeps events
//! 30 days, the others 90), one grant and one credential per resident, and events spread
//! evenly over the residents and over their door's retention window. The purge is timed as
//! the hourly job meets it: each run one hour later than the last, so each deletes the hour
//! of events that just expired.

use std::time::{Duration, Instant};

use porta_server::access::store::{AccessStore, NewAccessEvent};
use porta_server::partner::store::{LogQuery, PartnerStore};

use crate::{flag, Result, Sample};

const RESIDENTS_PER_SITE: i64 = 1000;
const DOORS_PER_SITE: i64 = 4;
const SMALL: (i64, i64) = (1_000, 10_000);

/// The resident's own log, as `GET /v1/me/access-log` reads it (access/{sqlite,postgres}.rs).
const USER_EVENTS: &str = "SELECT e.door_number, d.name, e.at, e.decision FROM access_events e
     LEFT JOIN doors d ON d.number = e.door_number
     WHERE e.user_id = $1 AND e.at >= $2 - 86400 * COALESCE(d.log_retention_days,
           (SELECT MAX(log_retention_days) FROM doors), $3::BIGINT)
     ORDER BY e.at DESC, e.id DESC LIMIT $4";
/// The retention part of the same answer.
const USER_RETENTION: &str = "SELECT number, name, log_retention_days FROM doors WHERE number IN (
     SELECT door_number FROM door_grants WHERE user_id = $1
     UNION SELECT door_number FROM access_events WHERE user_id = $1)
     ORDER BY number";
/// The purge's statements (access/{sqlite,postgres}.rs `purge_expired`): the events of the
/// doors of one retention, those of no door, and expired credentials.
const PURGE_EVENTS: &str = "DELETE FROM access_events
     WHERE door_number IN (SELECT number FROM doors WHERE log_retention_days = $1) AND at < $2";
const PURGE_NO_DOOR: &str = "DELETE FROM access_events WHERE at < $1
     AND (door_number IS NULL OR NOT EXISTS (SELECT 1 FROM doors d WHERE d.number = access_events.door_number))";
const PURGE_CREDENTIALS: &str = "DELETE FROM credentials WHERE not_after < $1";
/// The site's events as the partner API pages them (partner/{sqlite,postgres}.rs).
const SITE_EVENTS: &str = "SELECT e.id, e.at, e.door_number, d.name, e.decision, e.user_id FROM access_events e
     JOIN doors d ON d.number = e.door_number
     WHERE d.site_id = $1 AND e.at >= $2 - 86400 * d.log_retention_days
       AND ($3::BIGINT IS NULL OR e.at >= $3) AND ($4::BIGINT IS NULL OR e.id < $4)
     ORDER BY e.id DESC LIMIT $5";

pub async fn run(args: &[String]) -> Result {
    let backends = flag(args, "--backends").unwrap_or("sqlite,pg");
    let residents: i64 = flag(args, "--residents").unwrap_or("100000").parse().map_err(|_| "--residents N")?;
    let events: i64 = flag(args, "--events").unwrap_or("1000000").parse().map_err(|_| "--events N")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for backend in backends.split(',') {
        let mut db = match backend {
            "sqlite" => Seeded::sqlite(&dir.path().join("size.db"))?,
            "pg" => Seeded::postgres().await?,
            other => return Err(format!("unknown backend {other}: sqlite or pg")),
        };
        let now = crate::now();
        for (stage_residents, stage_events) in [SMALL, (residents, events)] {
            let started = Instant::now();
            db.seed(stage_residents, stage_events, now).await?;
            eprintln!(
                "bench: {backend}: seeded {stage_residents} residents, {stage_events} events in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            for row in db.time(backend, stage_residents, stage_events, now).await? {
                eprintln!("{}", row.markdown());
                rows.push(row);
            }
        }
        println!("\n### {backend}: query plans at {residents} residents, {events} events\n");
        println!("{}", db.plans(now).await?);
    }
    println!("| backend | residents | events | operation | runs | p50 ms | p99 ms |");
    println!("|---|---:|---:|---|---:|---:|---:|");
    for row in &rows {
        println!("{}", row.markdown());
    }
    Ok(())
}

struct Row {
    backend: String,
    residents: i64,
    events: i64,
    operation: String,
    sample: Sample,
}

impl Row {
    fn markdown(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.2} |",
            self.backend,
            self.residents,
            self.events,
            self.operation,
            self.sample.durations.len(),
            self.sample.quantile_ms(0.50),
            self.sample.quantile_ms(0.99)
        )
    }
}

/// Sites holding `residents`, 1000 to a site.
fn sites_for(residents: i64) -> i64 {
    (residents + RESIDENTS_PER_SITE - 1) / RESIDENTS_PER_SITE
}

/// A database of one backend, its stores, and how far it is seeded.
struct Seeded {
    backend: Backend,
    access: Box<dyn AccessStore>,
    partner: Box<dyn PartnerStore>,
    residents: i64,
    events: i64,
    /// Lock ids of the batches the ingest rows store, so none is a duplicate.
    next_lock: u32,
}

enum Backend {
    Sqlite(rusqlite::Connection),
    Postgres(porta_server::pg::testing::tokio_postgres::Client),
}

impl Seeded {
    fn sqlite(path: &std::path::Path) -> Result<Seeded> {
        let store_conn = porta_server::db::open(path).map_err(|e| e.to_string())?;
        let db = porta_server::db::Db::new(store_conn);
        let seed = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
        seed.busy_timeout(Duration::from_secs(30)).map_err(|e| e.to_string())?;
        Ok(Seeded {
            backend: Backend::Sqlite(seed),
            access: Box::new(porta_server::access::sqlite::SqliteAccessStore::new(db.clone())),
            partner: Box::new(porta_server::partner::sqlite::SqlitePartnerStore::new(db)),
            residents: 0,
            events: 0,
            next_lock: 1_000_000,
        })
    }

    async fn postgres() -> Result<Seeded> {
        let url = porta_server::pg::testing::fresh_database_url().await;
        let pool = porta_server::pg::PgPool::connect(&url, 4).await.map_err(|e| e.to_string())?;
        porta_server::pg::migrate(&pool).await.map_err(|e| e.to_string())?;
        let client = porta_server::pg::testing::connect(&url).await;
        Ok(Seeded {
            backend: Backend::Postgres(client),
            access: Box::new(porta_server::access::postgres::PgAccessStore::new(pool.clone())),
            partner: Box::new(porta_server::partner::postgres::PgPartnerStore::new(pool)),
            residents: 0,
            events: 0,
            next_lock: 1_000_000,
        })
    }

    /// Adds sites, doors, residents (with a grant and a credential each) and events up to the
    /// given totals. Event `i` is resident `i % residents`'s, at one of their site's doors, at
    /// a time spread over that door's retention.
    async fn seed(&mut self, residents: i64, events: i64, now: i64) -> Result {
        let (r0, e0) = (self.residents, self.events);
        let (s0, s1) = (sites_for(r0), sites_for(residents));
        let (d0, d1) = (s0 * DOORS_PER_SITE, s1 * DOORS_PER_SITE);
        match &mut self.backend {
            Backend::Sqlite(conn) => {
                let sql = format!(
                    "BEGIN;
                     INSERT INTO sites (id, name, address)
                         WITH RECURSIVE n(i) AS (SELECT {s0} UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {s1})
                         SELECT 'site' || i, 'Site ' || i, '' FROM n WHERE i < {s1};
                     INSERT INTO doors (id, site_id, name, number, log_retention_days)
                         WITH RECURSIVE n(i) AS (SELECT {d0} UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {d1})
                         SELECT 'door' || (i + 1), 'site' || (i / {DOORS_PER_SITE}), 'Door ' || (i + 1), i + 1,
                                CASE WHEN (i + 1) % 4 = 0 THEN 30 ELSE 90 END FROM n WHERE i < {d1};
                     INSERT INTO users (id, name, email, created_at, updated_at)
                         WITH RECURSIVE n(i) AS (SELECT {r0} UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {residents})
                         SELECT 'r' || i, 'Resident', 'r' || i || '@size.example', {now}, {now} FROM n;
                     INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, created_at)
                         WITH RECURSIVE n(i) AS (SELECT {r0} UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {residents})
                         SELECT 'g' || i, 'r' || i, (i / {RESIDENTS_PER_SITE}) * {DOORS_PER_SITE} + 1, 0,
                                {forever}, {now} FROM n;
                     INSERT INTO credentials (id, site_id, user_id, session_id, device_key, not_before, not_after, issued_at)
                         WITH RECURSIVE n(i) AS (SELECT {r0} UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {residents})
                         SELECT CAST(printf('%016d', i) AS BLOB), 'site' || (i / {RESIDENTS_PER_SITE}), 'r' || i,
                                's' || i, zeroblob(32), {now} - 86400, {now} + 86400, {now} - 86400 FROM n;
                     INSERT INTO access_events (lock_id, counter, door_number, credential_id, user_id, decision, at,
                                                received_at, record)
                         WITH RECURSIVE n(i) AS (SELECT {e0} UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {events}),
                         e(i, resident, door) AS (
                             SELECT i, i % {residents},
                                    (i % {residents}) / {RESIDENTS_PER_SITE} * {DOORS_PER_SITE} + 1 + i % {DOORS_PER_SITE}
                             FROM n)
                         SELECT door, i, door, CAST(printf('%016d', resident) AS BLOB), 'r' || resident, 0,
                                {now} - (i * 2654435761) % (86400 * CASE WHEN door % 4 = 0 THEN 30 ELSE 90 END),
                                {now}, zeroblob(102)
                         FROM e;
                     COMMIT;",
                    forever = porta_server::demo::FOREVER,
                );
                conn.execute_batch(&sql).map_err(|e| format!("seeding SQLite: {e}"))?;
            }
            Backend::Postgres(client) => {
                let sql = format!(
                    "BEGIN;
                     INSERT INTO sites (id, name, address)
                         SELECT 'site' || i, 'Site ' || i, '' FROM generate_series({s0}, {s1} - 1) i;
                     INSERT INTO doors (id, site_id, name, number, log_retention_days)
                         SELECT 'door' || (i + 1), 'site' || (i / {DOORS_PER_SITE}), 'Door ' || (i + 1), i + 1,
                                CASE WHEN (i + 1) % 4 = 0 THEN 30 ELSE 90 END FROM generate_series({d0}, {d1} - 1) i;
                     INSERT INTO users (id, name, email, created_at, updated_at)
                         SELECT 'r' || i, 'Resident', 'r' || i || '@size.example', {now}, {now}
                         FROM generate_series({r0}, {residents} - 1) i;
                     INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, created_at)
                         SELECT 'g' || i, 'r' || i, (i / {RESIDENTS_PER_SITE}) * {DOORS_PER_SITE} + 1, 0, {forever}, {now}
                         FROM generate_series({r0}, {residents} - 1) i;
                     INSERT INTO credentials (id, site_id, user_id, session_id, device_key, not_before, not_after, issued_at)
                         SELECT convert_to(lpad(i::TEXT, 16, '0'), 'UTF8'), 'site' || (i / {RESIDENTS_PER_SITE}), 'r' || i,
                                's' || i, decode(repeat('00', 32), 'hex'), {now} - 86400, {now} + 86400, {now} - 86400
                         FROM generate_series({r0}, {residents} - 1) i;
                     INSERT INTO access_events (lock_id, counter, door_number, credential_id, user_id, decision, at,
                                                received_at, record)
                         SELECT door, i, door, convert_to(lpad(resident::TEXT, 16, '0'), 'UTF8'), 'r' || resident, 0,
                                {now} - (i * 2654435761) % (86400 * CASE WHEN door % 4 = 0 THEN 30 ELSE 90 END),
                                {now}, decode(repeat('00', 102), 'hex')
                         FROM (SELECT i, i % {residents} AS resident,
                                      (i % {residents}) / {RESIDENTS_PER_SITE} * {DOORS_PER_SITE} + 1 + i % {DOORS_PER_SITE} AS door
                               FROM generate_series({e0}::BIGINT, {events} - 1) i) e;
                     COMMIT;",
                    forever = porta_server::demo::FOREVER,
                );
                client.batch_execute(&sql).await.map_err(|e| format!("seeding PostgreSQL: {e}"))?;
                // On its own: a multi-statement query string is one transaction, which VACUUM refuses.
                client.batch_execute("VACUUM ANALYZE").await.map_err(|e| format!("seeding PostgreSQL: {e}"))?;
            }
        }
        self.residents = residents;
        self.events = events;
        Ok(())
    }

    /// The rows at the current size: a resident's log and retention (200 residents), a site's
    /// first page (50 sites), an ingest batch through the store (20 batches of 100), and five
    /// hourly purges.
    async fn time(&mut self, backend: &str, residents: i64, events: i64, now: i64) -> Result<Vec<Row>> {
        let row = |operation: &str, sample| Row {
            backend: backend.to_owned(),
            residents,
            events,
            operation: operation.to_owned(),
            sample,
        };
        let resident = |k: i64| format!("r{}", (k * 7919) % residents);
        let mut rows = Vec::new();

        let mut times = Vec::new();
        let started = Instant::now();
        for k in 0..200 {
            let t = Instant::now();
            let log = self.access.user_events(&resident(k), now, 1000).await.map_err(|e| e.to_string())?;
            times.push(t.elapsed());
            if log.is_empty() {
                return Err(format!("{backend}: resident {} has no events", resident(k)));
            }
        }
        rows.push(row(
            "resident's log (user_events, limit 1000)",
            Sample { durations: times, wall: started.elapsed() },
        ));

        let mut times = Vec::new();
        let started = Instant::now();
        for k in 0..200 {
            let t = Instant::now();
            self.access.user_retention(&resident(k)).await.map_err(|e| e.to_string())?;
            times.push(t.elapsed());
        }
        rows.push(row("resident's retention (user_retention)", Sample { durations: times, wall: started.elapsed() }));

        let sites = sites_for(residents);
        let mut times = Vec::new();
        let started = Instant::now();
        for k in 0..50 {
            let query = LogQuery { since: None, before: None, limit: 100, now };
            let t = Instant::now();
            let page = self
                .partner
                .access_log(&format!("site{}", (k * 31) % sites), query)
                .await
                .map_err(|e| e.to_string())?;
            times.push(t.elapsed());
            if page.is_empty() {
                return Err(format!("{backend}: a site without events"));
            }
        }
        rows.push(row(
            "site's events, first page of 100 (partner access_log)",
            Sample { durations: times, wall: started.elapsed() },
        ));

        let mut times = Vec::new();
        let started = Instant::now();
        for k in 0..20 {
            let lock_id = self.next_lock;
            self.next_lock += 1;
            let batch = (0..100)
                .map(|c| {
                    let owner = (k * 100 + c) % residents;
                    let mut credential_id = [0u8; 16];
                    credential_id.copy_from_slice(format!("{owner:016}").as_bytes());
                    NewAccessEvent {
                        lock_id,
                        counter: c + 1,
                        door: Some(((owner / RESIDENTS_PER_SITE) * DOORS_PER_SITE + 1) as u32),
                        credential_id,
                        decision: 0,
                        at: now - 60,
                        record: vec![0; 102],
                    }
                })
                .collect();
            let t = Instant::now();
            let stored = self.access.store_events(batch, now).await.map_err(|e| e.to_string())?;
            times.push(t.elapsed());
            if !stored.iter().all(|s| *s) {
                return Err(format!("{backend}: an ingest batch was not all stored"));
            }
        }
        rows.push(row("ingest 100 events (store_events)", Sample { durations: times, wall: started.elapsed() }));

        let mut times = Vec::new();
        let mut deleted = 0;
        let started = Instant::now();
        for hour in 1..=5 {
            let t = Instant::now();
            deleted += self.access.purge_expired(now + hour * 3600).await.map_err(|e| e.to_string())?;
            times.push(t.elapsed());
        }
        let purge = format!("hourly purge (purge_expired; {deleted} events in 5 runs)");
        rows.push(row(&purge, Sample { durations: times, wall: started.elapsed() }));
        Ok(rows)
    }

    /// The plans of the log reads and of the purge's statements, at the current size.
    async fn plans(&mut self, now: i64) -> Result<String> {
        // The 90-day doors' cutoff, and the longest retention's (also 90 days).
        let cutoff = now - 90 * 86_400;
        let days = 90i64;
        let mut out = String::new();
        match &mut self.backend {
            Backend::Sqlite(conn) => {
                let sqlite = |sql: &str| sql.replace("::BIGINT", "").replace('$', "?");
                let retention = porta_server::access::DEFAULT_RETENTION_DAYS;
                let queries: [(&str, String, Vec<rusqlite::types::Value>); 6] = [
                    (
                        "resident's log",
                        sqlite(USER_EVENTS),
                        vec!["r4242".to_owned().into(), now.into(), retention.into(), 1000i64.into()],
                    ),
                    ("resident's retention", sqlite(USER_RETENTION), vec!["r4242".to_owned().into()]),
                    (
                        "site's events",
                        sqlite(SITE_EVENTS),
                        vec![
                            "site42".to_owned().into(),
                            now.into(),
                            rusqlite::types::Value::Null,
                            rusqlite::types::Value::Null,
                            100i64.into(),
                        ],
                    ),
                    ("purge: the 90-day doors' events", sqlite(PURGE_EVENTS), vec![days.into(), cutoff.into()]),
                    ("purge: events of no door", sqlite(PURGE_NO_DOOR), vec![cutoff.into()]),
                    ("purge: credentials", sqlite(PURGE_CREDENTIALS), vec![cutoff.into()]),
                ];
                for (name, sql, params) in queries {
                    let mut stmt =
                        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).map_err(|e| format!("{name}: {e}"))?;
                    let rows = stmt
                        .query_map(rusqlite::params_from_iter(params), |r| {
                            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(3)?))
                        })
                        .map_err(|e| e.to_string())?
                        .collect::<rusqlite::Result<Vec<_>>>()
                        .map_err(|e| e.to_string())?;
                    out.push_str(&format!("{name}:\n```\n"));
                    // Indent each step under its parent, as the sqlite3 shell does.
                    let mut depth: Vec<(i64, usize)> = Vec::new();
                    for (id, parent, detail) in rows {
                        let level = depth.iter().find(|(i, _)| *i == parent).map_or(0, |(_, l)| l + 1);
                        depth.push((id, level));
                        out.push_str(&format!("{}{detail}\n", "  ".repeat(level)));
                    }
                    out.push_str("```\n");
                }
            }
            Backend::Postgres(client) => {
                use porta_server::pg::testing::tokio_postgres::types::ToSql;
                let null: Option<i64> = None;
                let (limit, page) = (1000i64, 100i64);
                let retention = porta_server::access::DEFAULT_RETENTION_DAYS;
                let (user, site) = ("r4242", "site42");
                let queries: [(&str, &str, Vec<&(dyn ToSql + Sync)>); 6] = [
                    ("resident's log", USER_EVENTS, vec![&user, &now, &retention, &limit]),
                    ("resident's retention", USER_RETENTION, vec![&user]),
                    ("site's events", SITE_EVENTS, vec![&site, &now, &null, &null, &page]),
                    ("purge: the 90-day doors' events", PURGE_EVENTS, vec![&days, &cutoff]),
                    ("purge: events of no door", PURGE_NO_DOOR, vec![&cutoff]),
                    ("purge: credentials", PURGE_CREDENTIALS, vec![&cutoff]),
                ];
                for (name, sql, params) in queries {
                    // ANALYZE runs the statement: the purge's DELETEs are rolled back.
                    let tx = client.transaction().await.map_err(|e| e.to_string())?;
                    let rows = tx
                        .query(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"), &params)
                        .await
                        .map_err(|e| format!("{name}: {e}"))?;
                    tx.rollback().await.map_err(|e| e.to_string())?;
                    out.push_str(&format!("{name}:\n```\n"));
                    for row in rows {
                        out.push_str(&row.get::<_, String>(0));
                        out.push('\n');
                    }
                    out.push_str("```\n");
                }
            }
        }
        Ok(out)
    }
}
