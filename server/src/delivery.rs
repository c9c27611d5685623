//! Delivering one-time codes: email over SMTP (lettre, TLS and auth as configured), SMS through
//! an HTTP webhook of the operator's gateway, or, in development, the server's own stderr.
//! Chosen by configuration ([`DeliveryConfig`]); [`Routes`] sends emails and phone numbers to
//! their channel.
//!
//! A code is as good as the account it opens: no code or address ever reaches a log or an
//! error. A failed delivery is [`DeliveryFailed`], which the handlers answer with a retryable
//! 503. When policy sends no code (the address belongs to someone else), the handler asks
//! the channel [`CodeSender::check`] instead, so a broken provider fails every request alike
//! and the answer never tells whether the identifier exists.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::identity::Identifier;

/// The provider did not take the message. Carries no address and no code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("code delivery failed: {0}")]
pub struct DeliveryFailed(pub String);

/// Delivers a one-time code to an email address or phone number.
#[async_trait::async_trait]
pub trait CodeSender: Send + Sync {
    /// Sends `code` to `to`. An implementation must log neither.
    async fn send(&self, to: &Identifier, code: &str) -> Result<(), DeliveryFailed>;

    /// Whether a message to `to`'s channel would go out now, without sending one.
    async fn check(&self, _to: &Identifier) -> Result<(), DeliveryFailed> {
        Ok(())
    }
}

/// How long a provider may take before the request answers "try again".
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// The text every channel sends. Says what the code is for in general terms only.
fn message_text(code: &str, ttl_minutes: u64) -> String {
    format!(
        "Your Porta code is {code}. It is valid for {ttl_minutes} minutes.\n\
         If you did not ask for it, ignore this message: nobody can use it without your inbox or phone.\n\
         Porta will never ask you for this code."
    )
}

/// How the server reaches people: one channel per kind of identifier.
#[derive(Debug, Clone, Default)]
pub struct DeliveryConfig {
    pub smtp: Option<SmtpConfig>,
    pub sms_webhook: Option<WebhookConfig>,
    /// Development: write each code to the server's stderr (loopback listen addresses only).
    pub stderr: bool,
}

/// SMTP submission, e.g. `smtps://user:pass@mail.example.com` or
/// `smtp://mail.example.com:587?tls=required`.
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub credentials: Option<(String, String)>,
    pub from: String,
    /// Extra trusted root (PEM), for a provider behind a private CA.
    pub extra_root_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("credentials", &self.credentials.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// TLS from the first byte (port 465).
    Implicit,
    /// STARTTLS, refused if the server does not offer it (port 587).
    StartTls,
    /// No TLS: only for a relay on loopback.
    None,
}

impl SmtpConfig {
    /// Reads `smtp[s]://[user:pass@]host[:port][?tls=required|none]`; `from` is the sender.
    pub fn from_url(url: &str, from: &str) -> Result<Self, String> {
        let (scheme, rest) = url.split_once("://").ok_or("the SMTP URL needs smtp:// or smtps://")?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (auth, hostport) = match rest.rsplit_once('@') {
            Some((auth, hp)) => (Some(auth), hp),
            None => (None, rest),
        };
        let hostport = hostport.trim_end_matches('/');
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| "the SMTP port is not a number")?)),
            None => (hostport, None),
        };
        if host.is_empty() {
            return Err("the SMTP URL has no host".into());
        }
        let tls = match (scheme, query) {
            ("smtps", _) => SmtpTls::Implicit,
            ("smtp", "tls=none") => SmtpTls::None,
            ("smtp", "" | "tls=required") => SmtpTls::StartTls,
            ("smtp", _) => return Err("the SMTP URL's query may be tls=required or tls=none".into()),
            _ => return Err("the SMTP URL needs smtp:// or smtps://".into()),
        };
        // `user` alone: the password comes from the environment (see porta-server --help).
        let credentials = auth.map(|a| {
            let (user, pass) = a.split_once(':').unwrap_or((a, ""));
            (percent_decode(user), percent_decode(pass))
        });
        from.parse::<Mailbox>().map_err(|_| "--smtp-from is not an email address")?;
        Ok(SmtpConfig {
            host: host.to_owned(),
            port: port.unwrap_or(if tls == SmtpTls::Implicit { 465 } else { 587 }),
            tls,
            credentials,
            from: from.to_owned(),
            extra_root_pem: None,
        })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Email over SMTP.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    ttl_minutes: u64,
}

impl SmtpSender {
    pub fn new(config: &SmtpConfig, ttl_minutes: u64) -> Result<Self, String> {
        let tls_parameters = || {
            let mut builder = TlsParameters::builder(config.host.clone());
            if let Some(pem) = &config.extra_root_pem {
                let cert = Certificate::from_pem(pem).map_err(|_| "the extra SMTP root is not a PEM certificate")?;
                builder = builder.add_root_certificate(cert);
            }
            builder.build_rustls().map_err(|_| "the SMTP TLS settings are invalid".to_string())
        };
        let tls = match config.tls {
            SmtpTls::Implicit => Tls::Wrapper(tls_parameters()?),
            SmtpTls::StartTls => Tls::Required(tls_parameters()?),
            SmtpTls::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(PROVIDER_TIMEOUT));
        if let Some((user, pass)) = &config.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        let from = config.from.parse().map_err(|_| "--smtp-from is not an email address".to_string())?;
        Ok(SmtpSender { transport: builder.build(), from, ttl_minutes })
    }
}

#[async_trait::async_trait]
impl CodeSender for SmtpSender {
    async fn send(&self, to: &Identifier, code: &str) -> Result<(), DeliveryFailed> {
        let Identifier::Email(address) = to else {
            return Err(DeliveryFailed("no SMS channel is configured".into()));
        };
        let to: Mailbox =
            address.parse().map_err(|_| DeliveryFailed("the address cannot be written in a mail header".into()))?;
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject("Your Porta code")
            .body(message_text(code, self.ttl_minutes))
            .map_err(|_| DeliveryFailed("the message could not be built".into()))?;
        // lettre's errors name the server's reply, never the recipient; keep only the kind.
        self.transport.send(message).await.map(|_| ()).map_err(|e| DeliveryFailed(smtp_failure(&e)))
    }

    async fn check(&self, to: &Identifier) -> Result<(), DeliveryFailed> {
        if !matches!(to, Identifier::Email(_)) {
            return Err(DeliveryFailed("no SMS channel is configured".into()));
        }
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(DeliveryFailed("the mail server did not answer".into())),
            Err(e) => Err(DeliveryFailed(smtp_failure(&e))),
        }
    }
}

fn smtp_failure(e: &lettre::transport::smtp::Error) -> String {
    if e.is_timeout() {
        "the mail server timed out".into()
    } else if e.is_transient() {
        "the mail server refused for now".into()
    } else if e.is_permanent() {
        "the mail server refused the message".into()
    } else if e.is_tls() {
        "TLS with the mail server failed".into()
    } else {
        "the mail server could not be reached".into()
    }
}

/// An SMS gateway's webhook: `POST url` with `{"to": "+47…", "text": "…"}` and, if set, an
/// `Authorization: Bearer` token. Any 2xx is delivered.
#[derive(Clone)]
pub struct WebhookConfig {
    pub url: String,
    pub bearer_token: Option<String>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

pub struct WebhookSender {
    client: reqwest::Client,
    config: WebhookConfig,
    ttl_minutes: u64,
}

impl WebhookSender {
    pub fn new(config: WebhookConfig, ttl_minutes: u64) -> Result<Self, String> {
        if !(config.url.starts_with("https://")
            || config.url.starts_with("http://127.")
            || config.url.starts_with("http://[::1]")
            || config.url.starts_with("http://localhost"))
        {
            return Err("the SMS webhook must be https:// (or http:// on loopback)".into());
        }
        let client = reqwest::Client::builder()
            .timeout(PROVIDER_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| "the HTTP client could not be built".to_string())?;
        Ok(WebhookSender { client, config, ttl_minutes })
    }
}

#[async_trait::async_trait]
impl CodeSender for WebhookSender {
    async fn send(&self, to: &Identifier, code: &str) -> Result<(), DeliveryFailed> {
        let Identifier::Phone(number) = to else {
            return Err(DeliveryFailed("no email channel is configured".into()));
        };
        let mut request = self
            .client
            .post(&self.config.url)
            .json(&serde_json::json!({ "to": number, "text": message_text(code, self.ttl_minutes) }));
        if let Some(token) = &self.config.bearer_token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(reply) if reply.status().is_success() => Ok(()),
            Ok(reply) => Err(DeliveryFailed(format!("the SMS gateway answered {}", reply.status().as_u16()))),
            Err(e) if e.is_timeout() => Err(DeliveryFailed("the SMS gateway timed out".into())),
            Err(_) => Err(DeliveryFailed("the SMS gateway could not be reached".into())),
        }
    }

    async fn check(&self, to: &Identifier) -> Result<(), DeliveryFailed> {
        if !matches!(to, Identifier::Phone(_)) {
            return Err(DeliveryFailed("no email channel is configured".into()));
        }
        // A gateway has no dry run; that it answers at all is what can be known.
        self.client
            .head(&self.config.url)
            .send()
            .await
            .map(|_| ())
            .map_err(|_| DeliveryFailed("the SMS gateway could not be reached".into()))
    }
}

/// Development: codes on the server's stderr, never through `tracing` (whose output is
/// collected). [`crate::start`] refuses it on a non-loopback address.
pub struct StderrSender;

#[async_trait::async_trait]
impl CodeSender for StderrSender {
    async fn send(&self, to: &Identifier, code: &str) -> Result<(), DeliveryFailed> {
        eprintln!("porta-server (development): code for {}: {code}", to.as_str());
        Ok(())
    }
}

/// Emails to one channel, phone numbers to another.
pub struct Routes {
    pub email: Option<Arc<dyn CodeSender>>,
    pub phone: Option<Arc<dyn CodeSender>>,
}

impl Routes {
    fn channel(&self, to: &Identifier) -> Result<&Arc<dyn CodeSender>, DeliveryFailed> {
        match to {
            Identifier::Email(_) => {
                self.email.as_ref().ok_or_else(|| DeliveryFailed("no email channel is configured".into()))
            }
            Identifier::Phone(_) => {
                self.phone.as_ref().ok_or_else(|| DeliveryFailed("no SMS channel is configured".into()))
            }
        }
    }
}

#[async_trait::async_trait]
impl CodeSender for Routes {
    async fn send(&self, to: &Identifier, code: &str) -> Result<(), DeliveryFailed> {
        self.channel(to)?.send(to, code).await
    }

    async fn check(&self, to: &Identifier) -> Result<(), DeliveryFailed> {
        self.channel(to)?.check(to).await
    }
}

impl DeliveryConfig {
    /// The sender this configuration describes, or `None` when no channel is set.
    pub fn sender(&self, code_ttl_s: u64) -> Result<Option<Arc<dyn CodeSender>>, String> {
        let ttl_minutes = code_ttl_s.div_ceil(60);
        if self.stderr {
            let dev: Arc<dyn CodeSender> = Arc::new(StderrSender);
            return Ok(Some(dev));
        }
        let email = self
            .smtp
            .as_ref()
            .map(|c| SmtpSender::new(c, ttl_minutes).map(|s| Arc::new(s) as Arc<dyn CodeSender>))
            .transpose()?;
        let phone = self
            .sms_webhook
            .clone()
            .map(|c| WebhookSender::new(c, ttl_minutes).map(|s| Arc::new(s) as Arc<dyn CodeSender>))
            .transpose()?;
        Ok((email.is_some() || phone.is_some()).then(|| Arc::new(Routes { email, phone }) as Arc<dyn CodeSender>))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_read_as_operators_write_them() {
        let c =
            SmtpConfig::from_url("smtps://porta%40example.com:s3cr%3At@mail.example.com", "porta@example.com").unwrap();
        assert_eq!((c.host.as_str(), c.port, c.tls), ("mail.example.com", 465, SmtpTls::Implicit));
        assert_eq!(c.credentials, Some(("porta@example.com".into(), "s3cr:t".into())));
        let c = SmtpConfig::from_url("smtp://mail.example.com", "porta@example.com").unwrap();
        assert_eq!((c.port, c.tls), (587, SmtpTls::StartTls));
        let c = SmtpConfig::from_url("smtp://127.0.0.1:2525?tls=none", "porta@example.com").unwrap();
        assert_eq!((c.port, c.tls), (2525, SmtpTls::None));
        assert!(!format!("{c:?}").contains("s3cr"));
        for bad in ["mail.example.com", "smtp://", "smtp://h:port", "smtp://h?tls=maybe", "imap://h"] {
            assert!(SmtpConfig::from_url(bad, "porta@example.com").is_err(), "{bad}");
        }
        assert!(SmtpConfig::from_url("smtp://h", "not an address").is_err());
    }
}
