//! Remembering which protocol era each server spoke, between runs.
//!
//! A legacy server costs a `server/discover` round trip on every connect, and one that never
//! answers unknown methods costs rmcp's 10-second discover timeout. So after each run the era
//! of every connected server is saved in `<data dir>/eras.json`, keyed by server name and a
//! fingerprint of its command or URL (a changed entry forgets its era). The next run connects
//! in the remembered era first; a wrong memory falls back to probing both eras.

use std::{collections::HashMap, path::PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_client::{EraPreference, model::Era};
use switchboard_config::{Config, ServerEntry, ServerName, Transport};
use switchboard_host::{Host, ServerState};

#[derive(Debug, Default, Serialize, Deserialize)]
struct Memory {
    servers: HashMap<String, Remembered>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Remembered {
    fingerprint: String,
    era: Era,
    /// When it was learned (seconds since the Unix epoch).
    learned_at: u64,
}

/// How long a remembered era is trusted before both eras are probed again (a server may have
/// been upgraded).
pub const ERA_MEMORY_TTL_SECS: u64 = 7 * 24 * 3600;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A hash of what identifies a server's endpoint. It is hashed because commands and URLs may
/// carry tokens, and the state file should not.
fn fingerprint(entry: &ServerEntry) -> String {
    let mut hasher = Sha256::new();
    match &entry.transport {
        Transport::Stdio {
            command, args, cwd, ..
        } => {
            hasher.update(b"stdio\0");
            hasher.update(command.as_bytes());
            for arg in args {
                hasher.update(b"\0");
                hasher.update(arg.as_bytes());
            }
            if let Some(cwd) = cwd {
                hasher.update(b"\0cwd\0");
                hasher.update(cwd.as_os_str().as_encoded_bytes());
            }
        }
        other => {
            hasher.update(other.kind().as_bytes());
            hasher.update(b"\0");
            if let Some(url) = other.url() {
                hasher.update(url.as_str().as_bytes());
            }
        }
    }
    hasher
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The era memory file, if the platform has a data directory (`None` disables memory).
#[derive(Debug)]
pub struct EraMemory {
    path: Option<PathBuf>,
}

impl EraMemory {
    pub fn new(path: Option<PathBuf>) -> Self {
        EraMemory { path }
    }

    fn load(&self) -> Memory {
        let Some(path) = &self.path else {
            return Memory::default();
        };
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Era hints for the servers of `config` whose entry has not changed.
    pub fn hints(&self, config: &Config) -> HashMap<ServerName, EraPreference> {
        let memory = self.load();
        config
            .enabled()
            .filter_map(|entry| {
                let remembered = memory.servers.get(entry.name.as_str())?;
                let fresh = now().saturating_sub(remembered.learned_at) < ERA_MEMORY_TTL_SECS;
                (fresh && remembered.fingerprint == fingerprint(entry)).then(|| {
                    let era = match remembered.era {
                        Era::Modern => EraPreference::Modern,
                        Era::Legacy => EraPreference::Legacy,
                    };
                    (entry.name.clone(), era)
                })
            })
            .collect()
    }

    /// Save the era of every connected server. Failing to save only costs speed next time.
    /// Call it only after an `--era auto` run: a forced era says nothing about the server.
    pub fn remember(&self, config: &Config, host: &Host) {
        let Some(path) = &self.path else { return };
        let mut memory = self.load();
        for (name, state) in host.servers() {
            let (ServerState::Connected(connection), Some(entry)) =
                (state, config.servers.get(name))
            else {
                continue;
            };
            memory.servers.insert(
                name.to_string(),
                Remembered {
                    fingerprint: fingerprint(entry),
                    era: connection.description().era,
                    learned_at: now(),
                },
            );
        }
        if let Err(error) = write_atomically(path, &memory) {
            tracing::debug!(path = %path.display(), %error, "could not save the era memory");
        }
    }
}

fn write_atomically(path: &std::path::Path, memory: &Memory) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(
        &temporary,
        serde_json::to_vec_pretty(memory).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&temporary, path)
}
