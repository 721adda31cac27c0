//! Servers given on the command line (`--stdio`, `--url`, `--header`) rather than in a file.

use std::collections::HashSet;

use indexmap::IndexMap;
use url::Url;

use crate::error::ConfigError;
use crate::model::{MAX_SERVER_NAME_CHARS, Secret, ServerEntry, ServerName, Transport};
use crate::parse::{header_name_problem, header_value_problem};

/// File extensions that mark an argument as the script a generic runner executes
/// (`python3 server.py`, `node build/index.js`).
const SCRIPT_EXTENSIONS: &[&str] = &[
    "py", "js", "mjs", "cjs", "ts", "mts", "cts", "rb", "pl", "php", "sh", "jar", "exe", "ps1",
];

/// Name used when nothing in the input yields a usable one.
const FALLBACK_NAME: &str = "server";

/// Builds a stdio server from a command line such as
/// `npx -y @modelcontextprotocol/server-everything`.
///
/// The line is split like a POSIX shell would (quotes and backslashes), without expanding variables.
///
/// The name is chosen so that it says which server runs rather than which runner runs it:
///
/// 1. the last argument that names a script (a file ending in `.py`, `.js`, `.ts`, `.sh`, ... ;
///    the name is the file's stem) or a scoped npm package (`@scope/name[@version]`; the name is
///    `name`); otherwise
/// 2. the last argument that looks like a package or image reference: lowercase ASCII letters,
///    digits, `.`, `_`, `-`, optionally with `/`-separated parts and a `@version`, `==version` or
///    `:tag` suffix, with at least one letter (the name is the last part without the suffix);
///    otherwise
/// 3. the command's file name without its extension.
///
/// Arguments starting with `-`, paths starting with `/`, `.` or `~`, and URLs never match. The
/// result is reduced to ASCII letters, digits, `_` and `-` (other runs become one `-`).
///
/// So `npx -y @scope/server-foo /tmp` is `server-foo`, `uvx mcp-server-time` is `mcp-server-time`,
/// `python3 server.py` is `server` and `docker run -i --rm mcp/github` is `github`.
pub fn adhoc_stdio(spec: &str) -> Result<ServerEntry, ConfigError> {
    let words =
        shell_words::split(spec).map_err(|source| ConfigError::AdhocCommandSyntax { source })?;
    let Some((command, args)) = words.split_first() else {
        return Err(ConfigError::AdhocCommandEmpty);
    };
    if command.trim().is_empty() {
        return Err(ConfigError::AdhocCommandEmpty);
    }
    let name = sanitized_name(stdio_name(command, args));
    Ok(ServerEntry::new(
        name,
        Transport::Stdio {
            command: command.clone(),
            args: args.to_vec(),
            env: IndexMap::new(),
            cwd: None,
        },
    ))
}

/// Builds a remote server from `--url` and its `--header "Name: value"` flags (`Name:value` works
/// too).
///
/// `ws://` and `wss://` give [`Transport::WebSocket`]; an `http(s)` URL whose path ends in `/sse`
/// gives the legacy [`Transport::Sse`]; any other `http(s)` URL gives [`Transport::StreamableHttp`].
/// The name is the host and explicit port, reduced to ASCII letters, digits, `_` and `-`:
/// `http://127.0.0.1:3000/mcp` is `127-0-0-1-3000`.
pub fn adhoc_url(url: &str, headers: &[String]) -> Result<ServerEntry, ConfigError> {
    let url = Url::parse(url.trim()).map_err(|source| ConfigError::AdhocInvalidUrl { source })?;
    let headers = adhoc_headers(headers)?;
    let name = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => sanitized_name(&format!("{host}-{port}")),
        (Some(host), None) => sanitized_name(host),
        (None, _) => sanitized_name(FALLBACK_NAME),
    };
    let transport = match url.scheme() {
        "ws" | "wss" => Transport::WebSocket { url, headers },
        "http" | "https" if url.path().ends_with("/sse") => Transport::Sse { url, headers },
        "http" | "https" => Transport::StreamableHttp { url, headers },
        other => {
            return Err(ConfigError::AdhocUnsupportedScheme {
                scheme: other.to_owned(),
            });
        }
    };
    Ok(ServerEntry::new(name, transport))
}

/// Renames entries whose names are in `taken`, or used by an earlier entry, by appending `-2`, `-3`,
/// ... (the first free number), shortening the name if the suffix would exceed the length limit.
pub fn dedupe_names(entries: &mut [ServerEntry], taken: &[ServerName]) {
    let mut used: HashSet<String> = taken.iter().map(|name| name.as_str().to_owned()).collect();
    for entry in entries {
        if used.insert(entry.name.as_str().to_owned()) {
            continue;
        }
        let mut number = 2_usize;
        let unique = loop {
            let suffix = format!("-{number}");
            let base: String = entry
                .name
                .as_str()
                .chars()
                .take(MAX_SERVER_NAME_CHARS - suffix.len())
                .collect();
            let candidate = format!("{base}{suffix}");
            if !used.contains(&candidate) {
                break candidate;
            }
            number += 1;
        };
        used.insert(unique.clone());
        // A valid name's prefix followed by `-N` is still valid: non-empty, within the limit, no
        // `/`, no control characters, and it ends in a digit.
        entry.name = ServerName::from_valid(unique);
    }
}

fn adhoc_headers(headers: &[String]) -> Result<IndexMap<String, Secret>, ConfigError> {
    let mut parsed: IndexMap<String, Secret> = IndexMap::new();
    let mut lowercase_names = HashSet::new();
    for (index, header) in headers.iter().enumerate() {
        let position = index + 1;
        let Some((name, value)) = header.split_once(':') else {
            return Err(ConfigError::AdhocInvalidHeader {
                position,
                name: None,
                reason: "it has no ':' between the name and the value; expected \"Name: value\"",
            });
        };
        let (name, value) = (name.trim(), value.trim());
        // An unusable name is not echoed: a mistyped header is often a credential pasted in the
        // wrong place.
        if let Some(reason) = header_name_problem(name) {
            return Err(ConfigError::AdhocInvalidHeader {
                position,
                name: None,
                reason,
            });
        }
        let problem = header_value_problem(value).or_else(|| {
            (!lowercase_names.insert(name.to_ascii_lowercase()))
                .then_some("it repeats a header given earlier")
        });
        if let Some(reason) = problem {
            return Err(ConfigError::AdhocInvalidHeader {
                position,
                name: Some(name.to_owned()),
                reason,
            });
        }
        parsed.insert(name.to_owned(), Secret::new(value));
    }
    Ok(parsed)
}

/// The unsanitised name for a command line; see [`adhoc_stdio`] for the rule.
fn stdio_name<'w>(command: &'w str, args: &'w [String]) -> &'w str {
    let strong = args
        .iter()
        .rev()
        .find_map(|arg| script_stem(arg).or_else(|| scoped_package(arg)));
    let weak = || args.iter().rev().find_map(|arg| package_name(arg));
    strong.or_else(weak).unwrap_or_else(|| file_stem(command))
}

/// The part after the last `/` or `\`.
fn last_segment(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// The stem of a file name, e.g. `python3` for `/usr/bin/python3.12`; a leading dot is not an
/// extension separator.
fn file_stem(path: &str) -> &str {
    let file = last_segment(path);
    match file.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => file,
    }
}

fn script_stem(arg: &str) -> Option<&str> {
    if arg.starts_with('-') || arg.contains("://") {
        return None;
    }
    let (stem, extension) = last_segment(arg).rsplit_once('.')?;
    let is_script = SCRIPT_EXTENSIONS
        .iter()
        .any(|known| known.eq_ignore_ascii_case(extension));
    (is_script && !stem.is_empty()).then_some(stem)
}

fn scoped_package(arg: &str) -> Option<&str> {
    let (_scope, name) = arg.strip_prefix('@')?.split_once('/')?;
    let name = name.split('@').next().unwrap_or(name);
    is_package_word(name).then_some(name)
}

fn package_name(arg: &str) -> Option<&str> {
    let reference = arg.split("==").next().unwrap_or(arg);
    let reference = reference.split('@').next().unwrap_or(reference);
    let (parents, last) = match reference.rsplit_once('/') {
        Some((parents, last)) => (Some(parents), last),
        None => (None, reference),
    };
    let last = last.split(':').next().unwrap_or(last);
    let parents_ok = parents.is_none_or(|parents| parents.split('/').all(is_package_word));
    (parents_ok && is_package_word(last) && last.contains(|c: char| c.is_ascii_alphabetic()))
        .then_some(last)
}

/// Lowercase ASCII letters, digits, `.`, `_` and `-`, starting with a letter or digit: the common
/// ground of npm, PyPI and container image names.
fn is_package_word(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// Reduces `raw` to ASCII letters, digits, `_` and `-`, which are safe in `server/tool` addresses,
/// shells and file names.
fn sanitized_name(raw: &str) -> ServerName {
    let mut name = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            name.push(c);
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    name.truncate(MAX_SERVER_NAME_CHARS);
    let name = name.trim_end_matches('-');
    let name = if name.is_empty() { FALLBACK_NAME } else { name };
    ServerName::from_valid(name.to_owned())
}
