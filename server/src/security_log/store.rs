//! What the security log needs from storage, as one trait. Handlers hold an
//! `Arc<dyn SecurityLog>` and never see SQL; each backend runs the shared suite in
//! [`super::store_tests`].

use async_trait::async_trait;

use super::{EventFilter, NewEvent, SecurityEvent};
use crate::error::ApiError;

#[async_trait]
pub trait SecurityLog: Send + Sync {
    /// Stores one event.
    async fn record(&self, event: NewEvent) -> Result<(), ApiError>;
    /// The events `filter` selects, newest (highest id) first, at most `filter.limit`.
    async fn list(&self, filter: &EventFilter) -> Result<Vec<SecurityEvent>, ApiError>;
    /// Deletes events older than `retention_days` before `now`; returns how many.
    async fn purge(&self, now: i64, retention_days: i64) -> Result<usize, ApiError>;
}
