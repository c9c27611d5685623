//! The `porta-admin` binary against the real in-process server, with its own config
//! directory: what an admin types, what it prints, the session file and the exit codes.

use std::path::{Path, PathBuf};
use std::process::Command;

use porta_admin::AdminClient;
use porta_tests::{dev_code, TestServer};
use serde_json::Value;

const ADMIN: &str = porta_server::DEMO_ADMIN_EMAIL;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary with `config` as its XDG_CONFIG_HOME (and HOME), off the async runtime
/// so the in-process server keeps answering.
async fn porta_admin(config: &Path, args: &[&str]) -> Run {
    let config = config.to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let output = Command::new(env!("CARGO_BIN_EXE_porta-admin"))
            .args(&args)
            .env("XDG_CONFIG_HOME", &config)
            .env("HOME", &config)
            .env_remove("PORTA_SERVER")
            .env_remove("PORTA_SITE")
            .output()
            .expect("run porta-admin");
        Run {
            code: output.status.code().expect("exited"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

fn session_path(config: &Path) -> PathBuf {
    config.join("porta-admin").join("session.json")
}

fn assert_ok(run: &Run) {
    assert_eq!(run.code, 0, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
}

/// Signs the demo admin in through the binary with a code from the dev outbox.
async fn sign_in(server: &TestServer, config: &Path) -> Run {
    AdminClient::request_code(&server.url(), ADMIN).await.unwrap();
    let code = dev_code(&server.url(), ADMIN).await;
    porta_admin(config, &["--server", &server.url(), "sign-in", ADMIN, "--code", &code]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_list_sites_and_set_retention_without_showing_a_token() {
    let server = TestServer::start().await;
    let config = tempfile::tempdir().unwrap();
    let mut runs = vec![sign_in(&server, config.path()).await];
    assert_ok(&runs[0]);
    assert!(runs[0].stdout.contains("you administer 1 site"), "{}", runs[0].stdout);

    let path = session_path(config.path());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the session file is the owner's only");
    }
    let session: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(session["server"].as_str(), Some(server.url().trim_end_matches('/')));

    // The server is remembered: no --server from here on.
    let sites = porta_admin(config.path(), &["sites", "list", "--json"]).await;
    assert_ok(&sites);
    let list: Value = serde_json::from_str(&sites.stdout).expect("sites list --json is JSON");
    let site_id = list[0]["id"].as_str().expect("the demo site").to_owned();
    assert_eq!(list.as_array().unwrap().len(), 1);
    runs.push(sites);

    // One site: no --site needed.
    let retention = porta_admin(config.path(), &["doors", "retention", "1", "30"]).await;
    assert_ok(&retention);
    assert!(retention.stdout.contains("30 days"), "{}", retention.stdout);
    runs.push(retention);
    let doors = porta_admin(config.path(), &["--json", "doors", "list", "--site", &site_id]).await;
    assert_ok(&doors);
    let doors_json: Value = serde_json::from_str(&doors.stdout).unwrap();
    let door_1 = doors_json.as_array().unwrap().iter().find(|d| d["door_id"] == 1).expect("door 1");
    assert_eq!(door_1["log_retention_days"], 30);
    runs.push(doors);
    let log = porta_admin(config.path(), &["security-log", "--site", &site_id, "--kind", "retention_changed"]).await;
    assert_ok(&log);
    assert!(log.stdout.contains("retention_changed"), "{}", log.stdout);
    runs.push(log);

    // A refreshed session is saved, still 0600, and the tool keeps working.
    server.clock.advance(porta_server::Limits::default().access_ttl_s + 1);
    let tables = porta_admin(config.path(), &["doors", "list"]).await;
    assert_ok(&tables);
    assert!(tables.stdout.starts_with("DOOR"), "{}", tables.stdout);
    runs.push(tables);
    let refreshed: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_ne!(refreshed["refresh_token"], session["refresh_token"], "the rotated refresh token is kept");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    let tokens = [&session, &refreshed]
        .iter()
        .flat_map(|s| [s["access_token"].as_str().unwrap().to_owned(), s["refresh_token"].as_str().unwrap().to_owned()])
        .collect::<Vec<_>>();
    for run in &runs {
        for token in &tokens {
            assert!(
                !run.stdout.contains(token.as_str()) && !run.stderr.contains(token.as_str()),
                "a token was printed"
            );
        }
    }

    let out = porta_admin(config.path(), &["sign-out"]).await;
    assert_ok(&out);
    assert!(!path.exists(), "signing out removes the session");
    assert_eq!(porta_admin(config.path(), &["sites", "list"]).await.code, 3, "signed out means not signed in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_commands_exit_with_their_code() {
    let server = TestServer::start().await;
    let config = tempfile::tempdir().unwrap();

    let not_signed_in = porta_admin(config.path(), &["doors", "list"]).await;
    assert_eq!(not_signed_in.code, 3, "{}", not_signed_in.stderr);
    assert!(not_signed_in.stderr.contains("sign-in"));

    let wrong_code =
        porta_admin(config.path(), &["--server", &server.url(), "sign-in", ADMIN, "--code", "000000"]).await;
    assert_eq!(wrong_code.code, 5, "a wrong code is refused input: {}", wrong_code.stderr);
    assert!(!wrong_code.stderr.contains(ADMIN), "no identifier in errors");

    assert_ok(&sign_in(&server, config.path()).await);
    // A site admin may not create sites (operators only).
    let forbidden = porta_admin(config.path(), &["sites", "create", "Elm Court"]).await;
    assert_eq!(forbidden.code, 4, "{}", forbidden.stderr);
    assert!(forbidden.stderr.contains("forbidden"), "{}", forbidden.stderr);
    let elsewhere = porta_admin(config.path(), &["--json", "doors", "list", "--site", "not-my-site"]).await;
    assert_eq!(elsewhere.code, 4, "{}", elsewhere.stderr);
    let error: Value = serde_json::from_str(&elsewhere.stdout).expect("--json failures are JSON on stdout");
    assert_eq!((error["kind"].as_str(), error["exit_code"].as_u64()), (Some("forbidden_or_not_found"), Some(4)));
    let out_of_range = porta_admin(config.path(), &["doors", "retention", "1", "400"]).await;
    assert_eq!(out_of_range.code, 5, "{}", out_of_range.stderr);
    assert!(out_of_range.stderr.contains("log_retention_days"), "{}", out_of_range.stderr);
    let usage = porta_admin(config.path(), &["grant", "--door", "1"]).await;
    assert_eq!(usage.code, 2, "a grant needs --unit or --person: {}", usage.stderr);
    let other_server = porta_admin(config.path(), &["--server", "http://127.0.0.1:9", "sites", "list"]).await;
    assert_eq!(other_server.code, 3, "tokens never go to another server: {}", other_server.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_provision_answers_what_the_lock_installs() {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    let server = TestServer::start().await;
    let config = tempfile::tempdir().unwrap();
    assert_ok(&sign_in(&server, config.path()).await);

    let lock = porta_lock::NewLock::generate(&mut rand::rngs::OsRng);
    let request = lock.provisioning_request(&mut rand::rngs::OsRng);
    let request_file = config.path().join("lock.req");
    std::fs::write(&request_file, format!("{}\n", STANDARD.encode(request.to_bytes()))).unwrap();
    let answer_file = config.path().join("lock.answer");
    let provision = porta_admin(
        config.path(),
        &["lock", "provision", "--door", "2", request_file.to_str().unwrap(), "--out", answer_file.to_str().unwrap()],
    )
    .await;
    assert_ok(&provision);

    let answer: Value = serde_json::from_slice(&std::fs::read(&answer_file).unwrap()).expect("the answer is JSON");
    assert_eq!(answer["door_id"], 2);
    assert_eq!(answer["lock_public_key"].as_str().unwrap(), STANDARD.encode(lock.lock_public_key()));
    let certificate = STANDARD.decode(answer["certificate"].as_str().unwrap()).unwrap();
    let authority: [u8; 32] =
        STANDARD.decode(answer["authority_public_key"].as_str().unwrap()).unwrap().try_into().unwrap();
    lock.install(&certificate, authority).expect("the lock installs the answer");

    // The door shows its lock, and the same key is never certified twice.
    let show = porta_admin(config.path(), &["--json", "lock", "show", "--door", "2"]).await;
    assert_ok(&show);
    let shown: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(shown["lock_id"], answer["lock_id"]);
    let again = porta_admin(config.path(), &["lock", "provision", "--door", "2", request_file.to_str().unwrap()]).await;
    assert_eq!(again.code, 5, "lock_key_in_use: {}", again.stderr);

    // Decommissioned: the door has no lock.
    assert_ok(&porta_admin(config.path(), &["lock", "decommission", "--door", "2"]).await);
    assert_eq!(porta_admin(config.path(), &["lock", "show", "--door", "2"]).await.code, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_asks_for_the_code_on_stdin() {
    use std::io::Write;
    use std::process::Stdio;

    let server = TestServer::start().await;
    let config = tempfile::tempdir().unwrap();
    let outbox = format!("/v1/dev/outbox/{ADMIN}");
    let code_in_outbox = || async {
        let (status, body) = porta_tests::raw_http(&server.url(), "GET", &outbox, None).await;
        (status == 200).then(|| serde_json::from_str::<Value>(&body).unwrap()["code"].as_str().unwrap().to_owned())
    };
    // The harness signed the demo admin in already: that code is spent.
    let spent = code_in_outbox().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_porta-admin"))
        .args(["--server", &server.url(), "sign-in", ADMIN])
        .env("XDG_CONFIG_HOME", config.path())
        .env("HOME", config.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run porta-admin");
    // The binary asks the server for a code; it shows up in the dev outbox.
    let mut code = None;
    for _ in 0..400 {
        code = code_in_outbox().await.filter(|c| Some(c) != spent.as_ref());
        if code.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let code = code.expect("the binary requested a code");
    child.stdin.take().unwrap().write_all(format!("{code}\n").as_bytes()).unwrap();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("Code:"), "the prompt is on stderr: {stderr}");
    assert!(session_path(config.path()).exists());
}
