//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; not a stable API): each
//! server answer the client reads, from raw bytes to domain types, the way the client reads it.

use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use crate::api::ErrorResponse;
use crate::error::{Error, Result};

/// The server answers the client parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `GET /v1/me/doors`: decoded, validated, then every door's access looked up.
    Doors,
    /// `GET /v1/me/revocations?since=`: the deltas decoded, verified against `authority` and
    /// checked to chain on from `since`.
    Revocations { authority: [u8; 32], since: u64 },
    /// `GET /v1/me/profile`.
    Profile,
    /// `GET /v1/me/access-log`.
    AccessLog,
    /// `GET /v1/me/devices`.
    Devices,
    /// `GET /v1/me/data`.
    MyData,
    /// `GET /v1/me/consents`.
    Consents,
    /// `PUT /v1/me/consents/{purpose}`.
    Consent,
    /// `POST /v1/me/delete` and `GET /v1/deletion-receipts/{id}`.
    DeletionReceipt,
    /// Sign-in and refresh: the tokens, turned into a session.
    Tokens,
    /// The session and pending deletion as kept in the secure store.
    Stored,
    /// A non-success answer with this HTTP status, mapped onto [`Error`].
    ErrorBody(u16),
    /// `GET /v1/me/invitations`.
    Invitations,
    /// `POST /v1/me/invitations`: the link and code, kept secret.
    CreatedInvitation,
    /// `POST /v1/guests`: a guest's session and what it was given.
    GuestSession,
    /// Not an answer: what a person pastes or types as an invitation link or code.
    InvitationInput,
}

/// Parses `body` as `answer`. Any `Err` is fine; a panic is the bug being hunted.
pub fn parse(answer: Answer, body: &[u8], now: i64) -> Result<()> {
    match answer {
        Answer::Doors => {
            let doors: crate::doors::DoorsResponse = json(body)?;
            let valid = doors.validate();
            for d in &doors.doors {
                let _ = doors.access(d.door_id, now);
            }
            let _ = (doors.authority(), doors.lock_ids());
            valid
        }
        Answer::Revocations { authority, since } => {
            let authority = porta_protocol::VerifyingKey::from_bytes(&authority)
                .map_err(|_| Error::InvalidResponse("authority key invalid".into()))?;
            json::<crate::doors::RevocationsResponse>(body)?.verified(&authority, since).map(drop)
        }
        Answer::Profile => json::<crate::Profile>(body).map(|p| drop(format!("{p:?}"))),
        Answer::AccessLog => json::<crate::AccessLog>(body).map(|l| l.events.iter().for_each(|e| _ = e.opened())),
        Answer::Devices => json::<Vec<crate::Device>>(body).map(drop),
        Answer::MyData => json::<crate::MyData>(body).map(drop),
        Answer::Consents => json::<Vec<crate::Consent>>(body).map(drop),
        Answer::Consent => json::<crate::Consent>(body).map(drop),
        Answer::DeletionReceipt => json::<crate::DeletionReceipt>(body).map(drop),
        Answer::Tokens => json::<crate::auth::TokenResponse>(body).map(|t| drop(format!("{:?}", t.into_session()))),
        Answer::Stored => {
            let session = json::<crate::auth::Session>(body).map(|s| drop(format!("{s:?}")));
            let pending = json::<crate::privacy::PendingDeletion>(body).map(drop);
            session.or(pending)
        }
        Answer::Invitations => json::<crate::Invitations>(body).map(|i| drop(format!("{i:?}"))),
        Answer::CreatedInvitation => json::<crate::CreatedInvitation>(body).map(|c| drop(format!("{c:?}"))),
        Answer::GuestSession => json::<crate::invitations::GuestSession>(body).map(|g| {
            let schedule = g.invitation.schedule.as_ref().map(ToString::to_string);
            drop((format!("{:?}", g.tokens.into_session()), schedule, g.expires_at))
        }),
        Answer::InvitationInput => {
            let text = std::str::from_utf8(body).map_err(|_| Error::InvalidResponse("not UTF-8".into()))?;
            crate::invitations::normalize(text).map(|token| {
                // Whatever is accepted is the canonical form: 40 characters of the alphabet.
                assert_eq!(token.expose().len(), 40);
                assert!(token.expose().bytes().all(|b| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b)));
            })
        }
        Answer::ErrorBody(status) => {
            let status = StatusCode::from_u16(status).map_err(|_| Error::InvalidResponse("status".into()))?;
            let resp = ErrorResponse::from_parts(status, None, body);
            let _ = resp.is_auth_failure();
            Err(resp.into_error())
        }
    }
}

fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::InvalidResponse(crate::error::json_error("fuzz", &e)))
}
