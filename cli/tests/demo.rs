//! `porta demo` is the README's first command: it must walk the journey and exit 0.

#[test]
fn demo_walks_the_journey_and_exits_zero() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_porta")).arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for step in [
        // The building comes from the admin API, not from seed data.
        "one operator and no building",
        "the operator created the site Demo Building",
        "and made admin@demo.porta.app its site admin",
        "door 3: Roof terrace, its access log kept 7 days",
        "added ada@demo.porta.app to Apartment 4B",
        "granted Apartment 4B its three doors",
        "from its own request (its key made in the lock)",
        "Sign in with the right code",
        "Apartment 4B",
        "identical: true",
        "signed in after restart: true",
        "Main entrance opened: 2 round trips",
        "refused: lock not in range",
        "the old lock: refused (this is not the building's lock for the door)",
        "the new lock: Bike room opened",
        "opened Main entrance",
        "my-porta-data.json",
        "after giving it: given",
        "(90 days later)",
        "Demo complete.",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
    // Human output: no Debug text, no raw Unix times.
    for raw in ["Some(", "None", "unix", "Searching"] {
        assert!(!stdout.contains(raw), "{raw:?} in:\n{stdout}");
    }
    // Unix seconds of these years are ten digits starting 17 or 18 (phone numbers here start 47).
    let raw_time = |n: &str| n.len() == 10 && (n.starts_with("17") || n.starts_with("18"));
    assert!(!stdout.split(|c: char| !c.is_ascii_digit()).any(raw_time), "a raw timestamp in:\n{stdout}");
}
