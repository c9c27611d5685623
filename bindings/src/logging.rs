//! The core's `tracing` events forwarded to the app's logger (os_log, Logcat).

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, uniffi::Record)]
pub struct LogRecord {
    pub level: LogLevel,
    /// The Rust module that logged, e.g. `porta_core::auth`.
    pub target: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum LoggerError {
    #[error("logger failed: {reason}")]
    Failed { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for LoggerError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        LoggerError::Failed { reason: e.reason }
    }
}

/// Implemented by the app. The core never logs secrets or personal data.
#[uniffi::export(foreign)]
pub trait Logger: Send + Sync {
    fn log(&self, record: LogRecord) -> Result<(), LoggerError>;
}

struct Sink {
    logger: Arc<dyn Logger>,
    max_level: LogLevel,
}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);
static INSTALLED: OnceLock<()> = OnceLock::new();

/// Sends the core's log records at `max_level` and above to `logger`, replacing any
/// logger set before.
#[uniffi::export]
pub fn set_logger(logger: Arc<dyn Logger>, max_level: LogLevel) {
    *SINK.write().unwrap_or_else(|e| e.into_inner()) = Some(Sink { logger, max_level });
    INSTALLED.get_or_init(|| {
        // If the host already installed a global subscriber, keep theirs.
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(ForwardLayer));
    });
}

struct ForwardLayer;

fn level_of(level: &tracing::Level) -> LogLevel {
    match *level {
        tracing::Level::ERROR => LogLevel::Error,
        tracing::Level::WARN => LogLevel::Warn,
        tracing::Level::INFO => LogLevel::Info,
        tracing::Level::DEBUG => LogLevel::Debug,
        tracing::Level::TRACE => LogLevel::Trace,
    }
}

#[derive(Default)]
struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for ForwardLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let level = level_of(event.metadata().level());
        let guard = SINK.read().unwrap_or_else(|e| e.into_inner());
        let Some(sink) = guard.as_ref() else { return };
        if level > sink.max_level {
            return;
        }
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        let record = LogRecord { level, target: event.metadata().target().to_owned(), message: visitor.0 };
        // A failing app logger must never break the core.
        let _ = sink.logger.log(record);
    }
}
