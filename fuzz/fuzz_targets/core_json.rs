//! The core's parsing of server JSON: arbitrary bytes as each answer the client reads, through
//! serde into the DTOs and on into domain types (doors validated and looked up, errors mapped,
//! tokens turned into a session, revocation deltas verified against the fixture's site key).
//! The first input byte picks the answer (for revocations the next byte is the version the
//! phone has, for an error body the next two its HTTP status); 15 is not an answer but what a
//! person pastes or types as an invitation link or code.
//!
//! Asserts: no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porta_core::fuzzing::{parse, Answer};

#[path = "common/mod.rs"]
mod common;

/// The fixed "now" of the lookups, inside the vector credential's validity.
const NOW: i64 = 1_750_000_000;

fuzz_target!(|data: &[u8]| {
    common::write_seeds(seeds);
    let Some((&selector, body)) = data.split_first() else { return };
    let answer = match selector % 16 {
        0 => Answer::Doors,
        1 => Answer::Profile,
        2 => Answer::AccessLog,
        3 => Answer::Devices,
        4 => Answer::MyData,
        5 => Answer::Consents,
        6 => Answer::Consent,
        7 => Answer::DeletionReceipt,
        8 => Answer::Tokens,
        9 => Answer::Stored,
        12 => Answer::Invitations,
        13 => Answer::CreatedInvitation,
        14 => Answer::GuestSession,
        15 => Answer::InvitationInput,
        10 => {
            let [since, rest @ ..] = body else { return };
            let authority = common::site().authority.verifying_key().to_bytes();
            let _ = parse(Answer::Revocations { authority, since: u64::from(*since) }, rest, NOW);
            return;
        }
        _ => {
            // 11
            let [a, b, rest @ ..] = body else { return };
            let status = 400 + u16::from_be_bytes([*a, *b]) % 200;
            let _ = parse(Answer::ErrorBody(status), rest, NOW);
            return;
        }
    };
    if let Err(e) = parse(answer, body, NOW) {
        // Errors render without panicking too (they end up in logs and in the app).
        let _ = e.to_string();
    }
});

/// Answers as the reference server sends them; the doors carry the fixture's real, signed
/// credential and updates so that validation gets past the signatures.
fn seeds() -> Vec<Vec<u8>> {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;
    let site = common::site();
    let doors = format!(
        r#"{{"authority_public_key":"{}","site_name":"Demo Building","doors":[{{"door_id":100,"name":"Main entrance","lock_id":7,"log_retention_days":30}},{{"door_id":4,"name":"New gate","lock_id":null,"log_retention_days":90}}],"credentials":[{{"credential":"{}","doors":[100,102],"not_before":1749000000,"not_after":1752000000}}],"time_update":"{}","revocation_version":5,"server_time":1750000000}}"#,
        B64.encode(site.authority.verifying_key().to_bytes()),
        B64.encode(site.params.credential.to_bytes()),
        B64.encode(site.params.updates.time.as_ref().unwrap().to_bytes()),
    );
    let revocations = format!(r#"{{"version":5,"deltas":["{}"]}}"#, B64.encode(site.delta.to_bytes()));
    let answers: [(u8, &str); 18] = [
        (
            1,
            r#"{"user_id":"5f0c2d1e-8a7b-4c3d-9e2f-1a2b3c4d5e6f","name":"Ada Lovelace","email":"ada@example.com","phone":"+4790000001","unit":{"id":"u-4b","name":"Flat 4B","kind":"apartment"},"has_picture":false,"updated_at":1750000000}"#,
        ),
        (1, r#"{"user_id":"u","name":"A","email":null,"phone":null,"unit":null,"has_picture":true,"updated_at":0}"#),
        (
            2,
            r#"{"events":[{"door_id":100,"door_name":"Main entrance","at":1750000000,"decision":"opened"},{"door_id":null,"door_name":null,"at":5,"decision":"denied","reason":"expired"}],"retention":[{"door_id":100,"door_name":"Main entrance","retention_days":30}]}"#,
        ),
        (
            3,
            r#"[{"device_id":"0b6f","device_name":"Pixel 9","created_at":1749000000,"last_seen_at":1750000000,"ip":"127.0.0.1","current":true},{"device_id":"77aa","device_name":"iPad","created_at":1,"last_seen_at":2,"current":false}]"#,
        ),
        (
            4,
            r#"{"user_id":"u","categories":[{"category":"profile","description":"Name and contact","purpose":"Sign-in","legal_basis":"contract","retention":"until deletion","visible_to":["you","building administrators"],"items":{"name":"Ada","email":null}}]}"#,
        ),
        (5, r#"[{"purpose":"marketing","granted":false,"updated_at":null}]"#),
        (6, r#"{"purpose":"marketing","granted":true,"updated_at":1750000000}"#),
        (7, r#"{"deleted_at":1750000000,"backups_purged_by":1757776000}"#),
        (8, r#"{"access_token":"at","refresh_token":"rt","access_expires_in_s":900,"user_id":"u","session_id":"s"}"#),
        (
            9,
            r#"{"user_id":"u","session_id":"s","access_token":"at","refresh_token":"rt","access_expires_at":1750000900}"#,
        ),
        (9, r#"{"request_id":"4a1e","receipt":{"deleted_at":1,"backups_purged_by":2}}"#),
        (11, "\x00\x01{\"code\":\"unauthorized\",\"message\":\"sign in again\"}"),
        (11, "\x00\x1d{\"code\":\"rate_limited\",\"retry_after_s\":30}"),
        (
            12,
            r#"{"invitations":[{"id":"i1","label":"cleaner","site_name":"Demo Building","doors":[{"door_id":1,"name":"Main entrance"}],"not_before":1750000000,"not_after":1750600000,"schedule":{"utc_offset_minutes":60,"windows":[{"days":2,"start_minute":540,"end_minute":720}]},"uses":2,"uses_left":1,"created_at":1750000000,"revoked":false}],"guests":[{"id":"g1","invitation_id":null,"label":"cleaner","doors":[{"door_id":1,"name":"Main entrance"}],"not_before":1750000000,"not_after":1750600000,"schedule":null,"accepted_at":1750000100,"has_account":false}]}"#,
        ),
        (
            13,
            r#"{"invitation":{"id":"i1","label":null,"site_name":"Demo Building","doors":[],"not_before":1,"not_after":2,"schedule":null,"uses":1,"uses_left":1,"created_at":1,"revoked":false},"link":"http://127.0.0.1/i/7K2MQ9XR7K2MQ9XR7K2MQ9XR7K2MQ9XR7K2MQ9XR","code":"7K2M-Q9XR-7K2M-Q9XR-7K2M-Q9XR-7K2M-Q9XR-7K2M-Q9XR"}"#,
        ),
        (
            14,
            r#"{"access_token":"at","refresh_token":"rt","access_expires_in_s":900,"user_id":"u","session_id":"s","guest_id":"g","expires_at":1750600000,"invitation":{"guest_id":"g","site_name":"Demo Building","doors":[{"door_id":1,"name":"Main entrance"}],"not_before":1750000000,"not_after":1750600000,"schedule":{"utc_offset_minutes":60,"windows":[{"days":2,"start_minute":540,"end_minute":720}]}}}"#,
        ),
        (15, "https://porta.example/i/7K2M-Q9XR-7K2M-Q9XR-7K2M-Q9XR-7K2M-Q9XR-7K2M-Q9XR?x=1"),
        (15, "porta://invite/7k2mq9xr7k2mq9xr7k2mq9xr7k2mq9xr7k2mq9xr"),
    ];
    let mut seeds = vec![common::with_selector(0, doors.as_bytes())];
    for since in [3u8, 0, 5] {
        seeds.push([&[10, since][..], revocations.as_bytes()].concat());
    }
    seeds.extend(answers.iter().map(|(selector, body)| common::with_selector(*selector, body.as_bytes())));
    seeds
}
