//! Normalising and validating the things people type: emails, phone numbers, names.

/// A normalised sign-in identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifier {
    Email(String),
    Phone(String),
}

impl Identifier {
    /// Emails if it contains `@`, phone numbers otherwise.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.contains('@') {
            normalize_email(raw).map(Identifier::Email)
        } else {
            normalize_phone(raw).map(Identifier::Phone)
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Identifier::Email(s) | Identifier::Phone(s) => s,
        }
    }
}

/// Trimmed and lowercased; one `@`, non-empty local part, a dotted domain, at most 254 chars.
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() || email.len() > 254 {
        return None;
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (local, domain) = email.split_once('@')?;
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return None;
    }
    if !domain.contains('.') || domain.split('.').any(str::is_empty) {
        return None;
    }
    // ASCII, as the API document's pattern says: printable local part, LDH domain labels.
    if !local.chars().all(|c| c.is_ascii_graphic())
        || !domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return None;
    }
    Some(email)
}

/// Spaces, dashes and parentheses are dropped; the rest must be `+` and 8-15 digits (E.164).
pub fn normalize_phone(raw: &str) -> Option<String> {
    let phone: String = raw.trim().chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
    let digits = phone.strip_prefix('+')?;
    if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Some(phone)
    } else {
        None
    }
}

/// Why a name (a person's or a device's) was refused. The message says what is wrong
/// without echoing the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("it is empty")]
    Empty,
    #[error("it is longer than {0} characters")]
    TooLong(usize),
    #[error("it contains control characters")]
    Control,
    /// Bidi overrides and zero-width characters let a name look like another in a UI.
    #[error("it contains invisible or text-direction characters")]
    Invisible,
}

/// Characters a name must not contain: control characters (Cc), format characters (Cf:
/// bidi embeddings, overrides and isolates, zero-width spaces and joiners, the BOM, soft
/// hyphen, tags...), line and paragraph separators, and the blank fillers that render as
/// nothing. Any of them lets one name pass for another on screen.
pub fn is_disallowed_in_name(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'                       // soft hyphen
            | '\u{034F}'                     // combining grapheme joiner
            | '\u{061C}'                     // Arabic letter mark
            | '\u{0600}'..='\u{0605}' | '\u{06DD}' | '\u{070F}' | '\u{0890}'..='\u{0891}' | '\u{08E2}'
            | '\u{115F}'..='\u{1160}'         // Hangul fillers
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'         // Mongolian variation selectors and vowel separator
            | '\u{200B}'..='\u{200F}'         // zero-width space, (non-)joiner, LRM, RLM
            | '\u{2028}'..='\u{202E}'         // line/paragraph separators, bidi embeddings and overrides
            | '\u{2060}'..='\u{206F}'         // word joiner, invisible operators, bidi isolates
            | '\u{3164}' | '\u{FFA0}'           // Hangul fillers
            | '\u{FE00}'..='\u{FE0F}'         // variation selectors
            | '\u{FEFF}'                     // BOM / zero-width no-break space
            | '\u{FFF9}'..='\u{FFFB}'         // interlinear annotation
            | '\u{110BD}' | '\u{110CD}' | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}' | '\u{E0020}'..='\u{E007F}' // tags
            | '\u{E0100}'..='\u{E01EF}'       // variation selectors supplement
        )
}

/// Trimmed, 1 to `max_chars` characters, none of them control, invisible or text-direction
/// characters ([`is_disallowed_in_name`]).
pub fn check_name(raw: &str, max_chars: usize) -> Result<String, NameError> {
    // Counted as sent, surrounding spaces included, as the API document's `maxLength` does.
    if raw.chars().count() > max_chars {
        return Err(NameError::TooLong(max_chars));
    }
    let name = raw.trim();
    if name.chars().any(char::is_control) {
        return Err(NameError::Control);
    }
    if name.chars().any(is_disallowed_in_name) {
        return Err(NameError::Invisible);
    }
    match name.chars().count() {
        0 => Err(NameError::Empty),
        n if n > max_chars => Err(NameError::TooLong(max_chars)),
        _ => Ok(name.to_owned()),
    }
}

/// Longest name a person may have.
pub const MAX_NAME_CHARS: usize = 100;

/// A person's name: see [`check_name`].
pub fn normalize_name(raw: &str) -> Result<String, NameError> {
    check_name(raw, MAX_NAME_CHARS)
}

/// For logs: enough to tell identifiers apart while debugging, not enough to identify anyone.
pub fn mask(identifier: &str) -> String {
    if let Some((local, domain)) = identifier.split_once('@') {
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    } else {
        let chars: Vec<char> = identifier.chars().collect();
        if chars.len() <= 5 {
            return "***".into();
        }
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 2..].iter().collect();
        format!("{head}***{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(normalize_email("  Ada@Example.COM ").as_deref(), Some("ada@example.com"));
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@example",
            "a@b@c.com",
            "ada@.com",
            "a da@x.com",
            "ada@example..com",
            "ada@f.0*",
            "\"a b\"@x.com",
            "adá@x.com",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
        assert_eq!(normalize_email(&format!("a@{}.com", "x".repeat(250))), None);
    }

    #[test]
    fn phones() {
        assert_eq!(normalize_phone("+47 (123) 45-678").as_deref(), Some("+4712345678"));
        for bad in ["4712345678", "+4712", "+1234567890123456", "+47abc45678", "+"] {
            assert_eq!(normalize_phone(bad), None, "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(normalize_name("  Ada ").as_deref(), Ok("Ada"));
        assert_eq!(normalize_name("   "), Err(NameError::Empty));
        assert_eq!(normalize_name("a\u{7}b"), Err(NameError::Control));
        assert_eq!(normalize_name(&"x".repeat(101)), Err(NameError::TooLong(100)));
        assert_eq!(normalize_name(&format!(" {} ", "x".repeat(99))), Err(NameError::TooLong(100)));
        assert!(normalize_name(&"é".repeat(100)).is_ok());
        assert!(normalize_name("Zoë Ærøskøbing-李").is_ok());
        for spoof in
            ["Ada\u{202E}nosirraH", "Ad\u{200B}a", "\u{FEFF}Ada", "Ada\u{2066}x\u{2069}", "a\u{2028}b", "a\u{00AD}b"]
        {
            assert_eq!(normalize_name(spoof), Err(NameError::Invisible), "{spoof:?}");
        }
    }

    #[test]
    fn masking() {
        assert_eq!(mask("ada@example.com"), "a***@example.com");
        assert_eq!(mask("+4712345678"), "+47***78");
    }
}
