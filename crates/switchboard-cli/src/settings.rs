//! Resolving flags, environment and the config file into the settings one run uses.

use std::{path::PathBuf, sync::Arc, time::Duration};

use switchboard_client::{ConnectOptions, EraPreference};
use switchboard_config::{Config, ServerEntry};

use crate::{
    cli::{EraArg, GlobalArgs},
    env,
    run::Failure,
    verbose::StderrTap,
};

/// Where the config comes from when neither --config nor $SWITCHBOARD_CONFIG says.
pub fn default_config_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "switchboard", "switchboard")
        .map(|dirs| dirs.config_dir().join("mcp.json"))
}

/// The user's data directory (sessions, logs, era memory).
pub fn data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "switchboard", "switchboard")
        .map(|dirs| dirs.data_local_dir().to_path_buf())
}

/// Where `eras.json` lives: the user's data directory.
pub fn era_memory_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "switchboard", "switchboard")
        .map(|dirs| dirs.data_local_dir().join("eras.json"))
}

fn default_log_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(env::LOG_DIR) {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("dev", "switchboard", "switchboard")
        .map(|dirs| dirs.data_local_dir().join("logs"))
}

pub fn seconds(flag: &str, value: f64) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Failure::usage(format!(
                "{flag} must be a positive number of seconds, not {value}"
            ))
        })
}

/// Everything a command needs, resolved once.
#[derive(Debug)]
pub struct Settings {
    pub config: Config,
    pub connect: ConnectOptions,
    pub request_timeout: Duration,
    pub json: bool,
}

/// The servers given with `--stdio` and `--url` (with `--header`).
pub fn adhoc_servers(global: &GlobalArgs) -> Result<Vec<ServerEntry>, Failure> {
    let mut adhoc = Vec::new();
    for spec in &global.stdio {
        adhoc.push(
            switchboard_config::adhoc_stdio(spec)
                .map_err(|e| Failure::usage(format!("--stdio {spec:?}: {e}")))?,
        );
    }
    for url in &global.url {
        adhoc.push(
            switchboard_config::adhoc_url(url, &global.header)
                .map_err(|e| Failure::usage(format!("--url {url:?}: {e}")))?,
        );
    }
    Ok(adhoc)
}

impl Settings {
    pub fn resolve(global: &GlobalArgs) -> Result<Self, Failure> {
        let mut config = load_config(global)?;
        let mut adhoc = adhoc_servers(global)?;
        if !global.header.is_empty() && global.url.is_empty() {
            return Err(Failure::usage(
                "--header applies to --url servers, and no --url was given".to_owned(),
            ));
        }
        let taken: Vec<_> = config.servers.keys().cloned().collect();
        switchboard_config::dedupe_names(&mut adhoc, &taken);
        config
            .merge_adhoc(adhoc)
            .map_err(|e| Failure::usage(e.to_string()))?;

        let connect = ConnectOptions {
            connect_timeout: seconds("--connect-timeout", global.connect_timeout)?,
            era: match global.era {
                EraArg::Auto => EraPreference::Auto,
                EraArg::Modern => EraPreference::Modern,
                EraArg::Legacy => EraPreference::Legacy,
            },
            tap: global
                .verbose
                .then(|| Arc::new(StderrTap::new()) as Arc<dyn switchboard_client::WireTap>),
            log_dir: default_log_dir(),
            ..ConnectOptions::default()
        };
        Ok(Settings {
            config,
            connect,
            request_timeout: seconds("--timeout", global.timeout)?,
            json: global.json,
        })
    }
}

/// The config file's path and text; `None` when the default file does not exist.
fn read_config_file(global: &GlobalArgs) -> Result<Option<(PathBuf, String)>, Failure> {
    let explicit = global.config.clone();
    let Some(path) = explicit.clone().or_else(default_config_path) else {
        return Ok(None);
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some((path, text))),
        // The default location is optional; a file the user named is not.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            Ok(None)
        }
        Err(error) => Err(Failure::usage(format!(
            "cannot read the config file {}: {error}",
            path.display()
        ))),
    }
}

/// The config file's `agent` section: the model `ask` and `chat` use unless a flag says.
///
/// ```jsonc
/// "agent": {"model": "ollama/qwen2.5:7b", "baseUrl": "http://gpu-box:11434/v1", "apiKeyEnv": "MY_KEY"}
/// ```
///
/// Keys themselves are never written in the file: `apiKeyEnv` names the variable holding one.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentConfig {
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
}

pub fn agent_config(global: &GlobalArgs) -> Result<AgentConfig, Failure> {
    let Some((path, text)) = read_config_file(global)? else {
        return Ok(AgentConfig::default());
    };
    let options = jsonc_parser::ParseOptions::default();
    let value: Option<serde_json::Value> = jsonc_parser::parse_to_serde_value(&text, &options)
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    match value.as_ref().and_then(|v| v.get("agent")) {
        None | Some(serde_json::Value::Null) => Ok(AgentConfig::default()),
        Some(section) => serde_json::from_value(section.clone()).map_err(|e| {
            Failure::usage(format!(
                "{}: the \"agent\" section: {e} (it takes model, baseUrl and apiKeyEnv)",
                path.display()
            ))
        }),
    }
}

fn load_config(global: &GlobalArgs) -> Result<Config, Failure> {
    let Some((path, text)) = read_config_file(global)? else {
        return Ok(Config::empty());
    };
    let lookup = |name: &str| std::env::var(name).ok();
    switchboard_config::parse_config(&text, Some(&path), &lookup)
        .map_err(|e| Failure::usage(e.to_string()))
}
