//! Guest invitations: a resident invites a guest to some doors for a window (and optionally a
//! weekly schedule); the guest accepts a link or a typed code, with an account or without one.
//!
//! The token is a bearer secret: it travels as [`Secret`], is normalised here before any
//! request, and never appears in an error, a log line or a `Debug` print.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, InvitationError, Result};
use crate::secret::Secret;

/// Crockford base32, as the server encodes the 25-byte token.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 25 bytes in base32 without padding.
pub const TOKEN_CHARS: usize = 40;
/// Domain separation of the guest's proof of possession (the server checks the same bytes).
const GUEST_PROOF_CONTEXT: &[u8] = b"porta-guest-v1";

/// Turns what a guest pasted or typed (a `https://…/i/<token>` link, a `porta://invite/<token>`
/// link, or the code in any case, with dashes or spaces, with `I`/`L`/`O` for `1`/`0`) into the
/// canonical 40 characters. Anything else is [`InvitationError::Unknown`], decided here without
/// a request.
pub(crate) fn normalize(input: &str) -> Result<Secret> {
    let unknown = || Error::Invitation(InvitationError::Unknown);
    let mut rest = input.trim();
    for marker in ["porta://invite/", "/i/"] {
        if let Some(at) = rest.find(marker) {
            rest = &rest[at + marker.len()..];
            rest = rest.split(['?', '#']).next().unwrap_or_default();
            break;
        }
    }
    let mut token = zeroize::Zeroizing::new(String::with_capacity(TOKEN_CHARS));
    for c in rest.chars() {
        let c = match c.to_ascii_uppercase() {
            ' ' | '-' => continue,
            'I' | 'L' => '1',
            'O' => '0',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
            _ => return Err(unknown()),
        };
        if token.len() == TOKEN_CHARS {
            return Err(unknown());
        }
        token.push(c);
    }
    if token.len() != TOKEN_CHARS {
        return Err(unknown());
    }
    Ok(Secret::new(token.as_str()))
}

/// The guest's proof that it holds `key`: an Ed25519 signature over
/// `context || SHA-256(token) || public key || time (u64 BE)`.
pub(crate) fn guest_proof(key: &porta_protocol::SigningKey, token: &Secret, time: i64) -> [u8; 64] {
    use ed25519_dalek::Signer;
    let mut message = Vec::with_capacity(GUEST_PROOF_CONTEXT.len() + 32 + 32 + 8);
    message.extend_from_slice(GUEST_PROOF_CONTEXT);
    message.extend_from_slice(&Sha256::digest(token.expose().as_bytes()));
    message.extend_from_slice(&key.verifying_key().to_bytes());
    message.extend_from_slice(&(time.max(0) as u64).to_be_bytes());
    key.sign(&message).to_bytes()
}

/// One weekly slot, in the site's local time: on `days` (bit 0 = Monday … bit 6 = Sunday),
/// from `start_minute` to `end_minute` after midnight (end exclusive, at most 1440).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleWindow {
    pub days: u8,
    pub start_minute: u16,
    pub end_minute: u16,
}

/// Bit of [`ScheduleWindow::days`] for Monday; the next days follow in order.
pub const MONDAY: u8 = 1;
/// Short weekday names, Monday first, for [`GuestSchedule`]'s `Display`.
const DAY_NAMES: [&str; 7] = ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"];

impl ScheduleWindow {
    /// The days of `names` ("Mo", "Tu", … in any case, or "Mo-Fr") as a day mask; `None` for
    /// an unknown name.
    pub fn days_from_names(names: &str) -> Option<u8> {
        let day = |n: &str| DAY_NAMES.iter().position(|d| d.eq_ignore_ascii_case(n.trim()));
        let mut mask = 0u8;
        for part in names.split(',') {
            match part.split_once('-') {
                Some((from, to)) => {
                    let (from, to) = (day(from)?, day(to)?);
                    if from > to {
                        return None;
                    }
                    (from..=to).for_each(|d| mask |= 1 << d);
                }
                None => mask |= 1 << day(part)?,
            }
        }
        Some(mask)
    }
}

/// A weekly schedule in the site's local time, which is UTC + `utc_offset_minutes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestSchedule {
    pub utc_offset_minutes: i16,
    pub windows: Vec<ScheduleWindow>,
}

/// "Tu 09:00-12:00", windows joined by ", ": what a UI or the terminal shows.
impl std::fmt::Display for GuestSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        for (i, w) in self.windows.iter().enumerate() {
            let days: Vec<&str> = (0..7).filter(|d| w.days & (1 << d) != 0).map(|d| DAY_NAMES[d]).collect();
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{} {}-{}", days.join(","), hm(w.start_minute), hm(w.end_minute))?;
        }
        Ok(())
    }
}

/// When one grant of a door is valid: the window, and within it the schedule if any.
/// A resident's own grant usually has no end (`not_after` = 4102444800, year 2100).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessWindow {
    pub not_before: i64,
    pub not_after: i64,
    pub schedule: Option<GuestSchedule>,
}

/// A door named in an invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitedDoor {
    pub door_id: u32,
    pub name: String,
}

/// What a resident asks for when inviting a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvitation {
    /// Doors the resident may open for the whole window (1 to 32).
    pub doors: Vec<u32>,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// Weekly slots in the site's local time; `None` = any time in the window.
    pub schedule: Option<Vec<ScheduleWindow>>,
    /// How many guest devices may accept it (1 to 50 on the reference server).
    pub uses: u32,
    /// Shown to the resident only ("cleaner"); at most 64 characters.
    pub label: Option<String>,
}

impl NewInvitation {
    /// One use, no schedule, no label.
    pub fn new(doors: Vec<u32>, not_before: i64, not_after: i64) -> Self {
        Self { doors, not_before, not_after, schedule: None, uses: 1, label: None }
    }

    pub(crate) fn request_body(&self) -> serde_json::Value {
        serde_json::json!({
            "doors": self.doors,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "schedule": self.schedule.as_ref().map(|windows| serde_json::json!({ "windows": windows })),
            "uses": self.uses,
            "label": self.label,
        })
    }
}

/// An invitation as its resident sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub id: String,
    pub label: Option<String>,
    pub site_name: String,
    pub doors: Vec<InvitedDoor>,
    pub not_before: i64,
    pub not_after: i64,
    pub schedule: Option<GuestSchedule>,
    pub uses: u32,
    pub uses_left: u32,
    pub created_at: i64,
    pub revoked: bool,
}

/// A new invitation with what to hand the guest. `link` and `code` carry the token: they are
/// [`Secret`]s, so printing the struct never shows them.
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedInvitation {
    pub invitation: Invitation,
    /// `<server>/i/<token>`.
    pub link: Secret,
    /// The same token to type, in groups of four (`7K2M-…`).
    pub code: Secret,
}

/// Someone who accepted one of my invitations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guest {
    pub id: String,
    /// `None` once the invitation is gone (its last use was taken, or it expired).
    pub invitation_id: Option<String>,
    pub label: Option<String>,
    pub doors: Vec<InvitedDoor>,
    pub not_before: i64,
    pub not_after: i64,
    pub schedule: Option<GuestSchedule>,
    pub accepted_at: i64,
    /// Whether the guest attached the access to an account (else an anonymous guest).
    pub has_account: bool,
}

/// The invitations I sent that can still be accepted, and the guests who accepted any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitations {
    pub invitations: Vec<Invitation>,
    pub guests: Vec<Guest>,
}

/// What an invitation offers, before accepting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationPreview {
    pub site_name: String,
    pub doors: Vec<InvitedDoor>,
    pub not_before: i64,
    pub not_after: i64,
    pub schedule: Option<GuestSchedule>,
    pub uses_left: u32,
}

/// The access an accepted invitation gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedInvitation {
    pub guest_id: String,
    pub site_name: String,
    pub doors: Vec<InvitedDoor>,
    pub not_before: i64,
    pub not_after: i64,
    pub schedule: Option<GuestSchedule>,
}

/// `POST /v1/guests`: an anonymous guest's session and what it was given.
#[derive(Deserialize)]
pub(crate) struct GuestSession {
    #[serde(flatten)]
    pub tokens: crate::auth::TokenResponse,
    /// The window end: the session ends then.
    pub expires_at: i64,
    pub invitation: AcceptedInvitation,
}

/// Ids the server gives are UUIDs; anything else is refused rather than put into a path.
pub(crate) fn check_id(field: &'static str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(Error::InvalidInput { field, reason: "not an id from this server" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "7K2MAB0C1DEFGHJKMNPQRSTVWXYZ0123456789AB";

    fn grouped(t: &str) -> String {
        t.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("-")
    }

    fn norm(input: &str) -> std::result::Result<String, String> {
        normalize(input).map(|s| s.expose().to_owned()).map_err(|e| e.to_string())
    }

    #[test]
    fn a_link_gives_the_token_without_query_or_fragment() {
        assert_eq!(norm(&format!("https://porta.example.com/i/{TOKEN}")).unwrap(), TOKEN);
        assert_eq!(norm(&format!("  https://porta.example.com/i/{TOKEN}?utm=x#top ")).unwrap(), TOKEN);
        assert_eq!(norm(&format!("https://porta.example.com/i/{TOKEN}#x")).unwrap(), TOKEN);
    }

    #[test]
    fn an_app_link_gives_the_token() {
        assert_eq!(norm(&format!("porta://invite/{TOKEN}")).unwrap(), TOKEN);
        assert_eq!(norm(&format!("porta://invite/{}", TOKEN.to_lowercase())).unwrap(), TOKEN);
    }

    #[test]
    fn a_typed_code_with_dashes_spaces_and_lowercase_is_canonical() {
        let code = grouped(TOKEN);
        assert_eq!(code.len(), 49);
        assert_eq!(norm(&code).unwrap(), TOKEN);
        assert_eq!(norm(&code.to_lowercase()).unwrap(), TOKEN);
        assert_eq!(norm(&code.replace('-', " ")).unwrap(), TOKEN);
        assert_eq!(norm(&format!(" {} ", code.replace('-', "  - "))).unwrap(), TOKEN);
    }

    #[test]
    fn confusable_letters_read_as_the_digits_they_look_like() {
        let typed = TOKEN.replacen('1', "I", 1).replacen('0', "O", 1).replace('1', "l");
        assert_ne!(typed, TOKEN);
        assert_eq!(norm(&typed).unwrap(), TOKEN);
    }

    #[test]
    fn garbage_is_an_unknown_invitation_and_does_not_echo_the_input() {
        for bad in [
            "",
            "hello",
            &TOKEN[..39],
            &format!("{TOKEN}0"),
            &TOKEN.replacen('7', "U", 1), // U is not in Crockford's alphabet
            &TOKEN.replacen('7', "é", 1),
            "https://porta.example.com/i/",
            &format!("https://porta.example.com/x/{TOKEN}/extra"),
        ] {
            let e = normalize(bad).unwrap_err();
            assert!(matches!(e, Error::Invitation(InvitationError::Unknown)), "{bad}: {e:?}");
            assert!(!e.to_string().contains(&TOKEN[..8]) && !format!("{e:?}").contains(&TOKEN[..8]));
        }
    }

    #[test]
    fn the_normalised_token_never_prints() {
        let token = normalize(TOKEN).unwrap();
        assert_eq!(format!("{token:?} {token}"), "[redacted] [redacted]");
        let json = format!(
            r#"{{"invitation": {{"id": "i1", "label": null, "site_name": "S", "doors": [], "not_before": 1,
                "not_after": 2, "schedule": null, "uses": 1, "uses_left": 1, "created_at": 1, "revoked": false}},
                "link": "https://x/i/{TOKEN}", "code": "{}"}}"#,
            grouped(TOKEN)
        );
        let created: CreatedInvitation = serde_json::from_str(&json).unwrap();
        let printed = format!("{created:?}");
        assert!(!printed.contains(&TOKEN[..8]), "{printed}");
        assert_eq!(created.link.expose(), format!("https://x/i/{TOKEN}"));
    }

    #[test]
    fn the_proof_signs_the_documented_bytes() {
        use ed25519_dalek::Verifier;
        let key = porta_protocol::SigningKey::from_bytes(&[7; 32]);
        let token = normalize(TOKEN).unwrap();
        let signature = guest_proof(&key, &token, 1_700_000_000);
        let mut message = b"porta-guest-v1".to_vec();
        message.extend_from_slice(&Sha256::digest(TOKEN.as_bytes()));
        message.extend_from_slice(&key.verifying_key().to_bytes());
        message.extend_from_slice(&1_700_000_000u64.to_be_bytes());
        key.verifying_key().verify(&message, &ed25519_dalek::Signature::from_bytes(&signature)).unwrap();
    }

    #[test]
    fn the_request_sends_exactly_the_contract_fields() {
        let mut new = NewInvitation::new(vec![1], 10, 20);
        assert_eq!(
            new.request_body(),
            serde_json::json!({"doors": [1], "not_before": 10, "not_after": 20, "schedule": null, "uses": 1,
                               "label": null})
        );
        new.schedule = Some(vec![ScheduleWindow { days: 2, start_minute: 540, end_minute: 720 }]);
        new.label = Some("cleaner".into());
        assert_eq!(
            new.request_body()["schedule"],
            serde_json::json!({"windows": [{"days": 2, "start_minute": 540, "end_minute": 720}]})
        );
    }

    #[test]
    fn schedules_read_as_a_person_would_say_them() {
        assert_eq!(ScheduleWindow::days_from_names("Tu"), Some(2));
        assert_eq!(ScheduleWindow::days_from_names("mo-fr"), Some(0b1_1111));
        assert_eq!(ScheduleWindow::days_from_names("Sa,Su"), Some(0b110_0000));
        assert_eq!(ScheduleWindow::days_from_names("Tuesday"), None);
        assert_eq!(ScheduleWindow::days_from_names("Fr-Mo"), None);
        let s = GuestSchedule {
            utc_offset_minutes: 60,
            windows: vec![
                ScheduleWindow { days: 2, start_minute: 540, end_minute: 720 },
                ScheduleWindow { days: 0b110_0000, start_minute: 0, end_minute: 1440 },
            ],
        };
        assert_eq!(s.to_string(), "Tu 09:00-12:00, Sa,Su 00:00-24:00");
    }
}
