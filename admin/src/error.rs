//! The one error type of the admin client, sorted by what a caller does about it.

use serde::Deserialize;

/// Why an admin call failed. Display names the kind and the server's stable code or field,
/// never a token, an identifier or anything else personal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// The server could not be reached, or the connection broke.
    #[error("the server could not be reached: {detail}")]
    Network { detail: String },
    /// No session, or it ended (signed out, revoked, refresh refused): sign in again.
    #[error("not signed in (or the session has ended): sign in again")]
    NotSignedIn,
    /// Signed in, but without the role this needs.
    #[error("forbidden: this needs an admin role you do not have")]
    Forbidden,
    /// No such record at a site you administer (or not a site you administer).
    #[error("not found (or not at a site you administer)")]
    NotFound,
    /// The server refused the input; `field` names the offending field when it said which.
    #[error("invalid input ({code}): {problem}")]
    Invalid { code: String, field: Option<String>, problem: String },
    /// Too many requests; try again after this many seconds.
    #[error("rate limited: try again in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    /// The request conflicts with what the server holds, e.g. `lock_key_in_use`.
    #[error("refused ({code})")]
    Conflict { code: String },
    /// Anything else the server answered: its status and stable code.
    #[error("the server failed ({status} {code})")]
    Server { status: u16, code: String },
}

/// The server's error body (`ErrorBody`): a stable code, a message that never holds personal
/// data, and the wait on `rate_limited`.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    retry_after_s: Option<i64>,
}

impl AdminError {
    pub(crate) fn network(error: reqwest::Error) -> AdminError {
        // Without the URL: it is ours anyway, and keeps paths out of messages.
        AdminError::Network { detail: error.without_url().to_string() }
    }

    /// The error for a non-success answer.
    pub(crate) fn from_response(status: u16, retry_after_header: Option<u64>, body: &[u8]) -> AdminError {
        let body: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
        let code = if body.code.is_empty() { "unknown".to_owned() } else { body.code };
        match (status, code.as_str()) {
            // A wrong or stale code at sign-in is bad input, not a missing session.
            (401, "invalid_code" | "code_expired") | (429, "too_many_attempts") => {
                AdminError::Invalid { field: Some("code".into()), problem: body.message, code }
            }
            (401, _) => AdminError::NotSignedIn,
            (403, _) => AdminError::Forbidden,
            (404, _) => AdminError::NotFound,
            (400 | 422, _) => AdminError::Invalid { field: field_in(&body.message), problem: body.message, code },
            (409, _) => AdminError::Conflict { code },
            (429, _) => {
                let wait = body.retry_after_s.map(|s| s.max(1) as u64).or(retry_after_header).unwrap_or(1);
                AdminError::RateLimited { retry_after_s: wait }
            }
            _ => AdminError::Server { status, code },
        }
    }
}

/// The field the server named in `invalid_request` messages: "…: 1 to 365 in `log_retention_days`".
fn field_in(message: &str) -> Option<String> {
    let (_, rest) = message.split_once('`')?;
    let (field, _) = rest.split_once('`')?;
    (!field.is_empty()).then(|| field.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_bodies_become_actionable_errors() {
        let body =
            br#"{"code":"invalid_request","message":"the request is malformed: 1 to 365 in `log_retention_days`"}"#;
        assert_eq!(
            AdminError::from_response(400, None, body),
            AdminError::Invalid {
                code: "invalid_request".into(),
                field: Some("log_retention_days".into()),
                problem: "the request is malformed: 1 to 365 in `log_retention_days`".into(),
            }
        );
        let limited = br#"{"code":"rate_limited","message":"too many requests","retry_after_s":42}"#;
        assert_eq!(AdminError::from_response(429, Some(7), limited), AdminError::RateLimited { retry_after_s: 42 });
        assert_eq!(AdminError::from_response(429, Some(7), b""), AdminError::RateLimited { retry_after_s: 7 });
        assert_eq!(AdminError::from_response(401, None, br#"{"code":"token_expired"}"#), AdminError::NotSignedIn);
        assert_eq!(
            AdminError::from_response(409, None, br#"{"code":"lock_key_in_use","message":"x"}"#),
            AdminError::Conflict { code: "lock_key_in_use".into() }
        );
        assert_eq!(
            AdminError::from_response(502, None, b"<html>"),
            AdminError::Server { status: 502, code: "unknown".into() }
        );
    }
}
