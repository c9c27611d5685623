//! `porta`: the Porta core from a terminal.
//!
//! - `porta demo` walks the resident journey on an embedded server in a temporary directory.
//! - `porta --server URL sign-in EMAIL|PHONE`, `porta profile`, `porta sign-out`: a real client;
//!   the session is kept in `$PORTA_HOME` (default `~/.local/share/porta`) in 0600 files.

mod demo;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use porta_core::{Client, ClientConfig, FileSecureStore};

const USAGE: &str = "usage:
  porta demo
  porta [--server URL] sign-in <email|phone>
  porta [--server URL] profile
  porta [--server URL] set-name <name>
  porta [--server URL] upload-events
  porta [--server URL] sign-out";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut server = std::env::var("PORTA_SERVER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    if args.first().map(String::as_str) == Some("--server") && args.len() >= 2 {
        server = args.remove(1);
        args.remove(0);
    }
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["demo"] => demo::run().await,
        ["sign-in", identifier] => sign_in(&server, identifier).await,
        ["profile"] => profile(&server).await,
        ["set-name", name] => set_name(&server, name).await,
        ["upload-events"] => upload_events(&server).await,
        ["sign-out"] => match client(&server) {
            Ok(c) => c.sign_out().await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("porta: {e}");
            ExitCode::FAILURE
        }
    }
}

fn home() -> PathBuf {
    std::env::var_os("PORTA_HOME").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into())).join(".local/share/porta")
    })
}

fn client(server: &str) -> Result<Client, String> {
    let store = FileSecureStore::new(home().join("secrets")).map_err(|e| e.to_string())?;
    let mut config = ClientConfig::new(server, home().join("data"));
    config.device_name = "porta terminal".into();
    Client::new(config, Arc::new(store)).map_err(|e| e.to_string())
}

async fn sign_in(server: &str, identifier: &str) -> Result<(), String> {
    let client = client(server)?;
    client.request_code(identifier).await.map_err(|e| e.to_string())?;
    eprint!("code sent; enter it: ");
    let mut code = String::new();
    std::io::stdin().read_line(&mut code).map_err(|e| e.to_string())?;
    client.sign_in(identifier, code.trim()).await.map_err(|e| e.to_string())?;
    println!("signed in");
    Ok(())
}

async fn profile(server: &str) -> Result<(), String> {
    let p = client(server)?.profile().await.map_err(|e| e.to_string())?;
    demo::print_profile(&p);
    Ok(())
}

async fn set_name(server: &str, name: &str) -> Result<(), String> {
    let update = porta_core::ProfileUpdate { name: Some(name.to_owned()), ..Default::default() };
    let p = client(server)?.update_profile(update).await.map_err(|e| e.to_string())?;
    demo::print_profile(&p);
    Ok(())
}

/// Hands the building the doors' signed audit records queued on this computer.
async fn upload_events(server: &str) -> Result<(), String> {
    let client = client(server)?;
    let uploaded = client.upload_access_events().await.map_err(|e| e.to_string())?;
    let waiting = client.pending_access_events().map_err(|e| e.to_string())?;
    println!("uploaded {uploaded} access events; {waiting} waiting");
    Ok(())
}
