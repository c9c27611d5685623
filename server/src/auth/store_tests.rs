//! The behaviour every [`AuthStore`](super::store::AuthStore) backend must have, written
//! once. A backend's tests define `async fn get_store() -> Fixture` and invoke
//! [`auth_store_tests!`](crate::auth_store_tests).
//!
//! The fixture holds no residents, and one guest `guest-1` whose window ends at `now + 100`,
//! with its session `guest-1-session`.

use super::store::{AuthStore, CodeLimits, SignIn, TokenLifetimes};
use crate::identity::Identifier;

pub struct Fixture {
    pub store: Box<dyn AuthStore>,
    /// Keeps the backend's resources alive.
    pub _dir: Box<dyn std::any::Any + Send>,
    pub now: i64,
}

pub const LIMITS: CodeLimits = CodeLimits { ttl_s: 600, max_attempts: 3, per_identifier: 2, per_ip: 4, window_s: 600 };
pub const LIFETIMES: TokenLifetimes = TokenLifetimes { access_s: 900, refresh_s: 3600 };

pub fn who(text: &str) -> Identifier {
    Identifier::parse(text).expect("a valid identifier")
}

pub fn attempt(identifier: &str, code: &str) -> SignIn {
    SignIn { identifier: who(identifier), code: code.into(), device_name: "Phone".into(), ip: "192.0.2.1".into() }
}

impl Fixture {
    /// Sends `code` to `identifier` from one address.
    pub async fn send(&self, identifier: &str, code: &str, now: i64) -> Result<(), crate::error::ApiError> {
        let ip = "192.0.2.1".parse().unwrap();
        self.store.issue_code(&who(identifier), super::CodePurpose::SignIn, ip, Some(code), now, LIMITS).await
    }
}

#[macro_export]
macro_rules! auth_store_tests {
    ($get_store:ident) => {
        mod auth_store_suite {
            use super::$get_store;
            use $crate::auth::sha256_hex;
            use $crate::auth::store::Rotation;
            use $crate::auth::store_tests::{attempt, who, LIFETIMES, LIMITS};
            use $crate::auth::CodePurpose;
            use $crate::error::ApiError;

            #[tokio::test]
            async fn a_code_signs_in_once_and_the_account_is_made_once() {
                let f = $get_store().await;
                f.send("ann@example.com", "123456", f.now).await.unwrap();
                let first =
                    f.store.sign_in(&attempt("ann@example.com", "123456"), f.now, LIMITS, LIFETIMES).await.unwrap();
                assert_eq!(first.access_expires_at, f.now + LIFETIMES.access_s);
                let again = f.store.sign_in(&attempt("ann@example.com", "123456"), f.now, LIMITS, LIFETIMES).await;
                assert!(matches!(again, Err(ApiError::InvalidCode)), "a code is used up by signing in");
                f.send("ann@example.com", "654321", f.now + 1).await.unwrap();
                let second =
                    f.store.sign_in(&attempt("ann@example.com", "654321"), f.now, LIMITS, LIFETIMES).await.unwrap();
                assert_eq!(second.user_id, first.user_id, "the same account");
                assert_ne!(second.session_id, first.session_id, "a new session");
                assert_ne!(second.refresh_token, first.refresh_token);
            }

            #[tokio::test]
            async fn wrong_guesses_use_up_the_code_and_an_old_code_expires() {
                let f = $get_store().await;
                f.send("bo@example.com", "111111", f.now).await.unwrap();
                for _ in 0..LIMITS.max_attempts {
                    let wrong = f.store.sign_in(&attempt("bo@example.com", "999999"), f.now, LIMITS, LIFETIMES).await;
                    assert!(matches!(wrong, Err(ApiError::InvalidCode)));
                }
                let right = f.store.sign_in(&attempt("bo@example.com", "111111"), f.now, LIMITS, LIFETIMES).await;
                assert!(matches!(right, Err(ApiError::TooManyAttempts)), "the right code comes too late");

                f.send("cy@example.com", "222222", f.now).await.unwrap();
                let late = f.now + LIMITS.ttl_s;
                let expired = f.store.sign_in(&attempt("cy@example.com", "222222"), late, LIMITS, LIFETIMES).await;
                assert!(matches!(expired, Err(ApiError::CodeExpired)));
                let none = f.store.sign_in(&attempt("dee@example.com", "222222"), f.now, LIMITS, LIFETIMES).await;
                assert!(matches!(none, Err(ApiError::InvalidCode)), "no code pending");
            }

            #[tokio::test]
            async fn a_limited_code_request_is_refused_and_stores_nothing() {
                let f = $get_store().await;
                f.send("ann@example.com", "123456", f.now).await.unwrap();
                f.send("ann@example.com", "234567", f.now + 10).await.unwrap();
                match f.send("ann@example.com", "345678", f.now + 20).await {
                    Err(ApiError::RateLimited { retry_after_s }) => assert_eq!(retry_after_s, LIMITS.window_s - 20),
                    other => panic!("expected rate_limited, got {other:?}"),
                }
                f.send("bo@example.com", "456789", f.now + 20).await.expect("another identifier has its own limit");
                let refused =
                    f.store.sign_in(&attempt("ann@example.com", "345678"), f.now + 30, LIMITS, LIFETIMES).await;
                assert!(matches!(refused, Err(ApiError::InvalidCode)), "the refused code was not stored");
                f.store.sign_in(&attempt("ann@example.com", "234567"), f.now + 30, LIMITS, LIFETIMES).await.unwrap();
                // A code of another purpose never signs in.
                let ip = "192.0.2.9".parse().unwrap();
                f.store
                    .issue_code(&who("cy@example.com"), CodePurpose::DeleteAccount, ip, Some("567890"), f.now, LIMITS)
                    .await
                    .unwrap();
                let wrong_purpose =
                    f.store.sign_in(&attempt("cy@example.com", "567890"), f.now, LIMITS, LIFETIMES).await;
                assert!(matches!(wrong_purpose, Err(ApiError::InvalidCode)));
            }

            #[tokio::test]
            async fn a_refresh_token_rotates_once_and_its_reuse_revokes_the_session() {
                let f = $get_store().await;
                f.send("ann@example.com", "123456", f.now).await.unwrap();
                let first =
                    f.store.sign_in(&attempt("ann@example.com", "123456"), f.now, LIMITS, LIFETIMES).await.unwrap();
                let at = f.now + 60;
                let Rotation::Rotated(next) =
                    f.store.rotate_refresh_token(&sha256_hex(&first.refresh_token), at, LIFETIMES).await.unwrap()
                else {
                    panic!("a fresh refresh token rotates");
                };
                assert_eq!(
                    (next.user_id.as_str(), next.session_id.as_str()),
                    (first.user_id.as_str(), first.session_id.as_str())
                );
                assert_eq!(next.access_expires_at, at + LIFETIMES.access_s);
                let live = f.store.access_token(&sha256_hex(&next.access_token)).await.unwrap().expect("a live token");
                assert_eq!(live.last_seen_at, at, "rotating is seeing the session");
                assert!(!live.session_revoked);

                let replay =
                    f.store.rotate_refresh_token(&sha256_hex(&first.refresh_token), at, LIFETIMES).await.unwrap();
                assert_eq!(replay, Rotation::Reused { session_id: first.session_id.clone() });
                assert!(
                    f.store.access_token(&sha256_hex(&next.access_token)).await.unwrap().is_none(),
                    "the session's access tokens are gone"
                );
                let after =
                    f.store.rotate_refresh_token(&sha256_hex(&next.refresh_token), at, LIFETIMES).await.unwrap();
                assert_eq!(after, Rotation::Dead, "the session's unused refresh token died with it");
                assert_eq!(
                    f.store.rotate_refresh_token("no-such-hash", at, LIFETIMES).await.unwrap(),
                    Rotation::Unknown
                );
            }

            #[tokio::test]
            async fn an_expired_refresh_token_is_dead_and_touching_moves_last_seen() {
                let f = $get_store().await;
                f.send("ann@example.com", "123456", f.now).await.unwrap();
                let tokens =
                    f.store.sign_in(&attempt("ann@example.com", "123456"), f.now, LIMITS, LIFETIMES).await.unwrap();
                let late = f.now + LIFETIMES.refresh_s;
                let expired = f.store.rotate_refresh_token(&sha256_hex(&tokens.refresh_token), late, LIFETIMES).await;
                assert_eq!(expired.unwrap(), Rotation::Dead);
                let access = sha256_hex(&tokens.access_token);
                let record = f.store.access_token(&access).await.unwrap().expect("the access token");
                assert_eq!((record.user_id.as_str(), record.guest), (tokens.user_id.as_str(), false));
                assert_eq!((record.expires_at, record.last_seen_at), (f.now + LIFETIMES.access_s, f.now));
                f.store.touch_session(&tokens.session_id, f.now + 120).await.unwrap();
                assert_eq!(f.store.access_token(&access).await.unwrap().unwrap().last_seen_at, f.now + 120);
                assert!(f.store.access_token("no-such-hash").await.unwrap().is_none());
            }

            #[tokio::test]
            async fn a_guests_tokens_end_with_its_window_and_leaving_deletes_it() {
                let f = $get_store().await;
                let tokens = f.store.issue_tokens("guest-1", "guest-1-session", f.now, LIFETIMES).await.unwrap();
                assert_eq!(tokens.access_expires_at, f.now + 100, "capped by the guest's window");
                let access = sha256_hex(&tokens.access_token);
                let record = f.store.access_token(&access).await.unwrap().expect("the guest's token");
                assert_eq!((record.guest, record.guest_until), (true, Some(f.now + 100)));
                f.store.delete_guest("guest-1", f.now).await.unwrap();
                assert!(f.store.access_token(&access).await.unwrap().is_none());
                let refresh = f.store.rotate_refresh_token(&sha256_hex(&tokens.refresh_token), f.now, LIFETIMES).await;
                assert_eq!(refresh.unwrap(), Rotation::Unknown);
            }
        }
    };
}
