//! Invitation tokens: what a link and a typable code carry.
//!
//! A token is 25 bytes: 16 random bytes (the secret: 128 bits), the window's end as a
//! big-endian u32 of Unix seconds, and a 5-byte HMAC-SHA-256 tag over both under the server's
//! invitation key. Only a SHA-256 of the token is stored, and only while the invitation can
//! still be used. The tag lets the server answer truthfully after the row is gone: a token it
//! made whose end has passed is `expired`, one whose row was deleted earlier was used up,
//! and one it never made is `unknown`. (Forging a tag only turns `unknown` into `used up`.)
//!
//! The text form is Crockford base32: 40 characters, grouped by four with `-` as a code.

use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

const RANDOM_LEN: usize = 16;
const TAG_LEN: usize = 5;
const TOKEN_LEN: usize = RANDOM_LEN + 4 + TAG_LEN;
/// Characters in the text form.
pub const TEXT_LEN: usize = 40;
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Path of the landing page; the link is `<server>/i/<token>`.
pub const LINK_PREFIX: &str = "/i/";
/// The app's custom scheme, which the landing page links to.
pub const APP_LINK_PREFIX: &str = "porta://invite/";

/// The server's key for invitation tags (kept in the database, created once).
#[derive(Clone)]
pub struct TokenKey(Zeroizing<[u8; 32]>);

impl TokenKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(bytes.as_mut());
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn tag(&self, body: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref()).expect("HMAC takes any key length");
        mac.update(b"porta-invitation-v1");
        mac.update(body);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

/// A token in its canonical text form. Never logged: `Debug` hides it.
pub struct Token(String);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// What a well-formed token says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Made by this server; its window ends at this time (Unix seconds).
    Ours { not_after: i64 },
    /// Well-formed but not made by this server.
    Foreign,
}

impl Token {
    /// A new token for a window ending at `not_after`.
    pub fn new(key: &TokenKey, not_after: i64) -> Self {
        let mut bytes = Zeroizing::new([0u8; TOKEN_LEN]);
        OsRng.fill_bytes(&mut bytes[..RANDOM_LEN]);
        let end = u32::try_from(not_after.max(0)).unwrap_or(u32::MAX);
        bytes[RANDOM_LEN..RANDOM_LEN + 4].copy_from_slice(&end.to_be_bytes());
        let tag = key.tag(&bytes[..RANDOM_LEN + 4]);
        bytes[RANDOM_LEN + 4..].copy_from_slice(&tag);
        Self(encode(&bytes))
    }

    /// Reads a link (`…/i/<token>`, `porta://invite/<token>`) or a typed code: spaces and
    /// dashes are ignored, case too, and `I`/`L`/`O` read as `1`/`1`/`0`. `None` if what
    /// remains is not a token's shape.
    pub fn parse(input: &str) -> Option<Self> {
        let input = input.trim();
        let tail = [APP_LINK_PREFIX, LINK_PREFIX]
            .iter()
            .find_map(|prefix| input.rfind(prefix).map(|at| &input[at + prefix.len()..]))
            .unwrap_or(input);
        let tail = tail.split(['?', '#', '/']).next().unwrap_or_default();
        let mut text = String::with_capacity(TEXT_LEN);
        for c in tail.chars() {
            let c = match c.to_ascii_uppercase() {
                ' ' | '-' => continue,
                'I' | 'L' => '1',
                'O' => '0',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || text.len() == TEXT_LEN {
                return None;
            }
            text.push(c);
        }
        (text.len() == TEXT_LEN).then_some(Self(text))
    }

    /// The canonical 40 characters (what the link carries).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The typable code: the same characters in groups of four.
    pub fn code(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
    }

    /// What is stored and looked up: hex SHA-256 of the canonical text.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// SHA-256 of the canonical text, as the guest's proof of possession signs it.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }

    pub fn check(&self, key: &TokenKey) -> Checked {
        let Some(bytes) = decode(&self.0) else { return Checked::Foreign };
        let tag = key.tag(&bytes[..RANDOM_LEN + 4]);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&tag[..], &bytes[RANDOM_LEN + 4..])) {
            return Checked::Foreign;
        }
        let end = u32::from_be_bytes(bytes[RANDOM_LEN..RANDOM_LEN + 4].try_into().expect("4 bytes"));
        Checked::Ours { not_after: i64::from(end) }
    }
}

fn encode(bytes: &[u8; TOKEN_LEN]) -> String {
    // 25 bytes = 200 bits = exactly 40 groups of 5 bits.
    let mut out = String::with_capacity(TEXT_LEN);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
        acc &= (1 << bits) - 1;
    }
    out
}

fn decode(text: &str) -> Option<Zeroizing<[u8; TOKEN_LEN]>> {
    let mut out = Zeroizing::new([0u8; TOKEN_LEN]);
    let (mut acc, mut bits, mut at) = (0u32, 0u32, 0usize);
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(at)? = (acc >> bits) as u8;
            at += 1;
            acc &= (1 << bits) - 1;
        }
    }
    (at == TOKEN_LEN).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_reads_back_from_its_link_and_its_code_and_says_when_it_ends() {
        let key = TokenKey::generate();
        let token = Token::new(&key, 1_800_000_000);
        assert_eq!(token.as_str().len(), TEXT_LEN);
        assert_eq!(token.check(&key), Checked::Ours { not_after: 1_800_000_000 });
        let code = token.code();
        assert_eq!(code.len(), TEXT_LEN + 9);
        for input in [
            format!("https://porta.example/i/{}", token.as_str()),
            format!("{APP_LINK_PREFIX}{}?from=mail", token.as_str()),
            code.to_lowercase(),
            code.replace('-', " "),
            format!("  {code}  "),
        ] {
            let parsed = Token::parse(&input).expect("parses");
            assert_eq!(parsed.as_str(), token.as_str());
            assert_eq!(parsed.hash(), token.hash());
        }
    }

    #[test]
    fn confusable_letters_read_as_digits() {
        let key = TokenKey::generate();
        let token = Token::new(&key, 1_800_000_000);
        let typed = token.as_str().replace('1', "l").replace('0', "O");
        assert_eq!(Token::parse(&typed).unwrap().as_str(), token.as_str());
    }

    #[test]
    fn a_token_of_another_server_or_a_changed_character_is_foreign() {
        let key = TokenKey::generate();
        let token = Token::new(&key, 1_800_000_000);
        assert_eq!(token.check(&TokenKey::generate()), Checked::Foreign);
        let mut text: Vec<u8> = token.as_str().bytes().collect();
        text[3] = if text[3] == b'A' { b'B' } else { b'A' };
        let changed = Token::parse(std::str::from_utf8(&text).unwrap()).unwrap();
        assert_eq!(changed.check(&key), Checked::Foreign);
    }

    #[test]
    fn malformed_input_is_not_a_token() {
        for input in ["", "abc", &"A".repeat(39), &"A".repeat(41), &format!("{}U", "A".repeat(39)), "ÅÅÅÅ"] {
            assert!(Token::parse(input).is_none(), "{input:?}");
        }
    }

    #[test]
    fn debug_output_hides_the_token() {
        let token = Token::new(&TokenKey::generate(), 1);
        assert_eq!(format!("{token:?}"), "Token(..)");
    }
}
