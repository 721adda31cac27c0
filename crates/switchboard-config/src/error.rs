//! The crate's one error type.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::model::{InvalidServerName, ServerName};

/// A place in a config file: `path:line:column`, both 1-based.
///
/// Columns count characters (Unicode scalar values), as the JSONC parser does for syntax errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The config file; `None` when the caller parsed text that did not come from a file.
    pub path: Option<PathBuf>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            PathDisplay(self.path.as_deref()),
            self.line,
            self.column
        )
    }
}

/// Shows a config path, or `<config>` for text without one.
struct PathDisplay<'a>(Option<&'a Path>);

impl fmt::Display for PathDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(path) => write!(f, "{}", path.display()),
            None => f.write_str("<config>"),
        }
    }
}

fn path_display(path: &Option<PathBuf>) -> PathDisplay<'_> {
    PathDisplay(path.as_deref())
}

/// `server "name": ` when the error belongs to one server entry, nothing otherwise.
fn server_prefix(server: &Option<ServerName>) -> String {
    match server {
        Some(server) => format!("server {:?}: ", server.as_str()),
        None => String::new(),
    }
}

/// Everything that can go wrong while turning config text or command-line flags into a [`Config`].
///
/// Each message is one sentence that starts with `path:line:column` (or `<config>:line:column`) and
/// names the server entry when there is one. Where an underlying error exists (URL parser,
/// command-line splitter, server-name rules) it is the [`source`](std::error::Error::source) and is
/// not repeated in the message, so print the whole chain.
///
/// [`Config`]: crate::Config
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is larger than [`MAX_CONFIG_BYTES`](crate::MAX_CONFIG_BYTES).
    #[error(
        "{}: the config is {size} bytes, more than the 4 MiB limit ({limit} bytes)",
        path_display(.path)
    )]
    TooLarge {
        /// The config file.
        path: Option<PathBuf>,
        /// Size of the text in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },

    /// The text is not valid JSON with comments.
    #[error("{location}: syntax error: {message}")]
    Syntax {
        /// Where the parser stopped.
        location: Location,
        /// The parser's description, e.g. `expected comma`. The parser's own error is not kept as
        /// the source because its message repeats the line and column.
        message: String,
    },

    /// The text holds no JSON value at all.
    #[error(
        "{location}: the config is empty; expected a JSON object with \"mcpServers\" or \"servers\""
    )]
    Empty {
        /// The end of the text, where a value was expected.
        location: Location,
    },

    /// The top-level value is not an object.
    #[error("{location}: the config must be a JSON object, found {found}")]
    RootNotAnObject {
        /// The top-level value.
        location: Location,
        /// What was there instead, e.g. `an array`.
        found: &'static str,
    },

    /// None of the known server-list keys is present.
    #[error(
        "{location}: no server list found; expected a top-level \"mcpServers\" object (Claude Desktop, Cursor, Windsurf, Cline, Claude Code), \"servers\" (VS Code mcp.json) or \"mcp\": {{ \"servers\": ... }} (VS Code settings.json)"
    )]
    MissingServers {
        /// The top-level object.
        location: Location,
    },

    /// More than one server-list key is present, so it is unclear which list is meant.
    #[error("{location}: both {first:?} and {second:?} are present; keep only one server list")]
    AmbiguousServers {
        /// The second key.
        location: Location,
        /// The key that came first, e.g. `mcpServers`.
        first: &'static str,
        /// The key that came second, e.g. `servers`.
        second: &'static str,
    },

    /// A key of the server list is not a valid [`ServerName`].
    #[error("{location}: invalid key in {section:?}")]
    InvalidServerName {
        /// The key.
        location: Location,
        /// The server list, e.g. `mcpServers` or `mcp.servers`.
        section: &'static str,
        /// What is wrong with the name.
        #[source]
        source: InvalidServerName,
    },

    /// The same server name appears twice in the server list.
    #[error(
        "{location}: server {:?} is defined twice (first at line {first_line}, column {first_column})",
        .server.as_str()
    )]
    ServerDefinedTwice {
        /// The second definition's key.
        location: Location,
        /// The repeated name.
        server: ServerName,
        /// Line of the first definition.
        first_line: usize,
        /// Column of the first definition.
        first_column: usize,
    },

    /// A field appears twice in the same object.
    #[error(
        "{location}: {}field {field:?} appears twice (first at line {first_line}, column {first_column})",
        server_prefix(.server)
    )]
    FieldDefinedTwice {
        /// The second occurrence's key.
        location: Location,
        /// The entry, unless the field is at the top level.
        server: Option<ServerName>,
        /// The field, as a path such as `env.API_KEY`.
        field: String,
        /// Line of the first occurrence.
        first_line: usize,
        /// Column of the first occurrence.
        first_column: usize,
    },

    /// A server entry is not an object.
    #[error("{location}: server {:?} must be an object, found {found}", .server.as_str())]
    EntryNotAnObject {
        /// The entry's value.
        location: Location,
        /// The entry.
        server: ServerName,
        /// What was there instead.
        found: &'static str,
    },

    /// A field holds the wrong kind of JSON value.
    #[error(
        "{location}: {}field {field:?} must be {expected}, found {found}",
        server_prefix(.server)
    )]
    WrongType {
        /// The offending value.
        location: Location,
        /// The entry, unless the field is at the top level.
        server: Option<ServerName>,
        /// The field, as a path such as `args[1]` or `env.API_KEY`.
        field: String,
        /// What is accepted, e.g. `an array of strings`.
        expected: &'static str,
        /// What was there instead, e.g. `a string`.
        found: &'static str,
    },

    /// A string field that must say something is empty.
    #[error("{location}: server {:?}: field {field:?} is empty", .server.as_str())]
    EmptyField {
        /// The empty value.
        location: Location,
        /// The entry.
        server: ServerName,
        /// The field.
        field: String,
    },

    /// An entry has both `command` and `url`.
    #[error(
        "{location}: server {:?}: has both \"command\" and \"url\"; a server is either a local command or a remote URL",
        .server.as_str()
    )]
    CommandAndUrl {
        /// The entry's key.
        location: Location,
        /// The entry.
        server: ServerName,
    },

    /// An entry has neither `command` nor `url`.
    #[error(
        "{location}: server {:?}: has neither \"command\" nor \"url\"; add \"command\" to run a local server or \"url\" to connect to a remote one",
        .server.as_str()
    )]
    NoCommandOrUrl {
        /// The entry's key.
        location: Location,
        /// The entry.
        server: ServerName,
    },

    /// Two fields that mean the same thing (`type` and `transport`, `url` and `serverUrl`) are both
    /// set, to different values.
    #[error(
        "{location}: server {:?}: {first:?} and {second:?} are both set, to different values; keep one",
        .server.as_str()
    )]
    ConflictingFields {
        /// The second field's key.
        location: Location,
        /// The entry.
        server: ServerName,
        /// The field that came first.
        first: &'static str,
        /// The field that came second.
        second: &'static str,
    },

    /// `type` (or `transport`) names no known transport.
    #[error(
        "{location}: server {:?}: {field:?} is {value:?}, which is not a known transport; expected one of stdio, http, streamable-http, streamableHttp, sse, ws, websocket",
        .server.as_str()
    )]
    UnknownTransport {
        /// The value.
        location: Location,
        /// The entry.
        server: ServerName,
        /// `type` or `transport`.
        field: &'static str,
        /// The unrecognised value.
        value: String,
    },

    /// `type` says one kind of server but the entry describes the other, e.g. `"type": "http"` with
    /// a `command`.
    #[error(
        "{location}: server {:?}: {field:?} is {declared:?}, which needs {:?}, but the entry has {has:?}",
        .server.as_str(),
        other_kind(.has)
    )]
    TransportMismatch {
        /// The `type` value.
        location: Location,
        /// The entry.
        server: ServerName,
        /// `type` or `transport`.
        field: &'static str,
        /// The declared transport as written, e.g. `http`.
        declared: &'static str,
        /// What the entry has instead of what the transport needs: `command` or `url`.
        has: &'static str,
    },

    /// A field that only makes sense for the other kind of server, e.g. `headers` with a `command`.
    #[error(
        "{location}: server {:?}: field {field:?} only applies to {applies_to} servers, but this one has {has:?}",
        .server.as_str()
    )]
    FieldNotForTransport {
        /// The field's key.
        location: Location,
        /// The entry.
        server: ServerName,
        /// The field.
        field: &'static str,
        /// `local command` or `remote URL`.
        applies_to: &'static str,
        /// `command` or `url`.
        has: &'static str,
    },

    /// VS Code's `envFile`, which this crate cannot honour because it does no file I/O.
    #[error(
        "{location}: server {:?}: \"envFile\" is not supported yet; copy the variables into \"env\" (\"${{env:NAME}}\" passes one through from your environment)",
        .server.as_str()
    )]
    EnvFileNotSupported {
        /// The `envFile` key.
        location: Location,
        /// The entry.
        server: ServerName,
    },

    /// A key inside the entry's `"switchboard"` object that Switchboard does not know.
    #[error(
        "{location}: server {:?}: unknown setting {field:?}; expected one of: {}",
        .server.as_str(),
        expected.join(", ")
    )]
    UnknownSetting {
        /// The key.
        location: Location,
        /// The entry.
        server: ServerName,
        /// The key's path, e.g. `switchboard.retry.maxAttemps`.
        field: String,
        /// The keys accepted at that place.
        expected: &'static [&'static str],
    },

    /// A resilience setting with a value out of its range.
    #[error("{location}: server {:?}: setting {field:?} {reason}", .server.as_str())]
    InvalidSetting {
        /// The value.
        location: Location,
        /// The entry.
        server: ServerName,
        /// The setting's path, e.g. `switchboard.rateLimit.requestsPerSecond`.
        field: String,
        /// What is wrong, as a clause such as `must be at least 1`.
        reason: &'static str,
    },

    /// The `url` does not parse.
    #[error("{location}: server {:?}: field {field:?} is not a valid URL", .server.as_str())]
    InvalidUrl {
        /// The URL value.
        location: Location,
        /// The entry.
        server: ServerName,
        /// `url` or `serverUrl`.
        field: &'static str,
        /// What the URL parser objected to.
        #[source]
        source: url::ParseError,
    },

    /// The URL's scheme does not fit the transport.
    #[error(
        "{location}: server {:?}: URL scheme {scheme:?} is not supported here; expected {expected}",
        .server.as_str()
    )]
    UnsupportedScheme {
        /// The URL value.
        location: Location,
        /// The entry.
        server: ServerName,
        /// The scheme found.
        scheme: String,
        /// The schemes accepted, e.g. `http or https`.
        expected: &'static str,
    },

    /// A header name or value that no HTTP client would send.
    #[error(
        "{location}: server {:?}: header {header:?} is invalid: {reason}",
        .server.as_str()
    )]
    InvalidHeader {
        /// The header's key or value.
        location: Location,
        /// The entry.
        server: ServerName,
        /// The header name.
        header: String,
        /// What is wrong, as a clause.
        reason: &'static str,
    },

    /// An `env` key that cannot name an environment variable.
    #[error(
        "{location}: server {:?}: environment variable name {name:?} is invalid: {reason}",
        .server.as_str()
    )]
    InvalidEnvName {
        /// The key.
        location: Location,
        /// The entry.
        server: ServerName,
        /// The key as written.
        name: String,
        /// What is wrong, as a clause.
        reason: &'static str,
    },

    /// A `${VAR}` or `${env:VAR}` reference to a variable that the environment does not have.
    #[error(
        "{location}: server {:?}: environment variable {variable} is not set (used in {field})",
        .server.as_str()
    )]
    UnsetVariable {
        /// The `$` of the reference.
        location: Location,
        /// The entry.
        server: ServerName,
        /// The variable's name.
        variable: String,
        /// Where it was used, e.g. `headers.Authorization`.
        field: String,
    },

    /// A VS Code variable such as `${input:token}` or `${workspaceFolder}`.
    #[error(
        "{location}: server {:?}: {reference:?} in {field} is a VS Code variable, which is not supported; use \"${{env:NAME}}\" to read an environment variable instead",
        .server.as_str()
    )]
    UnsupportedVariable {
        /// The `$` of the reference.
        location: Location,
        /// The entry.
        server: ServerName,
        /// The whole reference, e.g. `${input:token}`.
        reference: String,
        /// Where it was used.
        field: String,
    },

    /// A `${` that does not form a variable reference.
    #[error(
        "{location}: server {:?}: malformed variable reference in {field}: {reason}",
        .server.as_str()
    )]
    MalformedVariable {
        /// The `$` of the reference.
        location: Location,
        /// The entry.
        server: ServerName,
        /// Where it was used.
        field: String,
        /// What is wrong, as a clause.
        reason: &'static str,
    },

    /// An ad-hoc server's name is already in use.
    #[error(
        "{}: server {:?} from the command line is already defined; give it another name",
        path_display(.path),
        .server.as_str()
    )]
    DuplicateServer {
        /// The name in use.
        server: ServerName,
        /// The config file the other server may come from.
        path: Option<PathBuf>,
    },

    /// `--stdio` was given an empty command line.
    #[error("--stdio: the command line is empty")]
    AdhocCommandEmpty,

    /// `--stdio` was given a command line that does not split into words.
    #[error("--stdio: the command line cannot be split into words")]
    AdhocCommandSyntax {
        /// What the splitter objected to, e.g. a missing closing quote.
        #[source]
        source: shell_words::ParseError,
    },

    /// `--url` was given something that does not parse as a URL.
    #[error("--url: not a valid URL")]
    AdhocInvalidUrl {
        /// What the URL parser objected to.
        #[source]
        source: url::ParseError,
    },

    /// `--url` was given a URL with an unsupported scheme.
    #[error("--url: URL scheme {scheme:?} is not supported; expected http, https, ws or wss")]
    AdhocUnsupportedScheme {
        /// The scheme found.
        scheme: String,
    },

    /// A `--header` is not of the form `Name: value`.
    #[error("--header #{position}{}: {reason}", header_name_suffix(.name))]
    AdhocInvalidHeader {
        /// 1-based position among the `--header` flags.
        position: usize,
        /// The header name, when one could be read.
        name: Option<String>,
        /// What is wrong, as a clause.
        reason: &'static str,
    },
}

/// `url` for a server that has a `command`, and the other way round.
fn other_kind(has: &str) -> &'static str {
    if has == "command" { "url" } else { "command" }
}

/// ` ("Name")` after a header's position, when the name is known. Values are never shown because they
/// are usually credentials.
fn header_name_suffix(name: &Option<String>) -> String {
    match name {
        Some(name) => format!(" ({name:?})"),
        None => String::new(),
    }
}

impl ConfigError {
    /// Where in the config file the problem is, for errors that come from a file.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Self::Syntax { location, .. }
            | Self::Empty { location }
            | Self::RootNotAnObject { location, .. }
            | Self::MissingServers { location }
            | Self::AmbiguousServers { location, .. }
            | Self::InvalidServerName { location, .. }
            | Self::ServerDefinedTwice { location, .. }
            | Self::FieldDefinedTwice { location, .. }
            | Self::EntryNotAnObject { location, .. }
            | Self::WrongType { location, .. }
            | Self::EmptyField { location, .. }
            | Self::CommandAndUrl { location, .. }
            | Self::NoCommandOrUrl { location, .. }
            | Self::ConflictingFields { location, .. }
            | Self::UnknownTransport { location, .. }
            | Self::TransportMismatch { location, .. }
            | Self::FieldNotForTransport { location, .. }
            | Self::EnvFileNotSupported { location, .. }
            | Self::InvalidUrl { location, .. }
            | Self::UnknownSetting { location, .. }
            | Self::InvalidSetting { location, .. }
            | Self::UnsupportedScheme { location, .. }
            | Self::InvalidHeader { location, .. }
            | Self::InvalidEnvName { location, .. }
            | Self::UnsetVariable { location, .. }
            | Self::UnsupportedVariable { location, .. }
            | Self::MalformedVariable { location, .. } => Some(location),
            Self::TooLarge { .. }
            | Self::DuplicateServer { .. }
            | Self::AdhocCommandEmpty
            | Self::AdhocCommandSyntax { .. }
            | Self::AdhocInvalidUrl { .. }
            | Self::AdhocUnsupportedScheme { .. }
            | Self::AdhocInvalidHeader { .. } => None,
        }
    }

    /// The server entry the problem belongs to, when there is one.
    pub fn server(&self) -> Option<&ServerName> {
        match self {
            Self::FieldDefinedTwice { server, .. } | Self::WrongType { server, .. } => {
                server.as_ref()
            }
            Self::ServerDefinedTwice { server, .. }
            | Self::EntryNotAnObject { server, .. }
            | Self::EmptyField { server, .. }
            | Self::CommandAndUrl { server, .. }
            | Self::NoCommandOrUrl { server, .. }
            | Self::ConflictingFields { server, .. }
            | Self::UnknownTransport { server, .. }
            | Self::TransportMismatch { server, .. }
            | Self::FieldNotForTransport { server, .. }
            | Self::EnvFileNotSupported { server, .. }
            | Self::InvalidUrl { server, .. }
            | Self::UnknownSetting { server, .. }
            | Self::InvalidSetting { server, .. }
            | Self::UnsupportedScheme { server, .. }
            | Self::InvalidHeader { server, .. }
            | Self::InvalidEnvName { server, .. }
            | Self::UnsetVariable { server, .. }
            | Self::UnsupportedVariable { server, .. }
            | Self::MalformedVariable { server, .. }
            | Self::DuplicateServer { server, .. } => Some(server),
            Self::TooLarge { .. }
            | Self::Syntax { .. }
            | Self::Empty { .. }
            | Self::RootNotAnObject { .. }
            | Self::MissingServers { .. }
            | Self::AmbiguousServers { .. }
            | Self::InvalidServerName { .. }
            | Self::AdhocCommandEmpty
            | Self::AdhocCommandSyntax { .. }
            | Self::AdhocInvalidUrl { .. }
            | Self::AdhocUnsupportedScheme { .. }
            | Self::AdhocInvalidHeader { .. } => None,
        }
    }
}
