//! `--model provider/name` and where the key and base URL come from.

use std::collections::HashMap;

use switchboard_llm::{
    ModelError, ModelSettings, ModelSpec, Provider, Secret, Source, build_model, resolve,
};

use crate::url;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn not_configured(error: ModelError) -> String {
    match error {
        ModelError::NotConfigured(sentence) => sentence,
        other => panic!("expected NotConfigured, got {other:?}"),
    }
}

#[test]
fn model_specs_parse_provider_and_name() {
    let cases = [
        (
            "anthropic/claude-sonnet-4-5",
            Provider::Anthropic,
            "claude-sonnet-4-5",
        ),
        ("openai/gpt-4.1-mini", Provider::OpenAi, "gpt-4.1-mini"),
        ("ollama/qwen2.5:7b", Provider::Ollama, "qwen2.5:7b"),
        (
            "openai-compatible/meta-llama/Llama-3.1-8B-Instruct",
            Provider::OpenAiCompatible,
            "meta-llama/Llama-3.1-8B-Instruct",
        ),
        (" Anthropic/claude-x ", Provider::Anthropic, "claude-x"),
    ];
    for (text, provider, name) in cases {
        let spec: ModelSpec = text.parse().expect("a valid spec");
        assert_eq!(spec.provider, provider, "{text}");
        assert_eq!(spec.name, name, "{text}");
    }
    assert_eq!(
        ModelSpec::parse("ollama/qwen2.5:7b")
            .expect("valid")
            .to_string(),
        "ollama/qwen2.5:7b"
    );
}

#[test]
fn bad_model_specs_say_what_to_write() {
    let empty = not_configured(ModelSpec::parse("").expect_err("empty"));
    for needle in [
        "--model",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "OLLAMA_HOST",
        "anthropic/claude-sonnet-4-5",
    ] {
        assert!(empty.contains(needle), "{needle} missing from: {empty}");
    }
    assert_eq!(
        not_configured(ModelSpec::parse("claude-sonnet-4-5").expect_err("no provider")),
        "the model `claude-sonnet-4-5` names no provider: write it as `anthropic/claude-sonnet-4-5`"
    );
    assert_eq!(
        not_configured(ModelSpec::parse("gemini/pro").expect_err("unknown")),
        "unknown model provider `gemini` in `gemini/pro`: use one of `anthropic`, `openai`, `ollama`, `openai-compatible`"
    );
    assert!(
        not_configured(ModelSpec::parse("openai/").expect_err("no name"))
            .contains("for example openai/gpt-4.1-mini")
    );
}

#[test]
fn settings_win_over_the_environment() {
    let settings = ModelSettings {
        api_key: Some(Secret::new("from-flag")),
        base_url: Some(url("https://proxy.example/anthropic")),
        ..ModelSettings::new("anthropic/claude-sonnet-4-5")
    };
    let resolved = resolve(
        &settings,
        env(&[
            ("ANTHROPIC_API_KEY", "from-env"),
            ("ANTHROPIC_BASE_URL", "https://env.example"),
        ]),
    )
    .expect("resolves");
    assert_eq!(
        resolved.api_key.as_ref().map(Secret::expose),
        Some("from-flag")
    );
    assert_eq!(resolved.api_key_source, Some(Source::Settings));
    assert_eq!(
        resolved.base_url.as_str(),
        "https://proxy.example/anthropic"
    );
    assert_eq!(resolved.base_url_source, Source::Settings);
}

#[test]
fn the_environment_fills_what_settings_leave_open() {
    let resolved = resolve(
        &ModelSettings::new("anthropic/claude-sonnet-4-5"),
        env(&[
            ("ANTHROPIC_API_KEY", "from-env"),
            ("ANTHROPIC_BASE_URL", "https://env.example"),
        ]),
    )
    .expect("resolves");
    assert_eq!(
        resolved.api_key.as_ref().map(Secret::expose),
        Some("from-env")
    );
    assert_eq!(
        resolved.api_key_source,
        Some(Source::Env("ANTHROPIC_API_KEY"))
    );
    assert_eq!(resolved.base_url.as_str(), "https://env.example/");
    assert_eq!(resolved.base_url_source, Source::Env("ANTHROPIC_BASE_URL"));

    let openai = resolve(
        &ModelSettings::new("openai/gpt-4.1-mini"),
        env(&[
            ("OPENAI_API_KEY", "sk-env"),
            ("ANTHROPIC_BASE_URL", "https://ignored.example"),
        ]),
    )
    .expect("resolves");
    assert_eq!(openai.base_url.as_str(), "https://api.openai.com/v1");
    assert_eq!(openai.base_url_source, Source::Default);
}

#[test]
fn default_base_urls() {
    let anthropic = resolve(
        &ModelSettings::new("anthropic/claude-sonnet-4-5"),
        env(&[("ANTHROPIC_API_KEY", "k")]),
    )
    .expect("resolves");
    assert_eq!(anthropic.base_url.as_str(), "https://api.anthropic.com/");
    let ollama = resolve(&ModelSettings::new("ollama/qwen2.5:7b"), env(&[])).expect("resolves");
    assert_eq!(ollama.base_url.as_str(), "http://127.0.0.1:11434/v1");
    assert!(ollama.api_key.is_none());
    let remote = resolve(
        &ModelSettings::new("ollama/qwen2.5:7b"),
        env(&[("OLLAMA_HOST", "gpu-box")]),
    )
    .expect("resolves");
    assert_eq!(remote.base_url.as_str(), "http://gpu-box:11434/v1");
    assert_eq!(remote.base_url_source, Source::Env("OLLAMA_HOST"));
}

#[test]
fn a_missing_key_names_the_variable_to_set() {
    let sentence = not_configured(
        build_model(&ModelSettings::new("anthropic/claude-sonnet-4-5"), env(&[]))
            .expect_err("no key"),
    );
    assert_eq!(
        sentence,
        "anthropic/claude-sonnet-4-5 needs an API key: set ANTHROPIC_API_KEY in the environment \
         (for example `export ANTHROPIC_API_KEY=...`), or name another variable with --api-key-env"
    );
    // An empty variable is as good as none.
    let sentence = not_configured(
        build_model(
            &ModelSettings::new("openai/gpt-4.1-mini"),
            env(&[("OPENAI_API_KEY", " ")]),
        )
        .expect_err("no key"),
    );
    assert!(sentence.contains("set OPENAI_API_KEY"), "{sentence}");
}

#[test]
fn openai_compatible_needs_a_base_url_and_keeps_the_openai_key_to_itself() {
    let sentence = not_configured(
        resolve(
            &ModelSettings::new("openai-compatible/qwen"),
            env(&[("OPENAI_API_KEY", "sk-openai")]),
        )
        .expect_err("no base URL"),
    );
    assert!(
        sentence.starts_with("openai-compatible/qwen needs the server's base URL: pass --base-url"),
        "{sentence}"
    );
    assert!(sentence.contains("OPENAI_BASE_URL"), "{sentence}");

    // A server named by --base-url does not get the OpenAI key from the environment...
    let settings = ModelSettings {
        base_url: Some(url("http://127.0.0.1:8000/v1")),
        ..ModelSettings::new("openai-compatible/qwen")
    };
    let resolved = resolve(&settings, env(&[("OPENAI_API_KEY", "sk-openai")])).expect("resolves");
    assert!(resolved.api_key.is_none());

    // ...but OPENAI_BASE_URL and OPENAI_API_KEY belong together.
    let resolved = resolve(
        &ModelSettings::new("openai-compatible/qwen"),
        env(&[
            ("OPENAI_API_KEY", "vllm-key"),
            ("OPENAI_BASE_URL", "http://10.0.0.2:8000/v1"),
        ]),
    )
    .expect("resolves");
    assert_eq!(
        resolved.api_key.as_ref().map(Secret::expose),
        Some("vllm-key")
    );
    assert_eq!(resolved.base_url.as_str(), "http://10.0.0.2:8000/v1");
}

#[test]
fn a_bad_base_url_in_the_environment_is_named() {
    let sentence = not_configured(
        resolve(
            &ModelSettings::new("openai/gpt-4.1-mini"),
            env(&[("OPENAI_API_KEY", "k"), ("OPENAI_BASE_URL", "not a url")]),
        )
        .expect_err("bad URL"),
    );
    assert!(
        sentence.starts_with("OPENAI_BASE_URL is not a valid URL"),
        "{sentence}"
    );
    let settings = ModelSettings {
        base_url: Some(url("ftp://example.com/")),
        ..ModelSettings::new("ollama/qwen")
    };
    let sentence = not_configured(resolve(&settings, env(&[])).expect_err("bad scheme"));
    assert!(
        sentence.contains("must start with http:// or https://"),
        "{sentence}"
    );
}

#[test]
fn build_model_names_the_model_and_hides_the_key() {
    let model = build_model(
        &ModelSettings::new("openai/gpt-4.1-mini"),
        env(&[("OPENAI_API_KEY", "sk-very-secret")]),
    )
    .expect("builds");
    assert_eq!(model.id(), "openai/gpt-4.1-mini");
    let debug = format!("{model:?}");
    assert!(!debug.contains("sk-very-secret"), "{debug}");
    let settings = ModelSettings {
        base_url: Some(url("http://127.0.0.1:1234/v1")),
        ..ModelSettings::new("openai-compatible/qwen")
    };
    let model = build_model(&settings, env(&[])).expect("builds without a key");
    assert_eq!(model.id(), "openai-compatible/qwen");
}
