//! TLS to PostgreSQL with rustls (on ring, as the rest of the server): what a database on
//! another machine, or a managed one, needs.
//!
//! The server's certificate is always verified, against the Mozilla roots and the URL's
//! `sslrootcert` file if it names one, and for the host the URL names: `sslmode=require`
//! means what libpq calls `verify-full` (which is accepted too, as is `verify-ca`). Without
//! `sslmode`, TLS is used whenever the server offers it. A Unix socket never uses TLS.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_postgres::Config;

use super::PgError;

/// A database URL read for connecting: tokio-postgres's settings, and the TLS connector.
pub(crate) struct Target {
    pub config: Config,
    pub tls: MakeRustls,
}

/// Parses a `postgres://` or `postgresql://` URL, taking out what tokio-postgres does not
/// know (`sslrootcert`, `sslmode=verify-ca|verify-full`) and reading the root file.
pub(crate) fn target(url: &str) -> Result<Target, PgError> {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut kept = Vec::new();
    let mut root_file = None;
    for pair in query.into_iter().flat_map(|q| q.split('&')).filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslrootcert", path)) => root_file = Some(percent_decoded(path)?),
            Some(("sslmode", "verify-ca" | "verify-full")) => kept.push("sslmode=require".to_owned()),
            _ => kept.push(pair.to_owned()),
        }
    }
    let url = if kept.is_empty() { head.to_owned() } else { format!("{head}?{}", kept.join("&")) };
    let config = Config::from_str(&url).map_err(|_| PgError::InvalidUrl)?;
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = root_file {
        let pem = std::fs::read(&path).map_err(|e| PgError::Tls(format!("sslrootcert {path}: {e}")))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|_| PgError::Tls(format!("sslrootcert {path}: not PEM certificates")))?;
            roots.add(cert).map_err(|e| PgError::Tls(format!("sslrootcert {path}: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(PgError::Tls(format!("sslrootcert {path}: no certificate in it")));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Target { config, tls: MakeRustls(Arc::new(tls)) })
}

/// `%2F` and friends in a path given in the URL.
fn percent_decoded(text: &str) -> Result<String, PgError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or(PgError::InvalidUrl)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| PgError::InvalidUrl)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PgError::InvalidUrl)
}

/// Makes a rustls connector per connection, for the host being connected to.
#[derive(Clone)]
pub(crate) struct MakeRustls(Arc<ClientConfig>);

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = std::convert::Infallible;

    /// tokio-postgres asks for every host, a Unix socket's directory too, and then does TLS
    /// over TCP only: a name that is no host name fails only if TLS is tried with it.
    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, Self::Error> {
        Ok(RustlsConnect { config: self.0.clone(), name: ServerName::try_from(domain.to_owned()).ok() })
    }
}

pub(crate) struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: Option<ServerName<'static>>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move {
            let name = self.name.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a host name"))?;
            connector.connect(name, stream).await.map(RustlsStream)
        })
    }
}

/// A TLS session to the database.
pub(crate) struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    /// No channel binding: SCRAM still authenticates both ends; the certificate check is
    /// what binds the session to the server.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_tokio_postgres_does_not_know_is_taken_out_of_the_url() {
        let t = target("postgresql://porta@db.internal/porta?sslmode=verify-full&application_name=x").unwrap();
        assert_eq!(t.config.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        assert_eq!(t.config.get_dbname(), Some("porta"));
        assert!(
            matches!(target("postgresql://db/porta?sslrootcert=%2Fno%2Fsuch.pem"), Err(PgError::Tls(m)) if m.contains("/no/such.pem"))
        );
        assert!(matches!(target("postgresql://db/porta?frobnicate=1"), Err(PgError::InvalidUrl)));
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("roots.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let url = format!("postgresql://db/porta?sslrootcert={}", not_pem.display());
        assert!(matches!(target(&url), Err(PgError::Tls(m)) if m.contains("no certificate")));
    }
}
