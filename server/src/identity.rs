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

/// Trimmed, 1-100 characters, no control characters.
pub fn normalize_name(raw: &str) -> Option<String> {
    let name = raw.trim();
    let len = name.chars().count();
    if (1..=100).contains(&len) && !name.chars().any(char::is_control) {
        Some(name.to_owned())
    } else {
        None
    }
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
        assert_eq!(normalize_name("  Ada ").as_deref(), Some("Ada"));
        assert_eq!(normalize_name("   "), None);
        assert_eq!(normalize_name("a\u{7}b"), None);
        assert_eq!(normalize_name(&"x".repeat(101)), None);
        assert!(normalize_name(&"é".repeat(100)).is_some());
    }

    #[test]
    fn masking() {
        assert_eq!(mask("ada@example.com"), "a***@example.com");
        assert_eq!(mask("+4712345678"), "+47***78");
    }
}
