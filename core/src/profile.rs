//! The resident's profile: name, email, phone and picture they may correct; the unit set by
//! the building, shown read-only.

use serde::{Deserialize, Serialize};

/// Whether a unit is a home or a workplace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    Apartment,
    Office,
}

/// The apartment or office the building assigned; the resident cannot change it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub id: String,
    pub name: String,
    pub kind: UnitKind,
}

/// What the backend holds as the resident's profile.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Random identifier of the person; never derived from who they are.
    pub user_id: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub unit: Option<Unit>,
    pub has_picture: bool,
    /// Server time of the last change, unix seconds.
    pub updated_at: i64,
    /// A new email or phone waiting for the code sent to it; see
    /// [`Client::confirm_contact_change`](crate::Client::confirm_contact_change).
    #[serde(default)]
    pub pending_contact: Option<PendingContact>,
}

/// Email or phone: the two ways to sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactField {
    Email,
    Phone,
}

/// A change of email or phone that takes effect only once the code sent to the new address
/// is confirmed, so nobody can claim an address they do not own.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingContact {
    pub field: ContactField,
    /// The new address, as the server will store it.
    pub value: String,
    /// Server time, unix seconds, after which the code no longer confirms it.
    pub expires_at: i64,
}

impl std::fmt::Debug for PendingContact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingContact").field("field", &self.field).finish_non_exhaustive()
    }
}

// Personal data stays out of logs even when someone logs a profile with `{:?}`.
impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("has_email", &self.email.is_some())
            .field("has_phone", &self.phone.is_some())
            .field("unit", &self.unit.as_ref().map(|u| u.kind))
            .field("has_picture", &self.has_picture)
            .field("pending_contact", &self.pending_contact.as_ref().map(|p| p.field))
            .finish_non_exhaustive()
    }
}

/// A correction to the profile; `None` leaves a field as it is. A new name applies at once; a
/// new email or phone (one at a time) comes back as [`Profile::pending_contact`] until
/// confirmed with the code sent to it.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProfileUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

impl std::fmt::Debug for ProfileUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileUpdate")
            .field("name", &self.name.is_some())
            .field("email", &self.email.is_some())
            .field("phone", &self.phone.is_some())
            .finish()
    }
}

/// Largest picture the backend accepts.
pub const MAX_PICTURE_BYTES: usize = 2 * 1024 * 1024;

/// Checks a picture by its bytes before uploading, so the user hears at once what is wrong.
pub(crate) fn check_picture(bytes: &[u8]) -> crate::Result<()> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    const JPEG: &[u8] = b"\xff\xd8\xff";
    if bytes.len() > MAX_PICTURE_BYTES {
        return Err(crate::Error::InvalidInput { field: "picture", reason: "larger than 2 MB" });
    }
    if !(bytes.starts_with(PNG) || bytes.starts_with(JPEG)) {
        return Err(crate::Error::InvalidInput { field: "picture", reason: "must be a PNG or JPEG image" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_has_no_personal_data() {
        let p = Profile {
            user_id: "7c0f".into(),
            name: "Ada Lovelace".into(),
            email: Some("ada@example.com".into()),
            phone: Some("+4790000001".into()),
            unit: None,
            has_picture: false,
            updated_at: 0,
            pending_contact: Some(PendingContact {
                field: ContactField::Email,
                value: "ada.new@example.com".into(),
                expires_at: 1,
            }),
        };
        let out = format!("{p:?}");
        for secret in ["Ada", "ada@example.com", "ada.new@example.com", "+4790000001", "7c0f"] {
            assert!(!out.contains(secret), "{out}");
        }
    }

    #[test]
    fn pictures_are_checked_by_content() {
        assert!(check_picture(b"\x89PNG\r\n\x1a\nrest").is_ok());
        assert!(check_picture(b"\xff\xd8\xff\xe0rest").is_ok());
        assert!(check_picture(b"GIF89a").is_err());
        let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
        big.resize(MAX_PICTURE_BYTES + 1, 0);
        assert!(check_picture(&big).is_err());
    }
}
