//! Finding, and on Debian as root installing, what the suites need: a JDK with Maven, and a
//! Swift toolchain (on Linux without one: a Debian 13 root with Debian's `swiftlang`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Result;

pub fn on_path(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool} >/dev/null 2>&1")]).status().is_ok_and(|s| s.success())
}

pub(crate) fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

pub(crate) fn is_debian() -> bool {
    Path::new("/etc/debian_version").exists()
}

pub(crate) fn apt_install(packages: &[&str]) -> Result {
    eprintln!("xtask: installing {} with apt-get", packages.join(" "));
    crate::run(Command::new("apt-get").arg("update").arg("-qq"))?;
    crate::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Java and Maven for the Kotlin suite.
pub fn ensure_jvm() -> Result {
    if on_path("java") && on_path("mvn") {
        return Ok(());
    }
    if is_root() && is_debian() {
        return apt_install(&["default-jdk-headless", "maven"]);
    }
    Err("the Kotlin tests need a JDK (17+) and Maven: install them (Debian: apt-get install default-jdk-headless maven; macOS: brew install openjdk maven)".into())
}

/// The Bluetooth tests' needs: `dbus-daemon` for the fake BlueZ's private bus, and libdbus with
/// pkg-config to build btleplug's BlueZ backend.
pub fn ensure_dbus() -> Result {
    let has_libdbus = || Command::new("pkg-config").args(["--exists", "dbus-1"]).status().is_ok_and(|s| s.success());
    if on_path("dbus-daemon") && on_path("pkg-config") && has_libdbus() {
        return Ok(());
    }
    if is_root() && is_debian() {
        return apt_install(&["dbus-daemon", "libdbus-1-dev", "pkg-config"]);
    }
    Err("the Bluetooth tests need dbus-daemon, libdbus-1 headers and pkg-config (Debian: apt-get install dbus-daemon libdbus-1-dev pkg-config)".into())
}

/// How to run `swift`: directly, or inside the provisioned Debian 13 root.
pub enum Swift {
    Native,
    Root(PathBuf),
}

/// Where the Debian 13 root with Swift is kept, outside any checkout so later runs reuse it.
/// The same default as the team's `linux-swift` tool, so either provisions it for both.
fn swift_root() -> PathBuf {
    std::env::var_os("PORTA_SWIFT_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/linux-swift/trixie"))
}

pub fn ensure_swift() -> Result<Swift> {
    if on_path("swift") {
        return Ok(Swift::Native);
    }
    let root = swift_root();
    if root.join("usr/libexec/swift/bin/swift").exists() && root.join("usr/include/stdio.h").exists() {
        ensure_dbus_in(&root)?;
        return Ok(Swift::Root(root));
    }
    if !(cfg!(target_os = "linux") && is_root() && is_debian()) {
        return Err("the Swift tests need a Swift 6 toolchain on PATH (https://www.swift.org/install), or root on Debian so xtask can provision one".into());
    }
    if !on_path("debootstrap") || !on_path("unshare") {
        apt_install(&["debootstrap", "util-linux"])?;
    }
    eprintln!("xtask: building a Debian 13 root with Swift at {} (a few minutes, about 3 GB, once)", root.display());
    let partial = root.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(root.parent().unwrap_or(Path::new("/"))).map_err(|e| e.to_string())?;
    let log = root.with_extension("log");
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let status = Command::new("debootstrap")
        .args(["--variant=minbase", "--include=swiftlang,libc6-dev,dbus-daemon", "trixie"])
        .arg(&partial)
        .arg(debian_mirror()?)
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("debootstrap failed; see {}", log.display()));
    }
    let _ = std::fs::remove_dir_all(&root);
    std::fs::rename(&partial, &root).map_err(|e| e.to_string())?;
    Ok(Swift::Root(root))
}

/// The Debian mirror apt already uses here (`PORTA_DEBIAN_MIRROR` overrides): the first
/// `URIs:` of the deb822 sources, else the first `deb` line.
fn debian_mirror() -> Result<String> {
    if let Ok(m) = std::env::var("PORTA_DEBIAN_MIRROR") {
        return Ok(m);
    }
    let mut texts = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<_> =
            dir.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "sources")).collect();
        paths.sort();
        texts.extend(paths.iter().filter_map(|p| std::fs::read_to_string(p).ok()));
    }
    let deb822 = texts
        .iter()
        .flat_map(|t| t.lines())
        .find_map(|l| l.strip_prefix("URIs:"))
        .and_then(|u| u.split_whitespace().next());
    let list = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    let classic = list.lines().filter(|l| l.split_whitespace().next() == Some("deb")).find_map(|l| {
        l.split_whitespace().find(|w| w.starts_with("http://") || w.starts_with("https://")).map(str::to_owned)
    });
    deb822
        .map(str::to_owned)
        .or(classic)
        .ok_or_else(|| "no Debian mirror in apt's sources: set PORTA_DEBIAN_MIRROR".to_string())
}

/// The Swift tests load libporta_ffi, which links libdbus (btleplug), and the Bluetooth tests
/// start a private dbus-daemon: a root built before either needs them added once.
fn ensure_dbus_in(root: &Path) -> Result {
    if root.join("usr/bin/dbus-daemon").exists() {
        return Ok(());
    }
    if !(is_root() && is_debian()) {
        return Err(format!(
            "the Swift root {} lacks dbus-daemon; as root: chroot it and apt-get install dbus-daemon",
            root.display()
        ));
    }
    eprintln!("xtask: adding dbus-daemon to the Swift root {}", root.display());
    let _ = std::fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf"));
    let apt = |args: &[&str]| {
        Command::new("chroot")
            .arg(root)
            .args(["/usr/bin/env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-qq"])
            .args(args)
            .status()
            .map_err(|e| e.to_string())
            .and_then(|s| if s.success() { Ok(()) } else { Err(format!("apt-get {args:?} in the Swift root failed")) })
    };
    apt(&["update"])?;
    apt(&["install", "-y", "--no-install-recommends", "dbus-daemon"])
}

impl Swift {
    /// A command running `swift ARGS` in `dir` with `env` set and `lib_dir` on the library
    /// path. In the root, `project` is bind-mounted at the same path so paths stay valid.
    pub fn command(
        &self,
        project: &Path,
        dir: &Path,
        args: &[&str],
        env: &[(&str, String)],
        lib_dir: &Path,
    ) -> Command {
        match self {
            Swift::Native => {
                let mut cmd = Command::new("swift");
                cmd.current_dir(dir).args(args);
                for (k, v) in env {
                    cmd.env(k, v);
                }
                let var = if cfg!(target_os = "macos") { "DYLD_LIBRARY_PATH" } else { "LD_LIBRARY_PATH" };
                let old = std::env::var(var).unwrap_or_default();
                cmd.env(var, format!("{}:{old}", lib_dir.display()));
                cmd
            }
            Swift::Root(root) => {
                // Private mount namespace: nothing stays mounted after the run.
                let script = r#"set -e; root=$1; project=$2; dir=$3; shift 3
mount -t proc proc "$root/proc"; mount --rbind /dev "$root/dev"
mkdir -p "$root$project"; mount --bind "$project" "$root$project"
# The library (and the server binary beside it) may live outside the project ($CARGO_TARGET_DIR).
case "$PORTA_LIB_DIR/" in "$project"/*) ;; *) mkdir -p "$root$PORTA_LIB_DIR"; mount --bind "$PORTA_LIB_DIR" "$root$PORTA_LIB_DIR";; esac
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
cd "$root$dir" >/dev/null
exec chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb PATH=/usr/libexec/swift/bin:/usr/local/bin:/usr/bin:/bin \
  LD_LIBRARY_PATH="/usr/libexec/swift/lib/swift/linux:$PORTA_LIB_DIR" $PORTA_SWIFT_ENV \
  /bin/bash -c 'cd "$0" && exec swift "$@"' "$dir" "$@""#;
                let mut cmd = Command::new("unshare");
                cmd.args(["-m", "--propagation", "private", "/bin/bash", "-c", script, "xtask-swift"])
                    .arg(root)
                    .arg(project)
                    .arg(dir)
                    .args(args)
                    .env("PORTA_LIB_DIR", lib_dir);
                let forwarded: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                cmd.env("PORTA_SWIFT_ENV", forwarded.join(" "));
                cmd
            }
        }
    }
}
