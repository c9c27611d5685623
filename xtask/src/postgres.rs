//! A throwaway PostgreSQL cluster for the Rust suite: made in a temp directory, reachable
//! through a Unix socket in it and, with TLS only, on a loopback port (a certificate for
//! `localhost` from a CA made for the run), and gone (stopped, directory removed) when the
//! guard drops.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{tools, Result};

/// `cargo xtask postgres <command…>`: runs the command with `PORTA_TEST_POSTGRES_URL` naming a
/// fresh cluster, which is removed afterwards.
pub fn run_with_cluster(root: &Path, command: &[String]) -> Result {
    let Some((program, args)) = command.split_first() else {
        return Err("usage: cargo xtask postgres <command…>".into());
    };
    let cluster = Cluster::start()?;
    eprintln!("xtask: PostgreSQL at {}", cluster.url());
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(root);
    cluster.export(&mut cmd);
    crate::run(&mut cmd)
}

/// Whether the cluster's server syncs its writes to disk (`fsync`; PostgreSQL's default is on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync=off`: for tests, whose data need not survive a crash.
    NoFsync,
    /// `fsync=on`, as a production server runs: for benchmarks.
    Fsync,
}

/// A running cluster; dropping it stops the server and removes its directory.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    /// The unprivileged user the server runs as when we are root.
    user: Option<&'static str>,
    started: bool,
    /// The loopback port that takes TLS connections (and only those).
    tls_port: u16,
}

impl Cluster {
    /// `PORTA_TEST_POSTGRES_URL` (the socket), `PORTA_TEST_POSTGRES_TLS_URL` (`localhost` over
    /// TLS) and `PORTA_TEST_POSTGRES_CA` (the CA that signed the server's certificate).
    pub fn export(&self, cmd: &mut Command) {
        cmd.env("PORTA_TEST_POSTGRES_URL", self.url())
            .env("PORTA_TEST_POSTGRES_TLS_URL", format!("postgresql://porta@localhost:{}/postgres", self.tls_port))
            .env("PORTA_TEST_POSTGRES_CA", self.dir.join("tls/ca.crt"));
    }

    /// The URL of the `postgres` database as the superuser `porta`, over the socket.
    pub fn url(&self) -> String {
        // The socket is named after the port the server also listens on over TCP.
        format!("postgresql://porta@/postgres?host={}&port={}", self.dir.join("sock").display(), self.tls_port)
    }

    /// Finds (installing on Debian as root, when missing) PostgreSQL, then makes and starts a
    /// cluster and waits until it accepts connections. Without fsync: the tests' data need
    /// not survive a crash, and the suite runs faster.
    pub fn start() -> Result<Cluster> {
        Cluster::start_with(Durability::NoFsync)
    }

    /// [`Cluster::start`], choosing whether the server syncs its writes to disk.
    pub fn start_with(durability: Durability) -> Result<Cluster> {
        let bin = find_bin_dir().or_else(|missing| {
            if tools::is_root() && tools::is_debian() {
                tools::apt_install(&["postgresql"])?;
                find_bin_dir()
            } else {
                Err(missing)
            }
        })?;
        // PostgreSQL refuses to run as root.
        let user = tools::is_root().then(unprivileged_user);
        let dir = make_temp_dir()?;
        let tls_port = free_port()?;
        let mut cluster = Cluster { dir, bin, user, started: false, tls_port };
        std::fs::create_dir(cluster.dir.join("sock")).map_err(|e| format!("postgres socket directory: {e}"))?;
        if let Some(user) = cluster.user {
            crate::run(Command::new("chown").args(["-R", user]).arg(&cluster.dir))?;
        }
        let data = cluster.dir.join("data");
        let log = cluster.dir.join("server.log");
        crate::run(
            cluster
                .command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", "porta", "--auth=trust", "-E", "UTF8", "--no-sync"])
                .stdout(std::process::Stdio::null()),
        )?;
        cluster.make_tls_files(&data)?;
        let fsync = match durability {
            Durability::NoFsync => "off",
            Durability::Fsync => "on",
        };
        let options = format!(
            "-c listen_addresses='127.0.0.1' -c port={} -c unix_socket_directories='{}' -c fsync={fsync} \
             -c max_connections=200 -c ssl=on -c ssl_cert_file='{}' -c ssl_key_file='{}'",
            cluster.tls_port,
            cluster.dir.join("sock").display(),
            cluster.dir.join("tls/server.crt").display(),
            cluster.dir.join("tls/server.key").display(),
        );
        // `-w`: pg_ctl returns once the server accepts connections (or fails to start).
        cluster.started = true;
        let started = crate::run(
            cluster
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o"])
                .arg(&options)
                .arg("start"),
        );
        if let Err(e) = started {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("{e}; server log:\n{tail}"));
        }
        cluster.wait_ready(Duration::from_secs(30))?;
        Ok(cluster)
    }

    /// A CA and a server certificate for `localhost` only (so a client checking names refuses
    /// `127.0.0.1`), and a pg_hba that takes TCP connections over TLS only.
    fn make_tls_files(&self, data: &Path) -> Result {
        if !tools::on_path("openssl") && tools::is_root() && tools::is_debian() {
            tools::apt_install(&["openssl"])?;
        }
        let tls = self.dir.join("tls");
        std::fs::create_dir(&tls).map_err(|e| format!("postgres TLS directory: {e}"))?;
        std::fs::write(tls.join("server.ext"), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n")
            .map_err(|e| format!("postgres TLS: {e}"))?;
        let openssl = |args: &[&str]| {
            crate::run(Command::new("openssl").args(args).current_dir(&tls).stderr(std::process::Stdio::null()))
                .map_err(|e| {
                    format!("{e} (the PostgreSQL TLS tests need the openssl program: apt-get install openssl)")
                })
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=porta test CA"],
            ]
            .concat(),
        )?;
        openssl(
            &[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]].concat(),
        )?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ])?;
        std::fs::write(data.join("pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
            .map_err(|e| format!("pg_hba.conf: {e}"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(tls.join("server.key"), std::fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("postgres TLS key: {e}"))?;
        }
        if let Some(user) = self.user {
            crate::run(Command::new("chown").args(["-R", user]).arg(&tls).arg(data.join("pg_hba.conf")))?;
        }
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = match self.user {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", user, "--"]).arg(path);
                cmd
            }
            None => Command::new(path),
        };
        // The unprivileged user may not be able to enter the caller's directory.
        cmd.current_dir(&self.dir);
        cmd
    }

    fn wait_ready(&self, timeout: Duration) -> Result {
        let deadline = Instant::now() + timeout;
        let isready = self.bin.join("pg_isready");
        loop {
            let ready = Command::new(&isready)
                .arg("-h")
                .arg(self.dir.join("sock"))
                .args(["-p", &self.tls_port.to_string(), "-U", "porta", "-d", "postgres", "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready || !isready.exists() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                return Err(format!("PostgreSQL in {} did not become ready; server log:\n{log}", self.dir.display()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.started {
            let data = self.dir.join("data");
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "stop"])
                .stdout(std::process::Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory holding `initdb` and `pg_ctl`: Debian's newest /usr/lib/postgresql/<ver>/bin,
/// else the PATH.
fn find_bin_dir() -> Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    if tools::on_path("initdb") && tools::on_path("pg_ctl") {
        let out = Command::new("sh").args(["-c", "command -v initdb"]).output().map_err(|e| e.to_string())?;
        let initdb = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let initdb = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        if let Some(dir) = initdb.parent() {
            return Ok(dir.to_path_buf());
        }
    }
    Err("the server's PostgreSQL tests need PostgreSQL's server programs (initdb, pg_ctl): install them \
         (Debian: apt-get install postgresql; macOS: brew install postgresql), or run as root on Debian"
        .into())
}

fn unprivileged_user() -> &'static str {
    let has_postgres = Command::new("id").arg("postgres").output().is_ok_and(|o| o.status.success());
    if has_postgres {
        "postgres"
    } else {
        "nobody"
    }
}

fn make_temp_dir() -> Result<PathBuf> {
    let base = std::env::temp_dir();
    for attempt in 0..100u32 {
        let dir = base.join(format!("porta-pg-{}-{attempt}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("temp directory for PostgreSQL: {e}")),
        }
    }
    Err(format!("no free temp directory for PostgreSQL in {}", Path::new(&base).display()))
}

/// A loopback port nothing listens on right now.
fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("a free port for PostgreSQL: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}
