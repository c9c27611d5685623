//! Porta reference backend: the HTTP API the core, the demo and the integration tests run
//! against. axum over one SQLite file (the embedded default), or over PostgreSQL (feature
//! `postgres`) with as many identical instances as the load needs.
//!
//! Start it in-process with [`start`]; the `porta-server` binary is a thin wrapper.

pub mod access;
pub mod admin;
pub mod auth;
pub mod authority;
pub mod client_ip;
pub mod clock;
pub mod db;
pub mod deletion_page;
pub mod delivery;
pub mod demo;
pub mod dev_outbox;
pub mod devices;
pub mod doors;
pub mod error;
pub mod identity;
pub mod invitations;
pub mod openapi;
pub mod partner;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod privacy;
pub mod profile;
pub mod security_log;
mod serve;
pub mod site_time;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clock::{Clock, SystemClock};
use crate::db::Db;
use crate::dev_outbox::{CodeSender, DevOutbox, UndeliveredCodes};

pub use crate::error::ApiError;

/// Email of the seeded demo resident (see [`Config::demo`]).
pub const DEMO_RESIDENT_EMAIL: &str = "ada@demo.porta.app";
/// Email of the seeded demo site admin (see [`Config::demo`]).
pub const DEMO_ADMIN_EMAIL: &str = "admin@demo.porta.app";
/// The demo building's site id (its doors are 1, 2 and 3).
pub const DEMO_SITE_ID: &str = demo::SITE_ID;

/// Cap for JSON bodies; nothing legitimate comes close.
const JSON_BODY_LIMIT: usize = 64 * 1024;
/// Axum's own limit on the picture route sits a little above ours, so an oversized picture is
/// answered by our handler in the JSON error shape.
const PICTURE_BODY_LIMIT: usize = profile::MAX_PICTURE_BYTES + 64 * 1024;
/// A full batch of access events (500 base64 records) is about 90 KiB.
const ACCESS_EVENTS_BODY_LIMIT: usize = 256 * 1024;
/// How long [`RunningServer::shutdown`] waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Abuse and lifetime limits. Durations that follow the server's [`Clock`] are in seconds;
/// connection timeouts run on the runtime's timer and are [`Duration`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Lifetime of a one-time code.
    pub code_ttl_s: i64,
    /// Wrong guesses allowed before the code is dead.
    pub code_max_attempts: u32,
    /// Code requests per identifier per window.
    pub code_requests_per_identifier: u32,
    /// Code requests per client IP per window.
    pub code_requests_per_ip: u32,
    pub rate_window_s: i64,
    pub access_ttl_s: i64,
    pub refresh_ttl_s: i64,
    /// Requests per device and hour that may mint new door credentials (others reuse).
    pub credential_issues_per_hour: u32,
    /// Time for a client to send a request head; also the longest an idle keep-alive
    /// connection stays open.
    pub header_read_timeout: Duration,
    /// Time from the request head to the response, reading the body included (`408`). The
    /// default lets a 2 MiB picture arrive at 300 kbit/s.
    pub request_timeout: Duration,
    /// How long a response write may make no progress before the connection is closed.
    pub send_timeout: Duration,
    /// Open connections at most; more are closed at once.
    pub max_connections: usize,
    /// Unknown invitation tokens one client address may try per `rate_window_s`.
    pub invitation_lookups_per_ip: u32,
    /// Open connections at most from one client address (an IPv6 /64). Behind a reverse
    /// proxy every client has the proxy's address: raise it to `max_connections` there.
    pub max_connections_per_ip: usize,
    /// Admin changes one admin may make per `rate_window_s`.
    pub admin_writes_per_window: u32,
    /// Partner API reads one partner key may make per `partner_window_s`.
    pub partner_reads_per_window: u32,
    pub partner_window_s: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            code_ttl_s: 600,
            code_max_attempts: 5,
            code_requests_per_identifier: 5,
            code_requests_per_ip: 50,
            rate_window_s: 600,
            access_ttl_s: 900,
            refresh_ttl_s: 30 * 24 * 3600,
            credential_issues_per_hour: 10,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(30),
            max_connections: 512,
            max_connections_per_ip: 64,
            invitation_lookups_per_ip: 20,
            admin_writes_per_window: 300,
            partner_reads_per_window: 60,
            partner_window_s: 60,
        }
    }
}

/// Where the server keeps its data. `Debug` leaves the PostgreSQL URL out: it may hold a
/// password.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// One SQLite file; one instance. Nothing to set up.
    Sqlite(PathBuf),
    /// PostgreSQL (`postgresql://user@host/db`, or `?host=/socket/dir`), shared by every
    /// instance. Needs the `postgres` feature and an [`Config::authority_secret`].
    Postgres {
        url: String,
        /// Connections this instance holds at most.
        max_connections: usize,
    },
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Database::Postgres { max_connections, .. } => {
                f.debug_struct("Postgres").field("max_connections", max_connections).finish_non_exhaustive()
            }
        }
    }
}

/// Connections each instance keeps to PostgreSQL by default.
pub const DEFAULT_PG_CONNECTIONS: usize = 16;

#[derive(Clone)]
pub struct Config {
    pub database: Database,
    /// The operator's secret every site's authority key is derived from, the same for every
    /// instance ([`authority::keys`]). Without one (the embedded default), each site's key is
    /// made on first use and kept in the database.
    pub authority_secret: Option<authority::keys::AuthoritySecret>,
    /// Port 0 picks a free port; see [`RunningServer::addr`].
    pub listen: SocketAddr,
    /// Seed the demo building and resident.
    pub demo: bool,
    /// Expose sent codes at `GET /v1/dev/outbox/{identifier}`. Loopback listen addresses only.
    pub dev_outbox: bool,
    /// Delivers one-time codes by email or SMS. Without one (and without the dev outbox) codes
    /// are not delivered at all; they are never logged.
    pub code_sender: Option<Arc<dyn CodeSender>>,
    pub limits: Limits,
    pub clock: Arc<dyn Clock>,
    /// The URL people reach this server at, for invitation links (e.g. behind a proxy).
    /// Without it, links use the address the request came to.
    pub public_url: Option<String>,
    /// Emails or phone numbers made operators (admins of every site) at startup; their
    /// accounts are created if needed. Operators come only from here.
    pub bootstrap_operators: Vec<String>,
    /// Days security events are kept.
    pub security_log_retention_days: i64,
    /// Load balancers or reverse proxies whose `X-Forwarded-For` names the client
    /// ([`client_ip`]). Empty: every client is its TCP peer.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Config {
    pub fn new(db_path: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            database: Database::Sqlite(db_path.into()),
            authority_secret: None,
            listen,
            demo: false,
            dev_outbox: false,
            code_sender: None,
            limits: Limits::default(),
            clock: Arc::new(SystemClock),
            public_url: None,
            bootstrap_operators: Vec::new(),
            security_log_retention_days: security_log::DEFAULT_RETENTION_DAYS,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("the dev outbox exposes sign-in codes and is only allowed on a loopback listen address, not {0}")]
    DevOutboxNotLoopback(SocketAddr),
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("startup task failed: {0}")]
    Startup(String),
    #[error("seeding the demo failed: {0}")]
    Seed(String),
    #[error("--operator: not an email address or phone number")]
    InvalidOperator,
    #[error("this porta-server was built without PostgreSQL; build it with `--features postgres`")]
    PostgresNotBuilt,
    #[error(
        "PostgreSQL serves several instances, which must sign with the same site keys: configure the authority \
         key (--authority-key-file, or PORTA_AUTHORITY_KEY)"
    )]
    AuthorityKeyRequired,
    #[error("database: {0}")]
    Postgres(String),
}

/// Shared by all handlers. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub clock: Arc<dyn Clock>,
    pub limits: Limits,
    pub sender: Arc<dyn CodeSender>,
    pub outbox: Option<Arc<DevOutbox>>,
    pub invitations: Arc<invitations::Invitations>,
    pub public_url: Option<String>,
    pub admin: Arc<dyn admin::store::AdminStore>,
    pub doors: Arc<dyn doors::store::DoorStore>,
    pub authority: Arc<dyn authority::store::AuthorityStore>,
    pub access: Arc<dyn access::store::AccessStore>,
    pub auth: Arc<dyn auth::store::AuthStore>,
    pub devices: Arc<dyn devices::store::DeviceStore>,
    pub profiles: Arc<dyn profile::store::ProfileStore>,
    pub security: Arc<dyn security_log::SecurityLog>,
    pub privacy: Arc<dyn privacy::store::PrivacyStore>,
    pub partner: Arc<partner::Partners>,
    /// See [`Config::trusted_proxies`].
    pub trusted_proxies: Arc<[IpAddr]>,
}

/// Builds the router and the OpenAPI document from the same route list.
pub fn app(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let mut api = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(openapi::health))
        .routes(routes!(auth::request_code))
        .routes(routes!(auth::sign_in))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::sign_out))
        .routes(routes!(profile::get_profile, profile::patch_profile))
        .routes(routes!(profile::confirm_contact))
        .routes(routes!(devices::enroll))
        .routes(routes!(devices::list_devices))
        .routes(routes!(devices::delete_device))
        .routes(routes!(doors::my_doors))
        .routes(routes!(doors::my_revocations))
        .routes(routes!(access::access_log))
        .routes(routes!(privacy::my_data))
        .routes(routes!(privacy::export))
        .routes(routes!(privacy::list_consents))
        .routes(routes!(privacy::put_consent))
        .routes(routes!(privacy::request_deletion_code))
        .routes(routes!(privacy::delete_me))
        .routes(routes!(privacy::get_receipt))
        .routes(routes!(deletion_page::show))
        .routes(routes!(deletion_page::request))
        .routes(routes!(deletion_page::confirm))
        .routes(routes!(invitations::create, invitations::list))
        .routes(routes!(invitations::revoke_invitation))
        .routes(routes!(invitations::revoke_guest))
        .routes(routes!(invitations::preview))
        .routes(routes!(invitations::accept))
        .routes(routes!(invitations::accept_as_guest))
        .routes(routes!(invitations::page::show))
        .routes(routes!(admin::list_sites, admin::create_site))
        .routes(routes!(admin::get_site, admin::patch_site))
        .routes(routes!(admin::list_units, admin::create_unit))
        .routes(routes!(admin::delete_unit))
        .routes(routes!(admin::list_doors, admin::create_door))
        .routes(routes!(admin::patch_door, admin::delete_door))
        .routes(routes!(admin::locks::install_lock, admin::locks::door_lock, admin::locks::decommission_lock))
        .routes(routes!(admin::list_residents, admin::add_resident))
        .routes(routes!(admin::remove_resident))
        .routes(routes!(admin::list_grants, admin::create_grant))
        .routes(routes!(admin::revoke_grant))
        .routes(routes!(admin::list_roles, admin::grant_role))
        .routes(routes!(admin::revoke_role))
        .routes(routes!(admin::site_events))
        .routes(routes!(admin::all_events))
        .routes(routes!(partner::list_keys, partner::create_key))
        .routes(routes!(partner::revoke_key))
        .routes(routes!(partner::people))
        .routes(routes!(partner::access_log));
    if state.outbox.is_some() {
        api = api.routes(routes!(dev_outbox::get_outbox)).routes(routes!(doors::dev_grant));
    }
    let api = api.layer(DefaultBodyLimit::max(JSON_BODY_LIMIT));
    let pictures = OpenApiRouter::new()
        .routes(routes!(profile::put_picture, profile::get_picture, profile::delete_picture))
        .layer(DefaultBodyLimit::max(PICTURE_BODY_LIMIT));

    let access_events =
        OpenApiRouter::new().routes(routes!(access::ingest)).layer(DefaultBodyLimit::max(ACCESS_EVENTS_BODY_LIMIT));

    let request_timeout = state.limits.request_timeout;
    let (router, doc) = api.merge(pictures).merge(access_events).split_for_parts();
    let doc_json = Arc::new(serde_json::to_value(&doc).unwrap_or_default());
    let router = router
        .route(
            "/openapi.json",
            get(move || {
                let doc_json = doc_json.clone();
                async move { axum::Json((*doc_json).clone()) }
            }),
        )
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::map_response(error::json_errors))
        .with_state(state)
        .layer(axum::middleware::from_fn(move |request: axum::extract::Request, next: axum::middleware::Next| {
            serve::request_timeout(request_timeout, request, next)
        }));
    (router, doc)
}

/// A server running on the current tokio runtime.
pub struct RunningServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    purge: access::Purge,
}

impl RunningServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The retention purge this server runs every hour, to run at once (tests, tools).
    pub fn purge(&self) -> &access::Purge {
        &self.purge
    }

    /// Stops accepting connections and waits (bounded) for in-flight requests.
    /// Dropping the handle also starts a graceful stop, without waiting.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

/// Opens and migrates the database, seeds the demo if asked, binds, and spawns the server.
pub async fn start(config: Config) -> Result<RunningServer, ServerError> {
    if config.dev_outbox && !config.listen.ip().is_loopback() {
        return Err(ServerError::DevOutboxNotLoopback(config.listen));
    }

    let now = config.clock.now();
    let stores = match &config.database {
        Database::Sqlite(path) => sqlite_stores(path.clone(), config.demo, now).await?,
        Database::Postgres { url, max_connections } => {
            if !cfg!(feature = "postgres") {
                return Err(ServerError::PostgresNotBuilt);
            }
            if config.authority_secret.is_none() {
                return Err(ServerError::AuthorityKeyRequired);
            }
            postgres_stores(url, *max_connections, config.demo, now).await?
        }
    };
    let Stores { invitations, admin, doors, authority, access, auth, devices, profiles, security, privacy, partner } =
        stores;
    // Configured keys: every instance derives the same ones, and the database keeps none.
    let authority: Arc<dyn authority::store::AuthorityStore> = match config.authority_secret.clone() {
        Some(secret) => Arc::new(authority::keys::ConfiguredKeys::new(authority, secret)),
        None => authority,
    };
    let invitations = Arc::new(
        invitations::Invitations::new(invitations)
            .await
            .map_err(|e| ServerError::Startup(format!("invitations: {e}")))?,
    );
    let partner =
        Arc::new(partner::Partners::new(partner).await.map_err(|e| ServerError::Startup(format!("partner API: {e}")))?);

    let outbox = config.dev_outbox.then(|| Arc::new(DevOutbox::new(config.code_sender.clone())));
    let sender: Arc<dyn CodeSender> = match (&outbox, &config.code_sender) {
        (Some(outbox), _) => outbox.clone(),
        (None, Some(sender)) => sender.clone(),
        (None, None) => {
            tracing::warn!("no code sender is configured: one-time codes are not delivered, so nobody can sign in");
            Arc::new(UndeliveredCodes)
        }
    };
    for raw in &config.bootstrap_operators {
        let identifier = identity::Identifier::parse(raw).ok_or(ServerError::InvalidOperator)?;
        admin.ensure_operator(&identifier, now).await.map_err(|e| ServerError::Startup(format!("operators: {e}")))?;
    }
    let purge = access::Purge {
        access: access.clone(),
        authority: authority.clone(),
        privacy: privacy.clone(),
        invitations: invitations.clone(),
        security: security.clone(),
        security_retention_days: config.security_log_retention_days,
        clock: config.clock.clone(),
    };
    let purge_job = access::purge_loop(purge.clone());
    let limits = config.limits.clone();
    let state = AppState {
        clock: config.clock,
        limits: config.limits,
        sender,
        outbox,
        invitations,
        public_url: config.public_url,
        admin,
        doors,
        authority,
        access,
        auth,
        devices,
        profiles,
        security,
        privacy,
        partner,
        trusted_proxies: config.trusted_proxies.into(),
    };
    let (router, _) = app(state);

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind { addr: config.listen, source })?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // Resolves on an explicit stop and also when the handle is dropped.
        let signal = async move {
            let _ = stopped.await;
        };
        // The hourly retention purge lives exactly as long as the server.
        tokio::select! {
            () = serve::serve(listener, router, &limits, signal) => {}
            () = purge_job => {}
        }
    });
    let backend = match &config.database {
        Database::Sqlite(_) => "sqlite",
        Database::Postgres { .. } => "postgres",
    };
    tracing::info!(%addr, backend, demo = config.demo, dev_outbox = config.dev_outbox, "porta-server started");
    Ok(RunningServer { addr, stop: Some(stop), task, purge })
}

/// Every domain's store, on one backend.
struct Stores {
    invitations: Arc<dyn invitations::store::InvitationStore>,
    admin: Arc<dyn admin::store::AdminStore>,
    doors: Arc<dyn doors::store::DoorStore>,
    authority: Arc<dyn authority::store::AuthorityStore>,
    access: Arc<dyn access::store::AccessStore>,
    auth: Arc<dyn auth::store::AuthStore>,
    devices: Arc<dyn devices::store::DeviceStore>,
    profiles: Arc<dyn profile::store::ProfileStore>,
    security: Arc<dyn security_log::SecurityLog>,
    privacy: Arc<dyn privacy::store::PrivacyStore>,
    partner: Arc<dyn partner::store::PartnerStore>,
}

/// Opens and migrates the SQLite file, seeding the demo if asked.
async fn sqlite_stores(path: PathBuf, demo: bool, now: i64) -> Result<Stores, ServerError> {
    let conn = tokio::task::spawn_blocking(move || -> Result<_, ServerError> {
        let mut conn = db::open(&path)?;
        if demo {
            demo::seed(&mut conn, now).map_err(seed_error)?;
        }
        Ok(conn)
    })
    .await
    .map_err(|e| ServerError::Startup(e.to_string()))??;
    let db = Db::new(conn);
    Ok(Stores {
        invitations: Arc::new(invitations::sqlite::SqliteInvitationStore::new(db.clone())),
        admin: Arc::new(admin::sqlite::SqliteAdminStore::new(db.clone())),
        doors: Arc::new(doors::sqlite::SqliteDoorStore::new(db.clone())),
        authority: Arc::new(authority::sqlite::SqliteAuthorityStore::new(db.clone())),
        access: Arc::new(access::sqlite::SqliteAccessStore::new(db.clone())),
        auth: Arc::new(auth::sqlite::SqliteAuthStore::new(db.clone())),
        devices: Arc::new(devices::sqlite::SqliteDeviceStore::new(db.clone())),
        profiles: Arc::new(profile::sqlite::SqliteProfileStore::new(db.clone())),
        security: Arc::new(security_log::sqlite::SqliteSecurityLog::new(db.clone())),
        privacy: Arc::new(privacy::sqlite::SqlitePrivacyStore::new(db.clone())),
        partner: Arc::new(partner::sqlite::SqlitePartnerStore::new(db)),
    })
}

/// Connects to PostgreSQL and migrates it (instances starting together take turns), seeding
/// the demo if asked.
#[cfg(feature = "postgres")]
async fn postgres_stores(url: &str, max_connections: usize, demo: bool, now: i64) -> Result<Stores, ServerError> {
    let pool = pg::PgPool::connect(url, max_connections).await.map_err(|e| ServerError::Postgres(e.to_string()))?;
    pg::migrate(&pool).await.map_err(|e| ServerError::Postgres(e.to_string()))?;
    if demo {
        demo::seed_postgres(&pool, now).await.map_err(seed_error)?;
    }
    Ok(Stores {
        invitations: Arc::new(invitations::postgres::PgInvitationStore::new(pool.clone())),
        admin: Arc::new(admin::postgres::PgAdminStore::new(pool.clone())),
        doors: Arc::new(doors::postgres::PgDoorStore::new(pool.clone())),
        authority: Arc::new(authority::postgres::PgAuthorityStore::new(pool.clone())),
        access: Arc::new(access::postgres::PgAccessStore::new(pool.clone())),
        auth: Arc::new(auth::postgres::PgAuthStore::new(pool.clone())),
        devices: Arc::new(devices::postgres::PgDeviceStore::new(pool.clone())),
        profiles: Arc::new(profile::postgres::PgProfileStore::new(pool.clone())),
        security: Arc::new(security_log::postgres::PgSecurityLog::new(pool.clone())),
        privacy: Arc::new(privacy::postgres::PgPrivacyStore::new(pool.clone())),
        partner: Arc::new(partner::postgres::PgPartnerStore::new(pool)),
    })
}

#[cfg(not(feature = "postgres"))]
async fn postgres_stores(_url: &str, _max: usize, _demo: bool, _now: i64) -> Result<Stores, ServerError> {
    Err(ServerError::PostgresNotBuilt)
}

fn seed_error(e: ApiError) -> ServerError {
    match e {
        ApiError::Internal(detail) => ServerError::Seed(detail),
        other => ServerError::Seed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_database_url_with_a_password_stays_out_of_debug() {
        let db = crate::Database::Postgres { url: "postgresql://porta:hunter2@db/porta".into(), max_connections: 4 };
        let shown = format!("{db:?}");
        assert!(!shown.contains("hunter2") && shown.contains("max_connections"), "{shown}");
    }
}
