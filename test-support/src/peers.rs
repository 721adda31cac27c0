//! Where the real third-party peers live, as installed by `scripts/install-peers.sh`.
//!
//! Tests that need a peer call [`require`]. When the peer is missing, the test says so on
//! stderr and is skipped, unless `SWITCHBOARD_REQUIRE_PEERS=1` (which `.ci/run` sets), in which
//! case a missing peer fails the test: CI must never skip interop silently.

use std::path::{Path, PathBuf};

/// The peers directory: `$SWITCHBOARD_PEERS_DIR`, else `<workspace>/.peers`.
pub fn dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SWITCHBOARD_PEERS_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.peers")
}

/// Returns the path of a peer file relative to the peers dir, or `None` (test should return)
/// after printing why it is skipped.
#[allow(clippy::print_stderr)]
pub fn require(relative: &str, what: &str) -> Option<PathBuf> {
    let path = dir().join(relative);
    if path.exists() {
        return Some(path);
    }
    let message = format!(
        "{what} is not installed at {} (run scripts/install-peers.sh)",
        path.display()
    );
    if std::env::var("SWITCHBOARD_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("{message}; SWITCHBOARD_REQUIRE_PEERS=1 forbids skipping");
    }
    eprintln!("SKIPPED: {message}");
    None
}
