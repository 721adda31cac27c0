//! The machine and the versions a run was made with, printed above the table.

use std::{fs, path::Path, time::Duration};

use tokio::process::Command;

use crate::peers::Locations;

/// How long a `--version` style command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// The first line of a command's stdout (or stderr, where old tools print versions).
pub async fn command_line(program: &Path, args: &[&str]) -> Option<String> {
    let run = Command::new(program).args(args).kill_on_drop(true).output();
    let output = tokio::time::timeout(COMMAND_TIMEOUT, run)
        .await
        .ok()?
        .ok()?;
    let text = if output.stdout.is_empty() {
        output.stderr
    } else {
        output.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|line| line.trim().to_owned())
}

/// All of a command's stdout, if it succeeds within the timeout.
pub async fn command_stdout(program: &Path, args: &[&str]) -> Option<String> {
    let run = Command::new(program).args(args).kill_on_drop(true).output();
    let output = tokio::time::timeout(COMMAND_TIMEOUT, run)
        .await
        .ok()?
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn memory() -> String {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|line| line.starts_with("MemTotal:"))?;
            let kib: f64 = line.split_ascii_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The version of `name` in the workspace's Cargo.lock.
fn locked_version(repo_root: &Path, name: &str) -> Option<String> {
    let lock = fs::read_to_string(repo_root.join("Cargo.lock")).ok()?;
    let marker = format!("name = \"{name}\"\nversion = \"");
    let start = lock.find(&marker)? + marker.len();
    let end = start + lock[start..].find('"')?;
    Some(lock[start..end].to_owned())
}

fn ts_sdk_version(places: &Locations) -> Option<String> {
    package_version(&places.ts_sdk_package())
}

/// The `version` of an npm package.json.
fn package_version(package: &Path) -> Option<String> {
    let text = fs::read_to_string(package).ok()?;
    let package: serde_json::Value = serde_json::from_str(&text).ok()?;
    package["version"].as_str().map(str::to_owned)
}

/// `mcp-X.Y.Z.dist-info` in the venv's site-packages.
fn python_sdk_version(places: &Locations) -> Option<String> {
    let versions = fs::read_dir(places.peers_dir.join("venv/lib")).ok()?;
    for version in versions.flatten() {
        let Ok(packages) = fs::read_dir(version.path().join("site-packages")) else {
            continue;
        };
        for package in packages.flatten() {
            let name = package.file_name().to_string_lossy().into_owned();
            if let Some(found) = name
                .strip_prefix("mcp-")
                .and_then(|rest| rest.strip_suffix(".dist-info"))
            {
                return Some(found.to_owned());
            }
        }
    }
    None
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews every number.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".into(),
        |text| {
            text.split_ascii_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

/// `(what, description)` pairs for the header of a run.
pub async fn describe(places: &Locations) -> Vec<(&'static str, String)> {
    let unknown = || "not found".to_owned();
    let nproc = std::thread::available_parallelism().map_or(0, usize::from);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| unknown(), |k| k.trim().to_owned());
    vec![
        (
            "machine",
            format!(
                "{nproc} CPUs ({}), {} RAM, Linux {kernel}",
                cpu_model(),
                memory()
            ),
        ),
        (
            "rustc",
            command_line(Path::new("rustc"), &["--version"])
                .await
                .unwrap_or_else(unknown),
        ),
        (
            "switchboard",
            command_line(&places.switchboard(), &["--version"])
                .await
                .unwrap_or_else(unknown),
        ),
        (
            "rmcp",
            locked_version(&places.repo_root, "rmcp").unwrap_or_else(unknown),
        ),
        (
            "node",
            command_line(&places.node(), &["--version"])
                .await
                .unwrap_or_else(unknown),
        ),
        (
            "@modelcontextprotocol/sdk",
            ts_sdk_version(places).unwrap_or_else(unknown),
        ),
        (
            "@modelcontextprotocol/inspector",
            package_version(&places.peers_dir.join(crate::host_side::INSPECTOR_PACKAGE))
                .unwrap_or_else(unknown),
        ),
        (
            "python",
            command_line(&places.python(), &["--version"])
                .await
                .unwrap_or_else(unknown),
        ),
        (
            "mcp (PyPI)",
            python_sdk_version(places).unwrap_or_else(unknown),
        ),
    ]
}
