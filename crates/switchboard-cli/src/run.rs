//! Running one command, and classifying its failure into an exit code.

use std::{io::Read, process::ExitCode, sync::Arc};

use serde_json::{Map, Value};
use switchboard_client::{
    CallOptions, EraPreference, ErrorClass, PROGRESS_QUEUE, model::ServerEvent,
};
use switchboard_config::{Config, ServerName};
use switchboard_host::{
    Host, HostError, HostOptions, ServerState, args::arguments_from_pairs, naming::split_readable,
};

use crate::{
    cli::{ArgumentArgs, Cli, Command},
    eras::EraMemory,
    output,
    settings::{Settings, default_config_path, era_memory_path},
};

/// The documented exit codes.
pub use switchboard_cli::exit;

/// A failed run: what to print and which exit code to use.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: ExitCode,
}

impl Failure {
    pub fn usage(message: String) -> Self {
        Failure {
            message,
            code: ExitCode::from(exit::USAGE),
        }
    }

    pub fn connection(message: String) -> Self {
        Failure {
            message,
            code: ExitCode::from(exit::CONNECTION),
        }
    }

    pub fn internal(message: String) -> Self {
        Failure {
            message,
            code: ExitCode::FAILURE,
        }
    }

    pub fn interrupted() -> Self {
        Failure {
            message: "interrupted".to_owned(),
            code: ExitCode::from(exit::INTERRUPTED),
        }
    }
}

impl From<switchboard_cli::serve::ServeError> for Failure {
    fn from(error: switchboard_cli::serve::ServeError) -> Self {
        Failure {
            code: ExitCode::from(error.exit_code()),
            message: error.to_string(),
        }
    }
}

impl From<HostError> for Failure {
    fn from(error: HostError) -> Self {
        let message = error.to_string();
        match &error {
            HostError::Client(client) => match client.class() {
                ErrorClass::Config => Failure::usage(message),
                ErrorClass::Connection
                | ErrorClass::Timeout
                | ErrorClass::Rpc
                | ErrorClass::Protocol => Failure::connection(message),
            },
            HostError::ServerUnavailable { .. } => Failure::connection(message),
            _ => Failure::usage(message),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        // `switchboard tools | head` closes the pipe early; that is the reader's choice, not
        // a failure.
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            return Failure {
                message: String::new(),
                code: ExitCode::SUCCESS,
            };
        }
        Failure::internal(format!("writing output failed: {error}"))
    }
}

/// The one server a command is about, if it names one: connecting only that server makes
/// `switchboard call time/...` fast even with many servers configured.
fn target_server(command: &Command, config: &Config) -> Option<String> {
    let known = |name: &str| config.servers.keys().any(|k| k.as_str() == name);
    // `server/tool`, or a readable qualified name `server__tool`.
    let from_path = |path: &str| {
        path.split_once('/')
            .or_else(|| split_readable(path))
            .map(|(server, _)| server.to_owned())
            .filter(|server| known(server))
    };
    match command {
        Command::Servers
        | Command::Serve(_)
        | Command::Expenses { .. }
        | Command::Audit { .. }
        | Command::Discover(_)
        | Command::Ask { .. }
        | Command::Chat { .. }
        | Command::Gateway(_) => None,
        Command::Tools { server } | Command::Resources { server } | Command::Prompts { server } => {
            server.clone().filter(|s| known(s))
        }
        Command::Call { tool, .. } => from_path(tool),
        Command::Read { server, .. } => server.clone().filter(|s| known(s)),
        Command::Prompt { name, .. } => from_path(name),
    }
}

fn no_servers_message() -> String {
    let default = default_config_path()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the default location".to_owned());
    format!(
        "no servers are configured; give --config PATH (e.g. your claude_desktop_config.json), set SWITCHBOARD_CONFIG, create {default}, or add one with --stdio \"COMMAND\" or --url URL"
    )
}

pub async fn run(cli: Cli) -> Result<ExitCode, Failure> {
    if let Command::Serve(args) = cli.command {
        switchboard_cli::serve::serve(args).await?;
        return Ok(ExitCode::SUCCESS);
    }

    if let Command::Expenses { command } = cli.command {
        return crate::expenses::run(command, cli.global.json).await;
    }
    if let Command::Discover(args) = cli.command {
        return crate::discover::run(&cli.global, args).await;
    }
    if let Command::Audit { command } = cli.command {
        return crate::audit::run(command, cli.global.json).await;
    }
    match cli.command {
        Command::Ask { question, agent } => {
            return crate::chat::run(cli.global, agent, crate::chat::Mode::Ask(question)).await;
        }
        Command::Gateway(args) => return crate::gateway::run(cli.global, args).await,
        Command::Chat { agent } => {
            return crate::chat::run(cli.global, agent, crate::chat::Mode::Chat).await;
        }
        _ => {}
    }
    let mut settings = Settings::resolve(&cli.global)?;
    if settings.config.servers.is_empty() {
        return Err(Failure::usage(no_servers_message()));
    }
    if let Some(server) = target_server(&cli.command, &settings.config) {
        settings
            .config
            .servers
            .retain(|name, _| name.as_str() == server);
    }
    let host = connect_host(&settings, None).await;
    let outcome = execute(&host, cli.command, &settings).await;
    host.shutdown().await;
    outcome
}

/// Connect every configured server, with server logs printed and eras remembered.
/// `callbacks` answer what servers ask (forms, sampling, roots), for the agent commands.
pub async fn connect_host(
    settings: &Settings,
    callbacks: Option<Arc<dyn switchboard_client::callbacks::ClientCallbacks>>,
) -> Host {
    let observer: switchboard_host::EventObserver =
        Arc::new(|server: &ServerName, event: &ServerEvent| {
            if let ServerEvent::Log(log) = event {
                output::server_log(server, log);
            }
        });
    let memory = EraMemory::new(era_memory_path());
    let mut connect = settings.connect.clone();
    connect.callbacks = callbacks;
    connect.oauth = sign_in_for(&settings.config).await;
    let options = HostOptions {
        connect,
        request_timeout: settings.request_timeout,
        on_event: Some(observer),
        era_hints: memory.hints(&settings.config),
        ..HostOptions::default()
    };
    let host = Host::connect(&settings.config, options).await;
    if settings.connect.era == EraPreference::Auto {
        memory.remember(&settings.config, &host);
    }
    host
}

/// OAuth for the Streamable HTTP servers of `config`, with the user signing in in a browser
/// when one answers 401 (`sign_in`); `None` when there is no such server.
async fn sign_in_for(config: &Config) -> Option<switchboard_client::oauth::OAuthOptions> {
    let http = config.servers.values().any(|entry| {
        matches!(
            entry.transport,
            switchboard_config::Transport::StreamableHttp { .. }
        )
    });
    if !http {
        return None;
    }
    match crate::sign_in::BrowserSignIn::listen().await {
        Ok(sign_in) => Some(sign_in.options()),
        Err(error) => {
            output::warn(&format!(
                "cannot listen on loopback for sign-in redirects ({error}); servers that require OAuth will be refused"
            ));
            None
        }
    }
}

async fn execute(host: &Host, command: Command, settings: &Settings) -> Result<ExitCode, Failure> {
    let json = settings.json;
    // Commands that do not name a server still need one that works.
    let any_connected = host
        .servers()
        .any(|(_, state)| matches!(state, ServerState::Connected(_)));
    if !matches!(command, Command::Servers) {
        for (_, state) in host.servers() {
            if let ServerState::Failed(error) = state {
                output::warn(&error.to_string());
            }
        }
        if !any_connected {
            return Err(Failure::connection(
                "no server could be reached (see above)".to_owned(),
            ));
        }
    }
    match command {
        Command::Serve(_)
        | Command::Expenses { .. }
        | Command::Audit { .. }
        | Command::Discover(_)
        | Command::Ask { .. }
        | Command::Chat { .. }
        | Command::Gateway(_) => Err(Failure::internal(
            "serve, expenses, audit, discover, ask, chat and gateway are handled before connecting"
                .to_owned(),
        )),
        Command::Servers => {
            let report = output::ServersReport::gather(host).await;
            report.print(json)?;
            Ok(if report.any_failed() {
                ExitCode::from(exit::CONNECTION)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Tools { server } => {
            let (tools, errors) = host.tools(server.as_deref()).await?;
            warn_all(&errors);
            output::print_tools(&tools, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Call {
            tool,
            arguments,
            save,
        } => {
            let tool = host.resolve_tool(&tool).await?;
            let arguments = collect_arguments(&arguments, &tool.tool.input_schema)?;
            let (progress_tx, progress_rx) = tokio::sync::mpsc::channel(PROGRESS_QUEUE);
            let progress = output::ProgressDisplay::spawn(progress_rx);
            let options = CallOptions {
                timeout: settings.request_timeout,
                progress: Some(progress_tx),
                ..CallOptions::default()
            };
            let result = host
                .call_tool(&tool, Value::Object(arguments), options)
                .await;
            progress.finish().await;
            let result = result?;
            output::print_tool_result(&result, json, save.as_deref())?;
            if result.is_error {
                output::warn(&format!("{} reported an error", tool.display_name()));
                return Ok(ExitCode::from(exit::TOOL_ERROR));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Resources { server } => {
            let (resources, errors) = host.resources(server.as_deref()).await?;
            warn_all(&errors);
            let (templates, errors) = host.resource_templates(server.as_deref()).await?;
            warn_all(&errors);
            output::print_resources(&resources, &templates, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Read { uri, server, save } => {
            let (server, result) = host.read_resource(&uri, server.as_deref()).await?;
            output::print_read_result(&server, &result, json, save.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Prompts { server } => {
            let (prompts, errors) = host.prompts(server.as_deref()).await?;
            warn_all(&errors);
            output::print_prompts(&prompts, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Prompt { name, arguments } => {
            let (server, prompt) = host.resolve_prompt(&name).await?;
            // Prompt arguments are always strings on the wire.
            let schema = serde_json::json!({
                "type": "object",
                "properties": prompt.arguments.iter().map(|a| (a.name.clone(), serde_json::json!({"type": "string"}))).collect::<Map<_, _>>()
            });
            let arguments = collect_arguments(&arguments, &schema)?;
            let missing: Vec<&str> = prompt
                .arguments
                .iter()
                .filter(|a| a.required && !arguments.contains_key(&a.name))
                .map(|a| a.name.as_str())
                .collect();
            if !missing.is_empty() {
                return Err(Failure::usage(format!(
                    "prompt {server}/{} needs the argument{} {}; give {} with --arg KEY=VALUE",
                    prompt.name,
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join(", "),
                    if missing.len() == 1 { "it" } else { "them" }
                )));
            }
            let result = host.get_prompt(&server, &prompt.name, arguments).await?;
            output::print_prompt_result(&result, json)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn warn_all(errors: &[HostError]) {
    for error in errors {
        output::warn(&error.to_string());
    }
}

/// All of stdin as text, refused when longer than `limit` bytes; `what` names it in errors.
pub fn read_stdin(what: &str, limit: u64) -> Result<String, Failure> {
    let mut buffer = String::new();
    std::io::stdin()
        .take(limit + 1)
        .read_to_string(&mut buffer)
        .map_err(|e| Failure::usage(format!("cannot read {what} from stdin: {e}")))?;
    if buffer.len() as u64 > limit {
        return Err(Failure::usage(format!(
            "{what} from stdin is larger than {limit} bytes"
        )));
    }
    Ok(buffer)
}

/// Longest JSON accepted for --args, from the command line or stdin.
const MAX_ARGS_BYTES: u64 = 16 * 1024 * 1024;

fn collect_arguments(
    arguments: &ArgumentArgs,
    schema: &Value,
) -> Result<Map<String, Value>, Failure> {
    if let Some(text) = &arguments.args {
        let text = if text == "-" {
            read_stdin("--args", MAX_ARGS_BYTES)?
        } else {
            text.clone()
        };
        return match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(Failure::usage(
                "--args must be a JSON object, like '{\"key\": \"value\"}'".to_owned(),
            )),
            Err(error) => Err(Failure::usage(format!("--args is not valid JSON: {error}"))),
        };
    }
    arguments_from_pairs(schema, &arguments.arg).map_err(|e| Failure::usage(e.to_string()))
}
