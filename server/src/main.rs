//! `porta-server`: runs the reference backend.

use std::io::{IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use porta_server::authority::keys::AuthoritySecret;
use porta_server::delivery::{DeliveryConfig, SmtpConfig, WebhookConfig};
use porta_server::{start, Config, Database, DEFAULT_PG_CONNECTIONS};

const USAGE: &str = "\
usage: porta-server [--db PATH | --database URL [--database-connections N]] [--authority-key-file PATH]
                    [--listen ADDR] [--demo] [--operator EMAIL|PHONE] [--dev-outbox]
                    [--code-requests-per-ip N] [--code-requests-per-identifier N]
                    [--admin-writes-per-window N] [--max-connections N]
                    [--max-connections-per-ip N] [--partner-reads-per-window N] [--exit-on-stdin-eof]
                    [--smtp URL --smtp-from ADDR [--smtp-ca PEM]] [--sms-webhook URL]
                    [--codes-to-stderr] [--trusted-proxy ADDR]
       porta-server --new-authority-key-file PATH

  --db PATH                  SQLite database file (default: porta.db); one instance
  --database URL             PostgreSQL instead: postgresql://user@host/db or
                             postgresql:///db?host=/run/postgresql; any number of instances.
                             Over TCP, TLS with the certificate checked (?sslmode=require to
                             insist, &sslrootcert=PEM for a private CA).
                             Needs --authority-key-file (or PORTA_AUTHORITY_KEY)
  --database-connections N   PostgreSQL connections this instance keeps at most (default: 16)
  --authority-key-file PATH  the secret every site's authority key is derived from (base64, mode
                             0600); the same file for every instance. PORTA_AUTHORITY_KEY may hold
                             it instead. Without either, SQLite keeps each site's key itself
  --new-authority-key-file PATH  write a new secret to PATH (never over an existing file), exit
  --listen ADDR              address to listen on (default: 127.0.0.1:8080; port 0 = any)
  --demo                     seed the demo building and resident
  --operator EMAIL|PHONE     make this account an operator (admin of every site); repeatable
  --dev-outbox               expose sent codes at GET /v1/dev/outbox/{identifier} (loopback only)
  --code-requests-per-ip N   code requests allowed per client IP per window (default: 50)
  --code-requests-per-identifier N  code requests allowed per email or phone per window (default: 5)
  --admin-writes-per-window N admin changes per admin per window (default: 300)
  --partner-reads-per-window N partner API reads per partner key per minute (default: 60)
  --max-connections N        open connections at most (default: 512)
  --max-connections-per-ip N open connections at most from one client address (default: 64)
  --trusted-proxy ADDR       a load balancer or reverse proxy in front: for requests from ADDR,
                             the client is the rightmost X-Forwarded-For entry that is not a
                             trusted proxy (the per-address limits count it); repeatable
  --exit-on-stdin-eof        exit when stdin closes (for test harnesses that spawn the server)

One-time codes go out by email through SMTP and by SMS through a gateway's webhook:
  --smtp URL                 smtps://user@host[:465] (TLS), smtp://user@host[:587] (STARTTLS,
                             required), or smtp://host:port?tls=none (a loopback relay only);
                             the password from PORTA_SMTP_PASSWORD (or in the URL, %-encoded)
  --smtp-from ADDR           the sender address, e.g. \"Porta <no-reply@example.com>\"
  --smtp-ca PEM              also trust this CA certificate for the mail server
  --sms-webhook URL          POST {\"to\", \"text\"} as JSON to this https URL for phone numbers;
                             PORTA_SMS_WEBHOOK_TOKEN, if set, is sent as a bearer token
  --codes-to-stderr          development: print codes on stderr (loopback listen addresses only)";

struct Args {
    config: Config,
    exit_on_stdin_eof: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut config = Config::new(PathBuf::from("porta.db"), SocketAddr::from(([127, 0, 0, 1], 8080)));
    let mut exit_on_stdin_eof = false;
    let mut authority_key_file = None;
    let mut delivery = DeliveryConfig::default();
    let (mut smtp_url, mut smtp_from, mut smtp_ca) = (None, None, None);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--db" => config.database = Database::Sqlite(PathBuf::from(value("--db")?)),
            "--database" => {
                let url = value("--database")?;
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    return Err("--database: a postgres:// or postgresql:// URL (for SQLite, --db PATH)".into());
                }
                config.database = Database::Postgres { url, max_connections: DEFAULT_PG_CONNECTIONS };
            }
            "--database-connections" => {
                let v = value("--database-connections")?;
                let n = positive(&v).ok_or_else(|| format!("--database-connections: not a positive number: {v}"))?;
                match &mut config.database {
                    Database::Postgres { max_connections, .. } => *max_connections = n,
                    Database::Sqlite(_) => return Err("--database-connections goes after --database URL".into()),
                }
            }
            "--authority-key-file" => authority_key_file = Some(PathBuf::from(value("--authority-key-file")?)),
            "--listen" => {
                let v = value("--listen")?;
                config.listen = v.parse().map_err(|_| format!("--listen: not an address: {v}"))?;
            }
            "--demo" => config.demo = true,
            "--operator" => config.bootstrap_operators.push(value("--operator")?),
            "--dev-outbox" => config.dev_outbox = true,
            "--code-requests-per-ip" => {
                let v = value("--code-requests-per-ip")?;
                config.limits.code_requests_per_ip =
                    v.parse().map_err(|_| format!("--code-requests-per-ip: not a number: {v}"))?;
            }
            "--code-requests-per-identifier" => {
                let v = value("--code-requests-per-identifier")?;
                config.limits.code_requests_per_identifier =
                    v.parse().map_err(|_| format!("--code-requests-per-identifier: not a number: {v}"))?;
            }
            "--admin-writes-per-window" => {
                let v = value("--admin-writes-per-window")?;
                config.limits.admin_writes_per_window =
                    v.parse().map_err(|_| format!("--admin-writes-per-window: not a number: {v}"))?;
            }
            "--partner-reads-per-window" => {
                let v = value("--partner-reads-per-window")?;
                config.limits.partner_reads_per_window =
                    v.parse().map_err(|_| format!("--partner-reads-per-window: not a number: {v}"))?;
            }
            "--max-connections" => {
                let v = value("--max-connections")?;
                config.limits.max_connections =
                    positive(&v).ok_or_else(|| format!("--max-connections: not a positive number: {v}"))?;
            }
            "--max-connections-per-ip" => {
                let v = value("--max-connections-per-ip")?;
                config.limits.max_connections_per_ip =
                    positive(&v).ok_or_else(|| format!("--max-connections-per-ip: not a positive number: {v}"))?;
            }
            "--trusted-proxy" => {
                let v = value("--trusted-proxy")?;
                config.trusted_proxies.push(v.parse().map_err(|_| format!("--trusted-proxy: not an IP address: {v}"))?);
            }
            "--exit-on-stdin-eof" => exit_on_stdin_eof = true,
            "--smtp" => smtp_url = Some(value("--smtp")?),
            "--smtp-from" => smtp_from = Some(value("--smtp-from")?),
            "--smtp-ca" => smtp_ca = Some(value("--smtp-ca")?),
            "--sms-webhook" => {
                let url = value("--sms-webhook")?;
                let bearer_token = std::env::var("PORTA_SMS_WEBHOOK_TOKEN").ok().filter(|t| !t.is_empty());
                delivery.sms_webhook = Some(WebhookConfig { url, bearer_token });
            }
            "--codes-to-stderr" => delivery.stderr = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    match (smtp_url, smtp_from) {
        (Some(url), Some(from)) => {
            let mut smtp = SmtpConfig::from_url(&url, &from).map_err(|e| format!("--smtp: {e}"))?;
            if let Ok(password) = std::env::var("PORTA_SMTP_PASSWORD") {
                let user =
                    smtp.credentials.take().map(|(u, _)| u).ok_or("PORTA_SMTP_PASSWORD needs a user in --smtp")?;
                smtp.credentials = Some((user, password));
            }
            if let Some(path) = smtp_ca {
                smtp.extra_root_pem = Some(std::fs::read(&path).map_err(|e| format!("--smtp-ca {path}: {e}"))?);
            }
            delivery.smtp = Some(smtp);
        }
        (None, None) if smtp_ca.is_none() => {}
        _ => return Err("--smtp and --smtp-from go together".into()),
    }
    if delivery.stderr && !config.listen.ip().is_loopback() {
        return Err("--codes-to-stderr is for development on a loopback address only".into());
    }
    config.code_sender = delivery.sender(config.limits.code_ttl_s as u64)?;
    config.authority_secret = match (authority_key_file, std::env::var("PORTA_AUTHORITY_KEY")) {
        (Some(path), _) => {
            Some(AuthoritySecret::load(&path).map_err(|e| format!("--authority-key-file {}: {e}", path.display()))?)
        }
        (None, Ok(text)) if !text.is_empty() => {
            Some(AuthoritySecret::from_text(&text).map_err(|e| format!("PORTA_AUTHORITY_KEY: {e}"))?)
        }
        _ => None,
    };
    Ok(Args { config, exit_on_stdin_eof })
}

/// A count of at least 1: a cap of 0 would refuse every connection.
fn positive(value: &str) -> Option<usize> {
    value.parse().ok().filter(|&n| n > 0)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("--new-authority-key-file") {
        let [_, path] = argv.as_slice() else {
            eprintln!("porta-server: --new-authority-key-file PATH, and nothing else");
            return ExitCode::from(2);
        };
        return match AuthoritySecret::create_file(std::path::Path::new(path)) {
            Ok(_) => {
                println!("wrote a new authority key to {path}: give every instance this file, and keep a copy offline");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("porta-server: {path}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let args = match parse_args(argv.into_iter()) {
        Ok(args) => args,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("porta-server: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Plain text when a harness captures stderr.
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(tracing::Level::INFO)
        .init();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("porta-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let server = match start(args.config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("porta-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Test harnesses read this exact line to learn the port.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "porta-server listening on {}", server.url());
    let _ = stdout.flush();
    drop(stdout);

    wait_for_stop(args.exit_on_stdin_eof).await;
    tracing::info!("shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_stop(exit_on_stdin_eof: bool) {
    let stdin_eof = async {
        if !exit_on_stdin_eof {
            return std::future::pending().await;
        }
        let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
        // A plain thread: a blocked stdin read must not keep the runtime from shutting down.
        std::thread::spawn(move || {
            let mut sink = [0u8; 1024];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            let _ = eof_tx.send(());
        });
        let _ = eof_rx.await;
    };

    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate() => {}
        _ = stdin_eof => {}
    }
}

#[cfg(unix)]
async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut sig) => {
            sig.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending().await
}
