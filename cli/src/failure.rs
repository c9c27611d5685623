//! What went wrong, said so the person knows what to do, and the exit code a script can act on
//! (the table is in cli/README.md).

use porta_core::{DenialReason, Door, Error, InvitationError};

use crate::show::Clock;

/// Exit codes: stable, documented in cli/README.md.
pub mod code {
    /// Anything not listed below (server error, local storage, a bug).
    pub const FAILED: u8 = 1;
    /// A bad command line or input, refused before any request.
    pub const USAGE: u8 = 2;
    /// Not signed in, or the session ended.
    pub const NOT_SIGNED_IN: u8 = 3;
    /// A one-time code was wrong, expired, or tried too often.
    pub const BAD_CODE: u8 = 4;
    /// The server could not be reached.
    pub const NETWORK: u8 = 5;
    /// The server asked to slow down.
    pub const RATE_LIMITED: u8 = 6;
    /// The lock (or the phone, for it) refused, or no access to that door.
    pub const DENIED: u8 = 7;
    /// Bluetooth is off, not permitted, or missing.
    pub const BLUETOOTH: u8 = 8;
    /// The lock was not reached: out of range, busy, silent, or the link dropped.
    pub const LOCK_UNREACHABLE: u8 = 9;
}

#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into() }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(code::USAGE, message)
    }
}

/// What the failing command was about, to name it in the message.
#[derive(Default)]
pub struct Context<'a> {
    pub server: Option<&'a str>,
    /// The door being opened.
    pub door: Option<&'a Door>,
    /// The command to run again for a fresh code (`porta sign-in`, `porta delete-account`).
    pub retry: Option<&'a str>,
}

impl Context<'_> {
    fn lock(&self) -> String {
        self.door.map_or("the lock".into(), |d| format!("the {} lock", d.name))
    }

    fn door_name(&self) -> String {
        self.door.map_or("this door".into(), |d| d.name.clone())
    }

    fn again(&self) -> String {
        self.retry.map_or("ask for a new one".into(), |c| format!("run `{c}` again for a new code"))
    }
}

/// The core's error as a sentence that says what to do.
pub fn explain(e: Error, cx: &Context, clock: &Clock) -> Failure {
    use code::*;
    let at = |c, m: String| Failure::new(c, m);
    match e {
        Error::Network(why) => at(
            NETWORK,
            format!(
                "cannot reach the Porta server{} ({why}): check the network and try again",
                cx.server.map(|s| format!(" at {s}")).unwrap_or_default()
            ),
        ),
        Error::NotSignedIn => at(NOT_SIGNED_IN, "not signed in: run `porta sign-in`".into()),
        Error::InvalidCode => at(
            BAD_CODE,
            match cx.retry {
                Some(c) => format!("that code is not correct: run `{c}` again and type the code you received"),
                None => "that code is not correct: check it and try again".into(),
            },
        ),
        Error::CodeExpired => at(BAD_CODE, format!("that code has expired: {}", cx.again())),
        Error::TooManyAttempts => at(BAD_CODE, format!("too many wrong codes: {}", cx.again())),
        Error::RateLimited { retry_after_s } => at(
            RATE_LIMITED,
            format!("too many requests: wait {} and try again", crate::show::wait(retry_after_s.max(1))),
        ),
        Error::CodeNotDelivered { retry_after_s } => at(
            NETWORK,
            format!(
                "the server could not send your code just now: wait {} and {}",
                crate::show::wait(retry_after_s.max(1)),
                cx.retry.map_or("ask again".into(), |c| format!("run `{c}` again"))
            ),
        ),
        Error::InvalidInput { field, reason } => at(USAGE, format!("invalid {field}: {reason}")),
        Error::AlreadyInUse => at(FAILED, "that address already belongs to another account".into()),
        Error::NotFound => at(FAILED, "not found: check the id (`porta devices`, `porta invite list`)".into()),
        Error::NoAccess => {
            at(DENIED, format!("you have no access to {}: run `porta doors`, or ask your building", cx.door_name()))
        }
        Error::Invitation(why) => {
            let what = match why {
                InvitationError::Unknown => "check the link or code you were given",
                _ => "ask the resident for a new invitation",
            };
            at(FAILED, format!("{why}: {what}"))
        }
        Error::GuestAccount => {
            at(FAILED, "not available to a guest (you accepted an invitation without an account)".into())
        }
        Error::Denied(reason) => at(DENIED, denied(reason, cx, clock)),
        Error::NotInRange => at(LOCK_UNREACHABLE, format!("{} is not in range: move closer and try again", cx.lock())),
        Error::LockBusy => {
            at(LOCK_UNREACHABLE, format!("{} is busy with another phone: try again in a moment", cx.lock()))
        }
        Error::Timeout => {
            at(LOCK_UNREACHABLE, format!("{} did not answer in time: move closer and try again", cx.lock()))
        }
        Error::BluetoothOff => at(BLUETOOTH, "Bluetooth is off: turn it on and try again".into()),
        Error::BluetoothNotPermitted => {
            at(BLUETOOTH, "Bluetooth is not permitted: allow `porta` to use Bluetooth and try again".into())
        }
        Error::NoRadio => at(BLUETOOTH, "this build of porta has no Bluetooth: use --lock-dir DIR for a lock simulated here".into()),
        Error::ConnectionLost => at(
            LOCK_UNREACHABLE,
            format!("the connection to {} was lost: check whether the door opened, then try again closer", cx.lock()),
        ),
        // No adapter, no bluetoothd, no system bus, not a Porta lock: the core's words, then what to try.
        Error::Transport(why) => at(
            BLUETOOTH,
            format!("{why}: check that this computer has Bluetooth and its service runs, or use --lock-dir DIR for a lock simulated here"),
        ),
        Error::UntrustedLock => at(
            FAILED,
            format!(
                "what answered for {} is not the building's lock for this door (replaced, removed or another door's); nothing about you was sent: tell your building",
                cx.lock()
            ),
        ),
        Error::Protocol(why) => {
            at(FAILED, format!("{} answered outside the door protocol ({why}): tell your building", cx.lock()))
        }
        Error::Server { status, code } => at(FAILED, format!("the server failed ({status} {code}): try again later")),
        Error::InvalidResponse(_) => at(
            FAILED,
            format!(
                "the server{} does not answer as a Porta server: check --server",
                cx.server.map(|s| format!(" at {s}")).unwrap_or_default()
            ),
        ),
        other => at(FAILED, other.to_string()),
    }
}

fn denied(reason: DenialReason, cx: &Context, clock: &Clock) -> String {
    let windows = cx.door.map(|d| d.access.as_slice()).unwrap_or_default();
    let door = cx.door_name();
    match reason {
        DenialReason::Expired => match windows.iter().map(|w| w.not_after).max() {
            Some(end) => format!("access expired on {} — ask your building", clock.day(end)),
            None => "your access has expired — ask your building".into(),
        },
        DenialReason::NotYetValid => match windows.iter().map(|w| w.not_before).filter(|&t| t > clock.now).min() {
            Some(start) => format!("your access to {door} starts {}", clock.when(start)),
            None => format!("your access to {door} has not started yet"),
        },
        DenialReason::OutsideSchedule => match windows.iter().find_map(|w| w.schedule.as_ref()) {
            Some(s) => format!("not now: you may open {door} {s} (the building's time)"),
            None => format!("not now: you may not open {door} at this time"),
        },
        DenialReason::Revoked => format!("your access to {door} was withdrawn — ask your building"),
        DenialReason::UnknownDoor => {
            format!("your credential does not open {door}: run `porta doors` to refresh, or ask your building")
        }
        DenialReason::Rejected => {
            format!("{} refused the exchange: try again; if it keeps refusing, tell your building", cx.lock())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn door(not_after: i64) -> Door {
        Door {
            door_id: 1,
            name: "Main entrance".into(),
            lock_id: Some(7),
            lock_public_key: None,
            log_retention_days: 90,
            access: vec![porta_core::AccessWindow { not_before: 0, not_after, schedule: None }],
        }
    }

    #[test]
    fn failures_say_what_to_do() {
        let clock = Clock { now: 1_772_629_380, tz: jiff::tz::TimeZone::UTC };
        let main = door(1_772_500_000);
        let cx = Context { door: Some(&main), ..Default::default() };
        let f = explain(Error::Denied(DenialReason::Expired), &cx, &clock);
        assert_eq!((f.code, f.message.as_str()), (code::DENIED, "access expired on 3 March — ask your building"));
        let f = explain(Error::NotInRange, &cx, &clock);
        assert_eq!(f.message, "the Main entrance lock is not in range: move closer and try again");
        assert_eq!(f.code, code::LOCK_UNREACHABLE);
        let f = explain(Error::BluetoothOff, &cx, &clock);
        assert_eq!((f.code, f.message.as_str()), (code::BLUETOOTH, "Bluetooth is off: turn it on and try again"));
        let f = explain(Error::NotSignedIn, &Context::default(), &clock);
        assert_eq!((f.code, f.message.as_str()), (code::NOT_SIGNED_IN, "not signed in: run `porta sign-in`"));
        let f = explain(Error::RateLimited { retry_after_s: 90 }, &Context::default(), &clock);
        assert_eq!((f.code, f.message.as_str()), (code::RATE_LIMITED, "too many requests: wait 2 min and try again"));
        let cx = Context { server: Some("http://127.0.0.1:9"), ..Default::default() };
        let f = explain(Error::Network("could not connect".into()), &cx, &clock);
        assert_eq!(f.code, code::NETWORK);
        assert!(f.message.starts_with("cannot reach the Porta server at http://127.0.0.1:9"), "{}", f.message);
    }
}
