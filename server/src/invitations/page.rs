//! `GET /i/<token>`: the page an invitation link opens. Plain HTML, no cookies, no scripts,
//! nothing loaded from elsewhere, and no `Referer` leaves with the token. It names the
//! building, the doors and the window (never who sent it), links to the app, and says
//! plainly when the link cannot be used any more.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use super::token::{Token, APP_LINK_PREFIX};
use super::InvitationPreview;
use crate::client_ip::ClientIp;
use crate::deletion_page::{escape_html, format_utc, page};
use crate::doors::Schedule;
use crate::error::ApiError;
use crate::site_time::SiteTime;
use crate::AppState;

const DAYS: [&str; 7] = ["Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays"];

/// `2026-12-08 09:00` in the site's local time, with its offset.
fn local_time(secs: i64, offset_minutes: i16) -> String {
    let local = format_utc(secs + i64::from(offset_minutes) * 60);
    let local = local.trim_end_matches(" UTC");
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let abs = offset_minutes.unsigned_abs();
    format!("{local} (UTC{sign}{:02}:{:02})", abs / 60, abs % 60)
}

fn minute(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// "Tuesdays 09:00–12:00; Saturdays, Sundays 10:00–14:00".
pub fn describe_schedule(schedule: &Schedule) -> String {
    schedule
        .windows
        .iter()
        .map(|w| {
            let days: Vec<&str> = (0..7).filter(|d| w.days & (1 << d) != 0).map(|d| DAYS[d]).collect();
            format!("{} {}–{}", days.join(", "), minute(w.start_minute), minute(w.end_minute))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn details(preview: &InvitationPreview, time: &SiteTime) -> String {
    let doors: String =
        preview.doors.iter().map(|d| format!("<li>{}</li>", escape_html(&d.name))).collect::<Vec<_>>().join("");
    let when = match &preview.schedule {
        None => "at any time in this window".to_owned(),
        Some(s) => format!("only {}", escape_html(&describe_schedule(s))),
    };
    format!(
        "<p>You are invited to <strong>{site}</strong>.</p>\
         <p>Doors:</p><ul>{doors}</ul>\
         <p>From {from} until {until}, {when}.</p>",
        site = escape_html(&preview.site_name),
        from = local_time(preview.not_before, time.offset_at(preview.not_before)),
        until = local_time(preview.not_after, time.offset_at(preview.not_after)),
    )
}

fn sorry(err: &ApiError) -> (&'static str, &'static str) {
    match err {
        ApiError::InvitationExpired => {
            ("This invitation has expired", "Its time window has ended. Ask the person who invited you for a new one.")
        }
        ApiError::InvitationUsedUp => (
            "This invitation has been used",
            "Every use of it has been taken. Ask the person who invited you for a new one.",
        ),
        ApiError::InvitationRevoked => ("This invitation was revoked", "The person who sent it withdrew it."),
        ApiError::RateLimited { .. } => {
            ("Too many attempts", "Too many unknown invitation links came from your network. Try again later.")
        }
        _ => (
            "Unknown invitation",
            "This link is not a Porta invitation, or it was mistyped. Check the link or the code.",
        ),
    }
}

/// The invitation's landing page.
#[utoipa::path(
    get,
    path = "/i/{token}",
    tag = "invitations",
    params(("token" = String, Path, description = "The invitation token from the link")),
    responses(
        (status = 200, description = "HTML page: the building, doors and window, and a link to open the app", content_type = "text/html"),
        (status = 404, description = "HTML page: unknown invitation", content_type = "text/html"),
        (status = 410, description = "HTML page: expired, used up or revoked", content_type = "text/html"),
        (status = 429, description = "HTML page: too many unknown tokens from this address", content_type = "text/html"),
    )
)]
pub async fn show(State(state): State<AppState>, ClientIp(client): ClientIp, Path(text): Path<String>) -> Response {
    let result = super::lookup(&state, &text, client).await;
    let mut response = match result {
        Ok((preview, time)) => {
            // Only a well-formed token gets here, so the app link and code are safe to show.
            let token = Token::parse(&text).map(|t| (t.as_str().to_owned(), t.code())).unwrap_or_default();
            let body = format!(
                "{details}<p><a href=\"{app}{token}\">Open in the Porta app</a></p>\
                 <p>Or enter this code in the app: <code>{code}</code></p>\
                 <p>You do not need an account. Porta keeps no name, email or phone number of a guest: \
                 only a random id and your phone's key, deleted when the invitation ends.</p>",
                details = details(&preview, &time),
                app = APP_LINK_PREFIX,
                token = escape_html(&token.0),
                code = escape_html(&token.1),
            );
            page(StatusCode::OK, "You are invited", &body)
        }
        Err(err) => {
            let (title, text) = sorry(&err);
            let mut response = page(err.status(), title, &format!("<p>{}</p>", escape_html(text)));
            if let ApiError::RateLimited { retry_after_s } = err {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s.max(1)));
            }
            response
        }
    };
    response.headers_mut().insert("x-robots-tag", HeaderValue::from_static("noindex, nofollow"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doors::ScheduleWindow;

    #[test]
    fn schedules_and_times_read_as_people_say_them() {
        let s = Schedule {
            utc_offset_minutes: 60,
            windows: vec![
                ScheduleWindow { days: 0b10, start_minute: 540, end_minute: 720 },
                ScheduleWindow { days: 0b110_0000, start_minute: 600, end_minute: 840 },
            ],
        };
        assert_eq!(describe_schedule(&s), "Tuesdays 09:00–12:00; Saturdays, Sundays 10:00–14:00");
        assert_eq!(local_time(0, 60), "1970-01-01 01:00 (UTC+01:00)");
        assert_eq!(local_time(0, -330), "1969-12-31 18:30 (UTC-05:30)");
    }
}
