//! Choosing a model: `--model provider/name`, a key and a base URL, resolved into a
//! [`ChatModel`].
//!
//! The caller (the CLI) merges the flag and the config file into [`ModelSettings`]; what is
//! still missing is taken from the environment through a lookup function (so this crate never
//! reads the process environment, and tests pass a closure):
//!
//! | provider | key | base URL | default base URL |
//! |---|---|---|---|
//! | `anthropic/NAME` | `ANTHROPIC_API_KEY` (required) | `ANTHROPIC_BASE_URL` | `https://api.anthropic.com` |
//! | `openai/NAME` | `OPENAI_API_KEY` (required) | `OPENAI_BASE_URL` | `https://api.openai.com/v1` |
//! | `ollama/NAME` | none | `OLLAMA_HOST`, then `/v1` | `http://127.0.0.1:11434/v1` |
//! | `openai-compatible/NAME` | optional | `OPENAI_BASE_URL` (required) | none |
//!
//! For `openai-compatible`, `OPENAI_API_KEY` is used only together with `OPENAI_BASE_URL`: a key
//! meant for OpenAI is never sent to a server named by `--base-url`. An Ollama URL with no path
//! (`OLLAMA_HOST=10.0.0.5:11434`, `--base-url http://gpu:11434`) gets `/v1` appended.

use std::{fmt, str::FromStr};

use switchboard_config::Secret;
use url::Url;

use crate::{
    anthropic::{AnthropicModel, DEFAULT_ANTHROPIC_BASE_URL},
    http::ClientOptions,
    model::{ChatModel, ModelError},
    openai::{DEFAULT_OPENAI_BASE_URL, OpenAiFlavor, OpenAiModel},
};

/// The environment variables this module consults, through the caller's lookup function.
pub mod env {
    /// The Anthropic API key.
    pub const ANTHROPIC_API_KEY: &str = "ANTHROPIC_API_KEY";
    /// Another base URL for the Anthropic API (without `/v1`).
    pub const ANTHROPIC_BASE_URL: &str = "ANTHROPIC_BASE_URL";
    /// The OpenAI API key (and, with `OPENAI_BASE_URL`, an OpenAI-compatible server's).
    pub const OPENAI_API_KEY: &str = "OPENAI_API_KEY";
    /// Another base URL for the OpenAI API (with `/v1`).
    pub const OPENAI_BASE_URL: &str = "OPENAI_BASE_URL";
    /// Where Ollama listens (`host:port` or a URL), as the Ollama CLI reads it.
    pub const OLLAMA_HOST: &str = "OLLAMA_HOST";

    /// Every variable above.
    pub const ALL: [&str; 5] = [
        ANTHROPIC_API_KEY,
        ANTHROPIC_BASE_URL,
        OPENAI_API_KEY,
        OPENAI_BASE_URL,
        OLLAMA_HOST,
    ];
}

/// Where Ollama listens when `OLLAMA_HOST` is not set.
pub const DEFAULT_OLLAMA_HOST: &str = "http://127.0.0.1:11434";
/// Ollama's port, when `OLLAMA_HOST` names only a host.
const OLLAMA_PORT: u16 = 11434;

/// What to say when no model is chosen: every way to choose one.
pub const HOW_TO_CONFIGURE: &str = "choose a model with --model PROVIDER/NAME, for example \
`--model anthropic/claude-sonnet-4-5` (with ANTHROPIC_API_KEY set), \
`--model openai/gpt-4.1-mini` (with OPENAI_API_KEY set), \
`--model ollama/qwen2.5:7b` (a local Ollama at OLLAMA_HOST, by default http://127.0.0.1:11434), \
or `--model openai-compatible/NAME --base-url http://127.0.0.1:8000/v1` (vLLM, llama.cpp, LM Studio)";

/// Who serves the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// The Anthropic Messages API.
    Anthropic,
    /// OpenAI's Chat Completions.
    OpenAi,
    /// A local Ollama, through its OpenAI-compatible `/v1` endpoint.
    Ollama,
    /// Any other OpenAI-compatible server (vLLM, llama.cpp, LM Studio); needs a base URL.
    OpenAiCompatible,
}

impl Provider {
    /// Every provider, in the order the help lists them.
    pub const ALL: [Provider; 4] = [
        Provider::Anthropic,
        Provider::OpenAi,
        Provider::Ollama,
        Provider::OpenAiCompatible,
    ];

    /// The name before the `/` in `--model`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Anthropic => "anthropic",
            Provider::OpenAi => "openai",
            Provider::Ollama => "ollama",
            Provider::OpenAiCompatible => "openai-compatible",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `provider/name`, parsed. The name is everything after the first `/` (it may contain `/` and
/// `:`, as in `openai-compatible/meta-llama/Llama-3.1-8B` or `ollama/qwen2.5:7b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    pub provider: Provider,
    pub name: String,
}

impl ModelSpec {
    /// Parse `provider/name`. Every failure is [`ModelError::NotConfigured`] with a sentence
    /// that says what to write instead.
    pub fn parse(spec: &str) -> Result<ModelSpec, ModelError> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(ModelError::NotConfigured(format!(
                "no chat model is configured: {HOW_TO_CONFIGURE}"
            )));
        }
        let Some((provider, name)) = spec.split_once('/') else {
            let hint = match guess_provider(spec) {
                Some(provider) => format!("write it as `{provider}/{spec}`"),
                None => format!(
                    "write it as PROVIDER/NAME with a provider among {}",
                    provider_list()
                ),
            };
            return Err(ModelError::NotConfigured(format!(
                "the model `{spec}` names no provider: {hint}"
            )));
        };
        let provider = Provider::ALL
            .into_iter()
            .find(|candidate| candidate.as_str().eq_ignore_ascii_case(provider))
            .ok_or_else(|| {
                ModelError::NotConfigured(format!(
                    "unknown model provider `{provider}` in `{spec}`: use one of {}",
                    provider_list()
                ))
            })?;
        let name = name.trim();
        if name.is_empty() {
            return Err(ModelError::NotConfigured(format!(
                "`{spec}` names no model: write {provider}/NAME, for example {}",
                example(provider)
            )));
        }
        Ok(ModelSpec {
            provider,
            name: name.to_owned(),
        })
    }
}

impl FromStr for ModelSpec {
    type Err = ModelError;

    fn from_str(spec: &str) -> Result<ModelSpec, ModelError> {
        ModelSpec::parse(spec)
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.name)
    }
}

fn provider_list() -> String {
    Provider::ALL
        .iter()
        .map(|provider| format!("`{provider}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn example(provider: Provider) -> &'static str {
    match provider {
        Provider::Anthropic => "anthropic/claude-sonnet-4-5",
        Provider::OpenAi => "openai/gpt-4.1-mini",
        Provider::Ollama => "ollama/qwen2.5:7b",
        Provider::OpenAiCompatible => "openai-compatible/Qwen/Qwen2.5-7B-Instruct",
    }
}

/// The provider a bare model name most likely belongs to, for the error's hint.
fn guess_provider(name: &str) -> Option<Provider> {
    let name = name.to_ascii_lowercase();
    if name.starts_with("claude") {
        Some(Provider::Anthropic)
    } else if ["gpt-", "o1", "o3", "o4", "chatgpt"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
    {
        Some(Provider::OpenAi)
    } else if name.contains(':') {
        Some(Provider::Ollama) // `qwen2.5:7b` is Ollama's tag syntax.
    } else {
        None
    }
}

/// What the caller knows from flags and the config file (flag first); the environment fills
/// in the rest in [`resolve`].
#[derive(Debug, Clone, Default)]
pub struct ModelSettings {
    /// `provider/name`; empty means none was chosen.
    pub model: String,
    pub api_key: Option<Secret>,
    pub base_url: Option<Url>,
    pub options: ClientOptions,
}

impl ModelSettings {
    pub fn new(model: impl Into<String>) -> ModelSettings {
        ModelSettings {
            model: model.into(),
            ..ModelSettings::default()
        }
    }
}

/// Where a resolved value came from (for `--verbose` and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// [`ModelSettings`]: a flag or the config file.
    Settings,
    /// The named environment variable.
    Env(&'static str),
    /// The provider's default.
    Default,
}

/// Everything needed to build the model.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    pub spec: ModelSpec,
    /// The base URL requests go to (`chat/completions` or `v1/messages` is appended).
    pub base_url: Url,
    pub base_url_source: Source,
    pub api_key: Option<Secret>,
    pub api_key_source: Option<Source>,
    pub options: ClientOptions,
}

/// Fill what `settings` leaves open from the environment (`env` looks a variable up) and
/// defaults, and check that the provider has what it needs.
pub fn resolve(
    settings: &ModelSettings,
    env: impl Fn(&str) -> Option<String>,
) -> Result<ResolvedModel, ModelError> {
    let spec = ModelSpec::parse(&settings.model)?;
    let lookup = |name: &'static str| {
        env(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    };
    let settings_key = settings
        .api_key
        .clone()
        .filter(|key| !key.expose().trim().is_empty());

    let (base_url, base_url_source) = match (&settings.base_url, spec.provider) {
        (Some(url), Provider::Ollama) => (ollama_api(url.clone()), Source::Settings),
        (Some(url), _) => (url.clone(), Source::Settings),
        (None, Provider::Anthropic) => url_from_env(&lookup, env::ANTHROPIC_BASE_URL)?
            .map(|url| (url, Source::Env(env::ANTHROPIC_BASE_URL)))
            .map_or_else(
                || fixed_url(DEFAULT_ANTHROPIC_BASE_URL).map(|url| (url, Source::Default)),
                Ok,
            )?,
        (None, Provider::OpenAi) => url_from_env(&lookup, env::OPENAI_BASE_URL)?
            .map(|url| (url, Source::Env(env::OPENAI_BASE_URL)))
            .map_or_else(
                || fixed_url(DEFAULT_OPENAI_BASE_URL).map(|url| (url, Source::Default)),
                Ok,
            )?,
        (None, Provider::Ollama) => match lookup(env::OLLAMA_HOST) {
            Some(host) => (
                ollama_api(ollama_host(&host)?),
                Source::Env(env::OLLAMA_HOST),
            ),
            None => (ollama_api(fixed_url(DEFAULT_OLLAMA_HOST)?), Source::Default),
        },
        (None, Provider::OpenAiCompatible) => match url_from_env(&lookup, env::OPENAI_BASE_URL)? {
            Some(url) => (url, Source::Env(env::OPENAI_BASE_URL)),
            None => {
                return Err(ModelError::NotConfigured(format!(
                    "{spec} needs the server's base URL: pass --base-url (for example \
                     --base-url http://127.0.0.1:8000/v1 for vLLM, http://127.0.0.1:8080/v1 for \
                     llama.cpp, http://127.0.0.1:1234/v1 for LM Studio) or set {}",
                    env::OPENAI_BASE_URL
                )));
            }
        },
    };
    if !matches!(base_url.scheme(), "http" | "https") {
        return Err(ModelError::NotConfigured(format!(
            "the base URL for {spec} must start with http:// or https://, not {}://",
            base_url.scheme()
        )));
    }

    let (api_key, api_key_source) = match (settings_key, spec.provider) {
        (Some(key), _) => (Some(key), Some(Source::Settings)),
        (None, Provider::Anthropic) => match lookup(env::ANTHROPIC_API_KEY) {
            Some(key) => (
                Some(Secret::new(key)),
                Some(Source::Env(env::ANTHROPIC_API_KEY)),
            ),
            None => return Err(missing_key(&spec, env::ANTHROPIC_API_KEY)),
        },
        (None, Provider::OpenAi) => match lookup(env::OPENAI_API_KEY) {
            Some(key) => (
                Some(Secret::new(key)),
                Some(Source::Env(env::OPENAI_API_KEY)),
            ),
            None => return Err(missing_key(&spec, env::OPENAI_API_KEY)),
        },
        // The key and the URL of an OpenAI-compatible server belong together.
        (None, Provider::OpenAiCompatible)
            if base_url_source == Source::Env(env::OPENAI_BASE_URL) =>
        {
            match lookup(env::OPENAI_API_KEY) {
                Some(key) => (
                    Some(Secret::new(key)),
                    Some(Source::Env(env::OPENAI_API_KEY)),
                ),
                None => (None, None),
            }
        }
        (None, Provider::OpenAiCompatible | Provider::Ollama) => (None, None),
    };

    Ok(ResolvedModel {
        spec,
        base_url,
        base_url_source,
        api_key,
        api_key_source,
        options: settings.options,
    })
}

/// [`resolve`], then build the model. Building makes no network request.
pub fn build_model(
    settings: &ModelSettings,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Box<dyn ChatModel>, ModelError> {
    resolve(settings, env)?.build()
}

impl ResolvedModel {
    pub fn build(self) -> Result<Box<dyn ChatModel>, ModelError> {
        let ResolvedModel {
            spec,
            base_url,
            api_key,
            options,
            ..
        } = self;
        let flavor = match spec.provider {
            Provider::Anthropic => {
                let api_key = api_key.ok_or_else(|| missing_key(&spec, env::ANTHROPIC_API_KEY))?;
                return Ok(Box::new(AnthropicModel::new(
                    spec.name, &base_url, api_key, options,
                )?));
            }
            Provider::OpenAi => OpenAiFlavor::OpenAi,
            Provider::Ollama => OpenAiFlavor::Ollama,
            Provider::OpenAiCompatible => OpenAiFlavor::Compatible,
        };
        Ok(Box::new(OpenAiModel::new(
            flavor, spec.name, &base_url, api_key, options,
        )?))
    }
}

fn missing_key(spec: &ModelSpec, variable: &str) -> ModelError {
    ModelError::NotConfigured(format!(
        "{spec} needs an API key: set {variable} in the environment (for example \
         `export {variable}=...`), or name another variable with --api-key-env"
    ))
}

fn url_from_env(
    lookup: &impl Fn(&'static str) -> Option<String>,
    variable: &'static str,
) -> Result<Option<Url>, ModelError> {
    let Some(text) = lookup(variable) else {
        return Ok(None);
    };
    Url::parse(&text).map(Some).map_err(|error| {
        ModelError::NotConfigured(format!(
            "{variable} is not a valid URL ({error}); for example \
             {variable}=https://proxy.example.com"
        ))
    })
}

/// One of our constant URLs (which parse; the error path only keeps this panic-free).
fn fixed_url(text: &'static str) -> Result<Url, ModelError> {
    Url::parse(text).map_err(|error| {
        ModelError::NotConfigured(format!("the default URL {text} is invalid: {error}"))
    })
}

/// `OLLAMA_HOST` as the Ollama CLI reads it: `host`, `host:port` or a URL; http and port
/// 11434 unless given.
fn ollama_host(text: &str) -> Result<Url, ModelError> {
    let has_scheme = text.contains("://");
    let with_scheme = if has_scheme {
        text.to_owned()
    } else {
        format!("http://{text}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|error| {
        ModelError::NotConfigured(format!(
            "{} is not a host or URL Ollama listens on ({error}); for example {}=127.0.0.1:11434",
            env::OLLAMA_HOST,
            env::OLLAMA_HOST
        ))
    })?;
    let authority = with_scheme
        .split_once("://")
        .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
    let names_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    if !names_port && url.scheme() == "http" {
        let _ = url.set_port(Some(OLLAMA_PORT));
    }
    Ok(url)
}

/// Ollama's OpenAI-compatible API is under `/v1`; a URL with its own path is used as given.
fn ollama_api(url: Url) -> Url {
    if url.path().trim_matches('/').is_empty() {
        let mut url = url;
        url.set_path("/v1");
        url
    } else {
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ollama_host_takes_the_forms_the_ollama_cli_takes() {
        let api = |text: &str| ollama_api(ollama_host(text).expect("a valid host")).to_string();
        assert_eq!(api("127.0.0.1:11434"), "http://127.0.0.1:11434/v1");
        assert_eq!(api("gpu-box"), "http://gpu-box:11434/v1");
        assert_eq!(api("http://gpu-box:8000"), "http://gpu-box:8000/v1");
        assert_eq!(api("https://ollama.example"), "https://ollama.example/v1");
        // Like Ollama, a plain-http host without a port gets 11434; a path is kept.
        assert_eq!(
            api("http://proxy/ollama/v1"),
            "http://proxy:11434/ollama/v1"
        );
        assert_eq!(api("http://proxy:80/ollama"), "http://proxy/ollama");
    }
}
