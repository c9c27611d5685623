//! PostgreSQL storage (feature `postgres`): connecting from a URL, a small connection pool,
//! and versioned migrations that several instances may start at once.
//!
//! Over TCP, connections use TLS whenever the server offers it, with its certificate
//! verified ([`tls`]); `sslmode=require` insists on it.

pub(crate) mod schema;
mod tls;

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, Config, NoTls, Transaction};

use crate::error::ApiError;

/// Any key, so that every instance migrating at once takes the same advisory lock.
const MIGRATION_LOCK: i64 = 0x706f_7274_615f_6d67; // "porta_mg"

/// What went wrong reaching or preparing the database. Holds no query parameters.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("the PostgreSQL URL is not valid")]
    InvalidUrl,
    #[error("TLS to PostgreSQL: {0}")]
    Tls(String),
    #[error("PostgreSQL: {0}")]
    Database(String),
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        PgError::Database(describe(&e))
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        ApiError::Internal(format!("database: {}", describe(&e)))
    }
}

impl From<PgError> for ApiError {
    fn from(e: PgError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// The error's SQLSTATE and message, never its DETAIL (which quotes the row's values).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// Whether the error is PostgreSQL refusing a row for a UNIQUE or PRIMARY KEY.
pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// Up to `max` connections, made on demand and reused. A broken connection is dropped and a
/// new one made on the next checkout.
#[derive(Clone)]
pub struct PgPool(Arc<PoolInner>);

struct PoolInner {
    config: Config,
    tls: tls::MakeRustls,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Client>>,
}

/// A connection out of the pool; it goes back when dropped.
pub struct PooledClient {
    client: Option<Client>,
    pool: Arc<PoolInner>,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for PooledClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for PooledClient {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("present until dropped")
    }
}

impl Drop for PooledClient {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if !client.is_closed() {
                if let Ok(mut idle) = self.pool.idle.lock() {
                    idle.push(client);
                }
            }
        }
    }
}

impl PgPool {
    /// A pool for `url` (`postgresql://user@host/db`, or `?host=/socket/dir`). Connects once to
    /// check the URL reaches a server.
    pub async fn connect(url: &str, max: usize) -> Result<PgPool, PgError> {
        let target = tls::target(url)?;
        Self::with_config(target.config, target.tls, max).await
    }

    async fn with_config(config: Config, tls: tls::MakeRustls, max: usize) -> Result<PgPool, PgError> {
        let pool = PgPool(Arc::new(PoolInner {
            config,
            tls,
            permits: Arc::new(Semaphore::new(max.max(1))),
            idle: Mutex::new(Vec::new()),
        }));
        drop(pool.get().await?);
        Ok(pool)
    }

    /// A connection, waiting while all `max` are in use.
    pub async fn get(&self) -> Result<PooledClient, PgError> {
        let permit =
            self.0.permits.clone().acquire_owned().await.map_err(|_| PgError::Database("pool closed".into()))?;
        let reused = {
            let mut idle = self.0.idle.lock().map_err(|_| PgError::Database("pool mutex poisoned".into()))?;
            std::iter::from_fn(|| idle.pop()).find(|c| !c.is_closed())
        };
        let client = match reused {
            Some(client) => client,
            None => {
                let (client, connection) = self.0.config.connect(self.0.tls.clone()).await?;
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::warn!(error = %describe(&e), "PostgreSQL connection ended");
                    }
                });
                client
            }
        };
        Ok(PooledClient { client: Some(client), pool: self.0.clone(), _permit: permit })
    }
}

/// Applies the migrations in [`schema::MIGRATIONS`] not yet recorded in `schema_migrations`,
/// each in its own transaction, under an advisory lock: instances starting together take turns,
/// and each later one finds the work done.
pub async fn migrate(pool: &PgPool) -> Result<(), PgError> {
    let mut client = pool.get().await?;
    // Under the lock too: instances creating the table at once would otherwise collide in
    // the catalog (a unique violation, or "type already exists").
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .await?;
    tx.commit().await?;
    for (index, sql) in schema::MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        let applied = tx.query_opt("SELECT 1 FROM schema_migrations WHERE version = $1", &[&version]).await?;
        if applied.is_none() {
            tx.batch_execute(sql).await?;
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
            tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", &[&version, &now])
                .await?;
            tracing::info!(version, "applied PostgreSQL migration");
        }
        tx.commit().await?;
    }
    Ok(())
}

/// The server's own 32-byte secret called `name`, made on first use; every instance on the
/// database gets the same one.
pub(crate) async fn server_secret(client: &Client, name: &str) -> Result<[u8; 32], ApiError> {
    use rand::RngCore as _;
    let mut fresh = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut fresh);
    client
        .execute(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &fresh.as_slice()],
        )
        .await?;
    let stored: Vec<u8> = client.query_one("SELECT value FROM server_secrets WHERE name = $1", &[&name]).await?.get(0);
    stored.try_into().map_err(|_| ApiError::Internal(format!("stored server secret {name} is malformed")))
}

/// Waits for the transaction-scoped advisory lock on `key` in `bucket` and holds it until the
/// transaction ends: what several instances decide about one key (a rate slot, a tenant's
/// cap) they decide one after another. Two keys hashing alike only take turns needlessly.
pub(crate) async fn lock_key(
    client: &impl tokio_postgres::GenericClient,
    bucket: &str,
    key: &str,
) -> Result<(), tokio_postgres::Error> {
    client.execute("SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0))", &[&bucket, &key]).await?;
    Ok(())
}

/// Housekeeping inside a request: deletes the rows of `table` matching `filter` (expired
/// ones) that no other transaction holds. Another instance's request working on one of them
/// is neither waited for nor deadlocked with; a row skipped now goes with a later request.
/// Only for rows every reader already ignores once expired.
pub(crate) async fn delete_expired(
    client: &impl tokio_postgres::GenericClient,
    table: &str,
    filter: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            &format!(
                "DELETE FROM {table} WHERE ctid = ANY(ARRAY(
                     SELECT ctid FROM {table} WHERE {filter} FOR UPDATE SKIP LOCKED))"
            ),
            params,
        )
        .await
}

/// Takes the transaction-scoped advisory lock of the periodic job `job` if no one holds it:
/// `false` means another instance is running the job right now, so this one may skip it.
pub(crate) async fn try_lock_job(
    client: &impl tokio_postgres::GenericClient,
    job: &str,
) -> Result<bool, tokio_postgres::Error> {
    let row = client.query_one("SELECT pg_try_advisory_xact_lock(hashtextextended('job:' || $1, 0))", &[&job]).await?;
    Ok(row.get(0))
}

/// Takes one of `limit` slots per `window` seconds for `key` in `bucket` (sliding window), or
/// answers `RateLimited` with the wait, as the SQLite backend does. An advisory lock on the
/// bucket and key makes concurrent takers (other instances too) count one after another.
pub(crate) async fn take_rate_slot(
    tx: &Transaction<'_>,
    bucket: &str,
    key: &str,
    limit: u32,
    now: i64,
    window: i64,
) -> Result<(), ApiError> {
    lock_key(tx, bucket, key).await?;
    tx.execute(
        "DELETE FROM rate_events WHERE bucket = $1 AND key = $2 AND at <= $3",
        &[&bucket, &key, &(now - window)],
    )
    .await?;
    let row = tx
        .query_one(
            "SELECT COUNT(*), MIN(at) FROM rate_events WHERE bucket = $1 AND key = $2 AND at > $3",
            &[&bucket, &key, &(now - window)],
        )
        .await?;
    let (count, oldest): (i64, Option<i64>) = (row.get(0), row.get(1));
    let wait = match oldest {
        Some(oldest) if count >= i64::from(limit) => Some((oldest + window - now).max(1)),
        None if limit == 0 => Some(window.max(1)),
        _ => None,
    };
    if let Some(retry_after_s) = wait {
        return Err(ApiError::RateLimited { retry_after_s });
    }
    tx.execute("INSERT INTO rate_events (bucket, key, at) VALUES ($1, $2, $3)", &[&bucket, &key, &now]).await?;
    Ok(())
}

/// For the tests of this crate and of others (integration tests, the load benchmarks): fresh
/// databases on the cluster `PORTA_TEST_POSTGRES_URL` names. Not for production use.
#[doc(hidden)]
pub mod testing {
    pub use tokio_postgres;

    use super::*;

    /// The cluster's URL, or a panic saying how to get one.
    pub fn cluster_url() -> String {
        let url = std::env::var("PORTA_TEST_POSTGRES_URL").unwrap_or_default();
        assert!(
            !url.is_empty(),
            "run `cargo xtask test`, or set PORTA_TEST_POSTGRES_URL to a PostgreSQL you may create databases on"
        );
        url
    }

    /// `url` with its database name replaced by `name` (the query, e.g. `?host=…`, kept).
    pub fn with_database(url: &str, name: &str) -> String {
        let (head, query) = match url.split_once('?') {
            Some((head, query)) => (head, Some(query)),
            None => (url, None),
        };
        let authority_start = head.find("://").map_or(0, |i| i + 3);
        let base = match head[authority_start..].find('/') {
            Some(i) => &head[..authority_start + i],
            None => head,
        };
        match query {
            Some(query) => format!("{base}/{name}?{query}"),
            None => format!("{base}/{name}"),
        }
    }

    /// Creates an empty database of its own on the cluster; its URL.
    pub async fn fresh_database_url() -> String {
        let url = cluster_url();
        let admin_config = Config::from_str(&url).expect("PORTA_TEST_POSTGRES_URL is a PostgreSQL URL");
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let (client, connection) = admin_config.connect(NoTls).await.expect("the test cluster accepts connections");
        let task = tokio::spawn(connection);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("may create a database");
        drop(client);
        let _ = task.await;
        with_database(&url, &name)
    }

    /// A plain connection to `url`, for tests that look inside the database.
    pub async fn connect(url: &str) -> Client {
        let (client, connection) = Config::from_str(url)
            .expect("a PostgreSQL URL")
            .connect(NoTls)
            .await
            .expect("the database accepts connections");
        tokio::spawn(connection);
        client
    }

    #[test]
    fn the_database_name_is_replaced_and_the_socket_kept() {
        assert_eq!(
            with_database("postgresql://porta@/postgres?host=/tmp/x/sock", "t_1"),
            "postgresql://porta@/t_1?host=/tmp/x/sock"
        );
        assert_eq!(with_database("postgres://u:p@db:5432/porta", "t_2"), "postgres://u:p@db:5432/t_2");
        assert_eq!(with_database("postgres://db", "t_3"), "postgres://db/t_3");
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Fresh databases on the test cluster for the backends' suites.

    use super::*;

    /// A new, migrated database of its own on the cluster `PORTA_TEST_POSTGRES_URL` names.
    pub async fn fresh_database() -> PgPool {
        let url = super::testing::fresh_database_url().await;
        let pool = PgPool::connect(&url, 4).await.expect("the fresh database accepts connections");
        migrate(&pool).await.expect("migrations apply");
        pool
    }

    /// A pool of its own on the same database: what a second server instance would have.
    pub async fn another_instance(pool: &PgPool) -> PgPool {
        PgPool::with_config(pool.0.config.clone(), pool.0.tls.clone(), 4)
            .await
            .expect("the database accepts connections")
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::fresh_database;
    use super::*;

    /// Several instances starting at once on one database migrate it once, in order.
    #[tokio::test]
    async fn instances_migrating_at_once_apply_each_migration_once() {
        let pool = fresh_database().await;
        let runs = (0..4).map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { migrate(&pool).await })
        });
        for run in runs {
            run.await.unwrap().unwrap();
        }
        let client = pool.get().await.unwrap();
        let versions: Vec<i64> = client
            .query("SELECT version FROM schema_migrations ORDER BY version", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(versions, (1..=schema::MIGRATIONS.len() as i64).collect::<Vec<_>>());
    }

    /// The schema keeps SQLite's rules: a guest has no contact data, a role is global or of
    /// one site, and an account's rows go with it.
    #[tokio::test]
    async fn the_schema_keeps_the_checks_and_cascades() {
        let pool = fresh_database().await;
        let client = pool.get().await.unwrap();
        client
            .batch_execute(
                "INSERT INTO sites (id, name, address) VALUES ('s1', 'Site', 'Street 1');
                 INSERT INTO users (id, email, created_at, updated_at) VALUES ('u1', 'a@example.com', 1, 1);
                 INSERT INTO sessions (id, user_id, device_name, ip, created_at, last_seen_at)
                     VALUES ('s1', 'u1', 'Phone', '127.0.0.1', 1, 1);",
            )
            .await
            .unwrap();
        let insert = |sql: &'static str| {
            let client = &client;
            async move { client.batch_execute(sql).await }
        };
        assert!(insert("INSERT INTO users (id, created_at, updated_at) VALUES ('r', 1, 1)").await.is_err());
        assert!(insert(
            "INSERT INTO users (id, email, created_at, updated_at, kind, expires_at) VALUES ('x', 'x@e.com', 1, 1, 'guest', 9)"
        )
        .await
        .is_err());
        assert!(insert(
            "INSERT INTO users (id, created_at, updated_at, kind, expires_at) VALUES ('g', 1, 1, 'guest', 9)"
        )
        .await
        .is_ok());
        assert!(insert("INSERT INTO roles (user_id, role, site_id, granted_at) VALUES ('u1', 'operator', 's1', 1)")
            .await
            .is_err());
        assert!(insert("INSERT INTO roles (user_id, role, site_id, granted_at) VALUES ('u1', 'operator', NULL, 1)")
            .await
            .is_ok());
        let duplicate = client
            .batch_execute("INSERT INTO roles (user_id, role, site_id, granted_at) VALUES ('u1', 'operator', NULL, 2)")
            .await
            .unwrap_err();
        assert!(is_unique_violation(&duplicate), "one operator role per account");
        client.batch_execute("DELETE FROM users WHERE id = 'u1'").await.unwrap();
        let left: i64 = client
            .query_one("SELECT (SELECT COUNT(*) FROM sessions) + (SELECT COUNT(*) FROM roles)", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "sessions and roles go with the account");
    }

    /// Over TCP the server's certificate is checked, for the host the URL names, and a
    /// session that is not TLS is not made; over TLS everything works as over the socket.
    #[tokio::test]
    async fn tls_connections_verify_the_server_and_its_name() {
        let url = std::env::var("PORTA_TEST_POSTGRES_TLS_URL").expect("run `cargo xtask test`: the cluster's TLS URL");
        let ca = std::env::var("PORTA_TEST_POSTGRES_CA").expect("the test cluster's CA");
        let verified = format!("{url}?sslmode=verify-full&sslrootcert={ca}");
        let pool = PgPool::connect(&verified, 2).await.expect("TLS with the CA");
        let client = pool.get().await.unwrap();
        let ssl: bool =
            client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap().get(0);
        assert!(ssl, "the session is encrypted");

        let unknown_ca = PgPool::connect(&format!("{url}?sslmode=require"), 1).await.err().expect("refused");
        assert!(unknown_ca.to_string().to_lowercase().contains("certificate"), "{unknown_ca}");
        let by_ip = verified.replace("@localhost:", "@127.0.0.1:");
        let wrong_name = PgPool::connect(&by_ip, 1).await.err().expect("the certificate is for localhost only");
        assert!(wrong_name.to_string().to_lowercase().contains("certificate"), "{wrong_name}");
        let plain =
            PgPool::connect(&format!("{url}?sslmode=disable"), 1).await.err().expect("the server takes TLS only");
        assert!(plain.to_string().contains("28000"), "pg_hba refuses it: {plain}");
    }

    /// Twenty takers at once, on several connections (as several instances would be), get
    /// exactly the limit's slots: the count and the insert do not interleave.
    #[tokio::test]
    async fn concurrent_takers_get_exactly_the_limit() {
        let pool = fresh_database().await;
        let takers = (0..20).map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut client = pool.get().await.unwrap();
                let tx = client.transaction().await.unwrap();
                let taken = take_rate_slot(&tx, "test", "k1", 5, 1_000, 60).await;
                tx.commit().await.unwrap();
                taken
            })
        });
        let mut granted = 0;
        for taker in takers {
            match taker.await.unwrap() {
                Ok(()) => granted += 1,
                Err(e) => assert_eq!(e.code(), "rate_limited"),
            }
        }
        assert_eq!(granted, 5);
    }
}
