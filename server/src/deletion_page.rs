//! Account deletion for people without the app: plain HTML forms, no JavaScript. The same
//! one-time deletion codes, rate limits and deletion as `POST /v1/me/delete`.
//!
//! `GET /delete-account` asks for the email or phone; `POST /delete-account/request` sends a
//! code (answering the same whether or not an account exists) and shows the confirmation
//! form; `POST /delete-account/confirm` deletes and shows the receipt's dates. Everything
//! echoed into the page is HTML-escaped.

use std::net::IpAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{new_code, CodePurpose};
use crate::client_ip::ClientIp;
use crate::error::ApiError;
use crate::identity::Identifier;
use crate::privacy::{confirm_deletion, request_hash, DeletionReceipt, Who};
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeletionPageRequest {
    /// Email address or phone number of the account.
    #[schema(
        max_length = 254,
        pattern = r#"^([ ()-]{0,4}\+[ ()-]{0,4}([0-9][ ()-]{0,4}){8,15}|[\x21-\x3f\x41-\x7e]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$"#
    )]
    pub identifier: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeletionPageConfirm {
    #[schema(
        max_length = 254,
        pattern = r#"^([ ()-]{0,4}\+[ ()-]{0,4}([0-9][ ()-]{0,4}){8,15}|[\x21-\x3f\x41-\x7e]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$"#
    )]
    pub identifier: String,
    /// The 6-digit code that was sent.
    #[schema(pattern = r"^[0-9]{6}$")]
    pub code: String,
    /// Filled in by the form: makes a resubmission answer with the same receipt.
    #[schema(format = Uuid)]
    pub request_id: String,
}

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM UTC` for unix seconds (proleptic Gregorian, no time-zone database).
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} – Porta</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}\
         label,input,button{{display:block;font-size:1rem;margin:.4rem 0}}input{{width:100%;padding:.4rem}}\
         button{{padding:.5rem 1rem}}.error{{color:#a00}}</style></head>\
         <body><h1>{title}</h1>\n{body}\n</body></html>\n",
        title = escape_html(title),
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

const EXPLANATION: &str = "<p>Deleting your Porta account removes your name, email address, \
phone number, picture, signed-in devices, device keys, door access and consents. Your phones \
can no longer open doors. Door entries your building must keep are anonymised: only the door, \
the time and the decision remain. Backups holding your account are erased within 90 days.</p>";

fn request_form(identifier: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/delete-account/request\">\
         <label for=\"identifier\">Email address or phone number of your account</label>\
         <input id=\"identifier\" name=\"identifier\" required autocomplete=\"username\" value=\"{}\">\
         <button type=\"submit\">Send me a code</button></form>",
        escape_html(identifier)
    )
}

fn confirm_form(identifier: &str, request_id: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/delete-account/confirm\">\
         <input type=\"hidden\" name=\"identifier\" value=\"{identifier}\">\
         <input type=\"hidden\" name=\"request_id\" value=\"{request_id}\">\
         <label for=\"code\">6-digit code sent to {identifier}</label>\
         <input id=\"code\" name=\"code\" required inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"6\">\
         <button type=\"submit\">Delete my account permanently</button></form>",
        identifier = escape_html(identifier),
        request_id = escape_html(request_id),
    )
}

fn error_page(err: &ApiError, form: String) -> Response {
    let status = err.status();
    let mut response = page(
        status,
        "Delete your Porta account",
        &format!("<p class=\"error\" role=\"alert\">{}</p>\n{form}", escape_html(&err.to_string())),
    );
    if let ApiError::RateLimited { retry_after_s } = err {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from((*retry_after_s).max(1)));
    }
    response
}

/// The deletion page: asks for the account's email address or phone number.
#[utoipa::path(
    get,
    path = "/delete-account",
    tag = "privacy",
    responses((status = 200, description = "HTML form", content_type = "text/html", body = String))
)]
pub async fn show() -> Response {
    page(StatusCode::OK, "Delete your Porta account", &format!("{EXPLANATION}\n{}", request_form("")))
}

/// Counts a deletion-code request for `identifier` and, if an account goes by it, stores a
/// fresh code and returns it for sending. Without an account only the request is counted, so
/// the answer looks the same.
async fn issue_code(state: &AppState, identifier: &Identifier, ip: IpAddr) -> Result<Option<String>, ApiError> {
    let now = state.clock.now();
    let code = state.privacy.account_exists(identifier).await?.then(new_code);
    state
        .auth
        .issue_code(identifier, CodePurpose::DeleteAccount, ip, code.as_deref(), now, (&state.limits).into())
        .await?;
    Ok(code)
}

/// Sends a deletion code (the answer is the same whether or not an account exists) and
/// shows the confirmation form.
#[utoipa::path(
    post,
    path = "/delete-account/request",
    tag = "privacy",
    request_body(content = DeletionPageRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "HTML confirmation form", content_type = "text/html", body = String),
        (status = 400, description = "HTML: not an email address or phone number", content_type = "text/html", body = String),
        (status = 429, description = "HTML: rate limited; see `Retry-After`", content_type = "text/html", body = String),
    )
)]
pub async fn request(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    form: Result<Form<DeletionPageRequest>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(&ApiError::InvalidRequest, request_form(""));
    };
    let Some(identifier) = Identifier::parse(&form.identifier) else {
        return error_page(&ApiError::InvalidIdentifier, request_form(&form.identifier));
    };
    let sent = issue_code(&state, &identifier, client).await;
    match sent {
        Err(err) => error_page(&err, request_form(identifier.as_str())),
        Ok(code) => {
            if let Err(err) = crate::auth::deliver(&state, &identifier, code).await {
                return error_page(&err, request_form(identifier.as_str()));
            }
            let request_id = uuid::Uuid::new_v4().to_string();
            page(
                StatusCode::OK,
                "Check your messages",
                &format!(
                    "<p>If a Porta account exists for {}, we sent it a 6-digit code. \
                     It is valid for {} minutes.</p>\n{}",
                    escape_html(identifier.as_str()),
                    state.limits.code_ttl_s / 60,
                    confirm_form(identifier.as_str(), &request_id)
                ),
            )
        }
    }
}

/// Deletes the account like `POST /v1/me/delete` and shows the receipt's dates.
#[utoipa::path(
    post,
    path = "/delete-account/confirm",
    tag = "privacy",
    request_body(content = DeletionPageConfirm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "HTML receipt", content_type = "text/html", body = String),
        (status = 400, description = "HTML: malformed form", content_type = "text/html", body = String),
        (status = 401, description = "HTML: wrong or expired code", content_type = "text/html", body = String),
        (status = 429, description = "HTML: too many wrong codes", content_type = "text/html", body = String),
    )
)]
pub async fn confirm(
    State(state): State<AppState>,
    form: Result<Form<DeletionPageConfirm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(&ApiError::InvalidRequest, request_form(""));
    };
    let Some(identifier) = Identifier::parse(&form.identifier) else {
        return error_page(&ApiError::InvalidIdentifier, request_form(&form.identifier));
    };
    let Some(hash) = request_hash(&form.request_id) else {
        return error_page(&ApiError::InvalidRequest, request_form(identifier.as_str()));
    };
    let result = confirm_deletion(&state, &Who::Identifier(identifier.clone()), &form.code, &hash).await;
    match result {
        Ok(DeletionReceipt { deleted_at, backups_purged_by }) => page(
            StatusCode::OK,
            "Your account is deleted",
            &format!(
                "<p>Deleted on <time datetime=\"{deleted_at}\">{}</time>.</p>\
                 <p>Backups holding your account will be erased by \
                 <time datetime=\"{backups_purged_by}\">{}</time>.</p>\
                 <p>Receipt reference: <code>{}</code></p>",
                format_utc(deleted_at),
                format_utc(backups_purged_by),
                escape_html(&form.request_id),
            ),
        ),
        Err(err @ (ApiError::TooManyAttempts | ApiError::CodeExpired)) => {
            error_page(&err, request_form(identifier.as_str()))
        }
        Err(err) => error_page(&err, confirm_form(identifier.as_str(), &form.request_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            escape_html(r#"<script>alert("x'&")</script>"#),
            "&lt;script&gt;alert(&quot;x&#39;&amp;&quot;)&lt;/script&gt;"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(1_750_000_000), "2025-06-15 15:06 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00 UTC");
    }
}
