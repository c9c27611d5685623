//! `porta invite create|list|revoke|revoke-guest` and `porta accept`: the real binary against
//! the real server, the resident and the guest each with their own `$PORTA_HOME`.

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use porta_core::FileSecureStore;
use porta_tests::{client, sign_in, TestServer};

fn porta(home: &std::path::Path, server: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_porta"))
        .env("PORTA_HOME", home)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("XDG_RUNTIME_DIR", home)
        .args(["--server", server])
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "porta failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The value after `label` on the line that starts with it (after spaces).
fn field<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines().find_map(|l| l.trim_start().strip_prefix(label)).unwrap_or_else(|| panic!("{label} in {text}")).trim()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_invites_from_the_terminal_and_a_guest_accepts_there() {
    let server = TestServer::start().await;
    let url = server.url();
    let (ada, guest) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    {
        let store = Arc::new(FileSecureStore::new(ada.path().join("secrets")).unwrap());
        let phone = client(&url, store, &ada.path().join("data"), Duration::from_secs(5));
        sign_in(&phone, &url, porta_server::DEMO_RESIDENT_EMAIL).await;
    }

    let create = ["invite", "create", "--door", "1", "--from", "now", "--until", "+2d"];
    let schedule = ["--days", "Mo-Fr", "--hours", "09-12", "--uses", "2", "--label", "cleaner"];
    let created = stdout(&porta(ada.path(), &url, &[&create[..], &schedule[..]].concat()));
    assert!(created.contains("Main entrance (1)"), "{created}");
    assert!(created.contains("Mo,Tu,We,Th,Fr 09:00-12:00 (site time UTC+"), "{created}");
    let code = field(&created, "code:").to_owned();
    let invitation_id = field(&created, "invitation").split(' ').next().unwrap().to_owned();

    let accepted = stdout(&porta(guest.path(), &url, &["accept", &code.to_lowercase()]));
    assert!(accepted.contains("as a guest (no account): Main entrance (1)"), "{accepted}");

    let list = stdout(&porta(ada.path(), &url, &["invite", "list"]));
    assert!(list.contains("1 of 2 uses left"), "{list}");
    let guests = list.split("guests (1):").nth(1).unwrap_or_else(|| panic!("one guest in {list}"));
    assert!(guests.contains("cleaner (no account)"), "{list}");
    let guest_id = guests.split_whitespace().next().unwrap();

    stdout(&porta(ada.path(), &url, &["invite", "revoke-guest", guest_id]));
    stdout(&porta(ada.path(), &url, &["invite", "revoke", &invitation_id]));
    let again = porta(tempfile::tempdir().unwrap().path(), &url, &["accept", &code]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("the invitation was revoked"));
    let list = stdout(&porta(ada.path(), &url, &["invite", "list"]));
    assert!(list.contains("1 of 2 uses left, revoked") && list.contains("guests (0):"), "{list}");

    // Bad input is refused before any request, with the usage; a door must be one of hers.
    let bad = porta(ada.path(), &url, &["invite", "create", "--door", "1", "--from", "soon", "--until", "+1d"]);
    assert_eq!(bad.status.code(), Some(2));
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(
        said.contains("invalid value 'soon' for '--from <TIME>': not a time") && said.contains("try '--help'"),
        "{said}"
    );
    let bad = porta(ada.path(), &url, &["invite", "create", "--door", "garage", "--from", "now", "--until", "+1d"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no door called \"garage\"; yours are: Main entrance"));
    let typo = porta(guest.path(), &url, &["accept", "not-a-code"]);
    assert!(String::from_utf8_lossy(&typo.stderr).contains("unknown invitation"));
}
