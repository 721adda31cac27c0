//! Config text to [`Config`], walking the JSONC syntax tree so every error can point at the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use jsonc_parser::ast::{Object, ObjectProp, ObjectPropName, StringLit, Value};
use jsonc_parser::common::Ranged;
use jsonc_parser::errors::ParseError;
use jsonc_parser::{CollectOptions, ParseOptions, parse_to_ast};
use url::Url;

use crate::error::{ConfigError, Location};
use crate::expand::{ExpandError, UnsetVariables, expand};
use crate::model::{Config, Secret, ServerEntry, ServerName, Transport};

mod resilience;

/// Largest config text [`parse_config`] accepts, in bytes (4 MiB).
///
/// Real server lists are a few kilobytes; the bound keeps a wrong path (a log file, a database) from
/// costing memory and time before it is rejected.
pub const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;

/// Entry fields this crate interprets. Every other field is ignored because real configs carry
/// client-specific extras (`alwaysAllow`, `autoApprove`, `timeout`, `description`, ...).
const KNOWN_FIELDS: &[&str] = &[
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "serverUrl",
    "headers",
    "type",
    "transport",
    "disabled",
    "envFile",
    crate::resilience::RESILIENCE_KEY,
];

/// Parses an `mcpServers` config as written for Claude Desktop, Cursor, Windsurf, Cline, Claude Code
/// or VS Code.
///
/// `origin` is only used in error messages and stored in [`Config::origin`]; `env` resolves
/// `${VAR}` references. See the [crate documentation](crate) for the accepted shapes.
pub fn parse_config(
    text: &str,
    origin: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            path: origin.map(Path::to_path_buf),
            size: text.len(),
            limit: MAX_CONFIG_BYTES,
        });
    }
    // Windows editors may save a byte-order mark. Editors do not count it as a column, so positions
    // are computed on the text after it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let document = Document {
        text,
        path: origin,
        env,
    };
    let parsed = parse_to_ast(text, &CollectOptions::default(), &parse_options())
        .map_err(|error| document.syntax_error(&error))?;
    let Some(root) = parsed.value else {
        return Err(ConfigError::Empty {
            location: document.location(text.len()),
        });
    };
    let Value::Object(root) = &root else {
        return Err(ConfigError::RootNotAnObject {
            location: document.location(root.start()),
            found: describe(&root),
        });
    };
    let (section, servers) = document.find_servers(root)?;
    let Value::Object(servers) = &servers.value else {
        return Err(document.wrong_type(&servers.value, None, section, "an object of servers"));
    };
    Ok(Config {
        servers: document.parse_servers(section, servers)?,
        origin: origin.map(Path::to_path_buf),
    })
}

/// What VS Code accepts (JSON plus comments and trailing commas) and nothing looser, so a file that
/// works here also works in the editor the user copied it from.
fn parse_options() -> ParseOptions {
    ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

/// The transport a `type` (or `transport`) field asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DeclaredTransport {
    Stdio,
    StreamableHttp,
    Sse,
    WebSocket,
}

/// Every accepted spelling of `type`, as written.
const TRANSPORT_NAMES: &[(&str, DeclaredTransport)] = &[
    ("stdio", DeclaredTransport::Stdio),
    ("http", DeclaredTransport::StreamableHttp),
    ("streamable-http", DeclaredTransport::StreamableHttp),
    ("streamableHttp", DeclaredTransport::StreamableHttp),
    ("sse", DeclaredTransport::Sse),
    ("ws", DeclaredTransport::WebSocket),
    ("websocket", DeclaredTransport::WebSocket),
];

/// A declared transport and where it was declared.
struct Declaration<'p, 'a> {
    transport: DeclaredTransport,
    /// The spelling used, e.g. `streamableHttp`.
    name: &'static str,
    field: &'static str,
    value: &'p StringLit<'a>,
}

/// The known fields of one entry, by name; JSON `null` counts as absent.
struct Fields<'p, 'a> {
    by_name: HashMap<&'static str, &'p ObjectProp<'a>>,
}

impl<'p, 'a> Fields<'p, 'a> {
    fn get(&self, name: &str) -> Option<&'p ObjectProp<'a>> {
        self.by_name.get(name).copied()
    }
}

/// The text being parsed and what errors need to describe it.
struct Document<'t> {
    text: &'t str,
    path: Option<&'t Path>,
    env: &'t dyn Fn(&str) -> Option<String>,
}

impl Document<'_> {
    /// 1-based line and column of a byte offset. Like the parser, a lone `\r` ends a line too.
    fn location(&self, offset: usize) -> Location {
        let before = self.text.get(..offset).unwrap_or(self.text);
        let mut line = 1;
        let mut column = 1;
        let mut chars = before.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\n' => {
                    line += 1;
                    column = 1;
                }
                // In `\r\n` the `\n` ends the line.
                '\r' if chars.peek() == Some(&'\n') => {}
                '\r' => {
                    line += 1;
                    column = 1;
                }
                _ => column += 1,
            }
        }
        Location {
            path: self.path.map(Path::to_path_buf),
            line,
            column,
        }
    }

    fn syntax_error(&self, error: &ParseError) -> ConfigError {
        // The parser capitalises its messages; they follow a colon here, mid-sentence.
        let message = error.kind().to_string();
        let mut chars = message.chars();
        let message = match chars.next() {
            Some(first) => first.to_lowercase().chain(chars).collect(),
            None => message,
        };
        ConfigError::Syntax {
            location: Location {
                path: self.path.map(Path::to_path_buf),
                line: error.line_display(),
                column: error.column_display(),
            },
            message,
        }
    }

    fn wrong_type(
        &self,
        value: &Value<'_>,
        server: Option<&ServerName>,
        field: &str,
        expected: &'static str,
    ) -> ConfigError {
        ConfigError::WrongType {
            location: self.location(value.start()),
            server: server.cloned(),
            field: field.to_owned(),
            expected,
            found: describe(value),
        }
    }

    /// Looks up `key` in `object`, refusing a repeated key: JSON parsers disagree on which copy wins,
    /// so the user's intent is unknown.
    fn unique_prop<'p, 'a>(
        &self,
        object: &'p Object<'a>,
        key: &str,
        field: &str,
        server: Option<&ServerName>,
    ) -> Result<Option<&'p ObjectProp<'a>>, ConfigError> {
        let mut matches = object.properties.iter().filter(|prop| key_of(prop) == key);
        let first = matches.next();
        if let (Some(first), Some(second)) = (first, matches.next()) {
            return Err(self.field_defined_twice(first, second, field, server));
        }
        Ok(first)
    }

    fn field_defined_twice(
        &self,
        first: &ObjectProp<'_>,
        second: &ObjectProp<'_>,
        field: &str,
        server: Option<&ServerName>,
    ) -> ConfigError {
        let first = self.location(first.name.start());
        ConfigError::FieldDefinedTwice {
            location: self.location(second.name.start()),
            server: server.cloned(),
            field: field.to_owned(),
            first_line: first.line,
            first_column: first.column,
        }
    }

    /// Finds the server list among the shapes the supported clients use.
    fn find_servers<'p, 'a>(
        &self,
        root: &'p Object<'a>,
    ) -> Result<(&'static str, &'p ObjectProp<'a>), ConfigError> {
        let mut candidates = Vec::new();
        for key in ["mcpServers", "servers"] {
            if let Some(prop) = self.unique_prop(root, key, key, None)? {
                candidates.push((key, prop));
            }
        }
        // VS Code's settings.json nests the list as `"mcp": { "servers": ... }`. Other tools use an
        // `mcp` key for other things, so anything else under it is ignored.
        if let Some(mcp) = self.unique_prop(root, "mcp", "mcp", None)?
            && let Value::Object(mcp) = &mcp.value
            && let Some(servers) = self.unique_prop(mcp, "servers", "mcp.servers", None)?
        {
            candidates.push(("mcp.servers", servers));
        }
        candidates.sort_by_key(|(_, prop)| prop.start());
        match candidates.as_slice() {
            [] => Err(ConfigError::MissingServers {
                location: self.location(root.start()),
            }),
            [only] => Ok(*only),
            [(first, _), (second, prop), ..] => Err(ConfigError::AmbiguousServers {
                location: self.location(prop.name.start()),
                first,
                second,
            }),
        }
    }

    fn parse_servers(
        &self,
        section: &'static str,
        servers: &Object<'_>,
    ) -> Result<IndexMap<ServerName, ServerEntry>, ConfigError> {
        let mut entries = IndexMap::with_capacity(servers.properties.len());
        let mut key_offsets: HashMap<ServerName, usize> = HashMap::new();
        for prop in &servers.properties {
            let key_offset = prop.name.start();
            let name =
                ServerName::new(key_of(prop)).map_err(|source| ConfigError::InvalidServerName {
                    location: self.location(key_offset),
                    section,
                    source,
                })?;
            if let Some(&first_offset) = key_offsets.get(&name) {
                let first = self.location(first_offset);
                return Err(ConfigError::ServerDefinedTwice {
                    location: self.location(key_offset),
                    server: name,
                    first_line: first.line,
                    first_column: first.column,
                });
            }
            let entry = self.parse_entry(&name, key_offset, &prop.value)?;
            key_offsets.insert(name.clone(), key_offset);
            entries.insert(name, entry);
        }
        Ok(entries)
    }

    fn parse_entry(
        &self,
        server: &ServerName,
        key_offset: usize,
        value: &Value<'_>,
    ) -> Result<ServerEntry, ConfigError> {
        let Value::Object(object) = value else {
            return Err(ConfigError::EntryNotAnObject {
                location: self.location(value.start()),
                server: server.clone(),
                found: describe(value),
            });
        };
        let fields = self.known_fields(server, object)?;

        let disabled = match fields.get("disabled").map(|prop| &prop.value) {
            None => false,
            Some(Value::BooleanLit(flag)) => flag.value,
            Some(other) => {
                return Err(self.wrong_type(other, Some(server), "disabled", "a boolean"));
            }
        };
        let unset = if disabled {
            UnsetVariables::KeepReference
        } else {
            UnsetVariables::Fail
        };
        if let Some(env_file) = fields.get("envFile") {
            return Err(ConfigError::EnvFileNotSupported {
                location: self.location(env_file.name.start()),
                server: server.clone(),
            });
        }
        let declared = self.declared_transport(server, &fields)?;
        let url = self.pick_synonym(server, &fields, "url", "serverUrl")?;

        let transport = match (fields.get("command"), url) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::CommandAndUrl {
                    location: self.location(key_offset),
                    server: server.clone(),
                });
            }
            (None, None) => {
                return Err(ConfigError::NoCommandOrUrl {
                    location: self.location(key_offset),
                    server: server.clone(),
                });
            }
            (Some(command), None) => {
                if let Some(declared) = &declared
                    && declared.transport != DeclaredTransport::Stdio
                {
                    return Err(self.mismatch(server, declared, "command"));
                }
                self.stdio_transport(server, command, &fields, unset)?
            }
            (None, Some((url_field, url))) => {
                if let Some(declared) = &declared
                    && declared.transport == DeclaredTransport::Stdio
                {
                    return Err(self.mismatch(server, declared, "url"));
                }
                let declared = declared.map(|declared| declared.transport);
                self.remote_transport(server, url_field, url, declared, &fields, unset)?
            }
        };
        let resilience = self.parse_resilience(server, object, &transport)?;
        Ok(ServerEntry {
            name: server.clone(),
            transport,
            disabled,
            resilience,
        })
    }

    fn known_fields<'p, 'a>(
        &self,
        server: &ServerName,
        object: &'p Object<'a>,
    ) -> Result<Fields<'p, 'a>, ConfigError> {
        let mut by_name = HashMap::new();
        let mut seen: HashMap<&'static str, &'p ObjectProp<'a>> = HashMap::new();
        for prop in &object.properties {
            let Some(&name) = KNOWN_FIELDS.iter().find(|&&known| known == key_of(prop)) else {
                continue;
            };
            if let Some(first) = seen.insert(name, prop) {
                return Err(self.field_defined_twice(first, prop, name, Some(server)));
            }
            // Generated configs sometimes write `"env": null`; that says "no env", not "wrong type".
            if !matches!(prop.value, Value::NullKeyword(_)) {
                by_name.insert(name, prop);
            }
        }
        Ok(Fields { by_name })
    }

    /// Reads `type` and `transport`, which some tools use as synonyms; they must agree if both are set.
    fn declared_transport<'p, 'a>(
        &self,
        server: &ServerName,
        fields: &Fields<'p, 'a>,
    ) -> Result<Option<Declaration<'p, 'a>>, ConfigError> {
        let mut declarations: Vec<Declaration<'p, 'a>> = Vec::new();
        for field in ["type", "transport"] {
            let Some(prop) = fields.get(field) else {
                continue;
            };
            let Value::StringLit(value) = &prop.value else {
                return Err(self.wrong_type(&prop.value, Some(server), field, "a string"));
            };
            let known = TRANSPORT_NAMES
                .iter()
                .find(|(name, _)| *name == value.value);
            let Some(&(name, transport)) = known else {
                return Err(ConfigError::UnknownTransport {
                    location: self.location(value.start()),
                    server: server.clone(),
                    field,
                    value: value.value.to_string(),
                });
            };
            declarations.push(Declaration {
                transport,
                name,
                field,
                value,
            });
        }
        declarations.sort_by_key(|declaration| declaration.value.start());
        let mut declarations = declarations.into_iter();
        let first = declarations.next();
        if let (Some(first), Some(second)) = (&first, declarations.next())
            && first.transport != second.transport
        {
            return Err(ConfigError::ConflictingFields {
                location: self.location(second.value.start()),
                server: server.clone(),
                first: first.field,
                second: second.field,
            });
        }
        Ok(first)
    }

    /// Reads one of two synonymous string fields (`url` and Windsurf's `serverUrl`); if both are set
    /// they must be equal.
    fn pick_synonym<'p, 'a>(
        &self,
        server: &ServerName,
        fields: &Fields<'p, 'a>,
        name: &'static str,
        synonym: &'static str,
    ) -> Result<Option<(&'static str, &'p ObjectProp<'a>)>, ConfigError> {
        let mut present: Vec<(&'static str, &'p ObjectProp<'a>)> = [name, synonym]
            .into_iter()
            .filter_map(|field| fields.get(field).map(|prop| (field, prop)))
            .collect();
        present.sort_by_key(|(_, prop)| prop.start());
        match present.as_slice() {
            [(first, first_prop), (second, second_prop), ..]
                if !same_value(self.text, &first_prop.value, &second_prop.value) =>
            {
                Err(ConfigError::ConflictingFields {
                    location: self.location(second_prop.name.start()),
                    server: server.clone(),
                    first,
                    second,
                })
            }
            _ => Ok(present.first().copied()),
        }
    }

    fn mismatch(
        &self,
        server: &ServerName,
        declared: &Declaration<'_, '_>,
        has: &'static str,
    ) -> ConfigError {
        ConfigError::TransportMismatch {
            location: self.location(declared.value.start()),
            server: server.clone(),
            field: declared.field,
            declared: declared.name,
            has,
        }
    }

    /// Refuses a field that belongs to the other kind of server, unless it is empty: a leftover
    /// `"args": []` changes nothing, but silently dropping real arguments or headers would.
    fn refuse_foreign_fields(
        &self,
        server: &ServerName,
        fields: &Fields<'_, '_>,
        foreign: &[&'static str],
        applies_to: &'static str,
        has: &'static str,
    ) -> Result<(), ConfigError> {
        for &field in foreign {
            let Some(prop) = fields.get(field) else {
                continue;
            };
            let empty = match &prop.value {
                Value::Array(array) => array.elements.is_empty(),
                Value::Object(object) => object.properties.is_empty(),
                Value::StringLit(string) => string.value.is_empty(),
                _ => false,
            };
            if !empty {
                return Err(ConfigError::FieldNotForTransport {
                    location: self.location(prop.name.start()),
                    server: server.clone(),
                    field,
                    applies_to,
                    has,
                });
            }
        }
        Ok(())
    }

    fn stdio_transport(
        &self,
        server: &ServerName,
        command: &ObjectProp<'_>,
        fields: &Fields<'_, '_>,
        unset: UnsetVariables,
    ) -> Result<Transport, ConfigError> {
        self.refuse_foreign_fields(server, fields, &["headers"], "remote URL", "command")?;

        let command = self.non_empty_string(server, "command", &command.value, unset)?;

        let mut args = Vec::new();
        if let Some(prop) = fields.get("args") {
            let Value::Array(array) = &prop.value else {
                return Err(self.wrong_type(
                    &prop.value,
                    Some(server),
                    "args",
                    "an array of strings",
                ));
            };
            for (index, element) in array.elements.iter().enumerate() {
                let field = format!("args[{index}]");
                let Value::StringLit(arg) = element else {
                    return Err(self.wrong_type(element, Some(server), &field, "a string"));
                };
                args.push(self.expand_string(server, &field, arg, unset)?);
            }
        }

        let mut env = IndexMap::new();
        if let Some(prop) = fields.get("env") {
            for (name, value) in self.string_map(server, "env", prop, unset)? {
                if let Some(reason) = env_name_problem(&name) {
                    return Err(ConfigError::InvalidEnvName {
                        location: self.location(value.key_offset),
                        server: server.clone(),
                        name,
                        reason,
                    });
                }
                env.insert(name, Secret::new(value.expanded));
            }
        }

        let cwd = match fields.get("cwd") {
            Some(prop) => Some(PathBuf::from(self.non_empty_string(
                server,
                "cwd",
                &prop.value,
                unset,
            )?)),
            None => None,
        };

        Ok(Transport::Stdio {
            command,
            args,
            env,
            cwd,
        })
    }

    fn remote_transport(
        &self,
        server: &ServerName,
        url_field: &'static str,
        url_prop: &ObjectProp<'_>,
        declared: Option<DeclaredTransport>,
        fields: &Fields<'_, '_>,
        unset: UnsetVariables,
    ) -> Result<Transport, ConfigError> {
        self.refuse_foreign_fields(
            server,
            fields,
            &["args", "env", "cwd"],
            "local command",
            url_field,
        )?;

        let Value::StringLit(url_lit) = &url_prop.value else {
            return Err(self.wrong_type(&url_prop.value, Some(server), url_field, "a string"));
        };
        let expanded = self.expand_string(server, url_field, url_lit, unset)?;
        let url = Url::parse(&expanded).map_err(|source| ConfigError::InvalidUrl {
            location: self.location(url_lit.start()),
            server: server.clone(),
            field: url_field,
            source,
        })?;
        let scheme = url.scheme();
        let is_http = matches!(scheme, "http" | "https");
        let is_ws = matches!(scheme, "ws" | "wss");
        let (kind, scheme_fits, expected) = match declared {
            Some(DeclaredTransport::WebSocket) => {
                (DeclaredTransport::WebSocket, is_ws, "ws or wss")
            }
            Some(kind) => (kind, is_http, "http or https"),
            None if is_ws => (DeclaredTransport::WebSocket, true, ""),
            None => (
                DeclaredTransport::StreamableHttp,
                is_http,
                "http, https, ws or wss",
            ),
        };
        if !scheme_fits {
            return Err(ConfigError::UnsupportedScheme {
                location: self.location(url_lit.start()),
                server: server.clone(),
                scheme: scheme.to_owned(),
                expected,
            });
        }

        let mut headers: IndexMap<String, Secret> = IndexMap::new();
        if let Some(prop) = fields.get("headers") {
            let mut lowercase_offsets: HashMap<String, usize> = HashMap::new();
            for (name, value) in self.string_map(server, "headers", prop, unset)? {
                let problem = header_name_problem(&name)
                    .map(|reason| (reason, value.key_offset))
                    .or_else(|| {
                        header_value_problem(&value.expanded)
                            .map(|reason| (reason, value.value_offset))
                    });
                if let Some((reason, offset)) = problem {
                    return Err(ConfigError::InvalidHeader {
                        location: self.location(offset),
                        server: server.clone(),
                        header: name,
                        reason,
                    });
                }
                // Header names are case-insensitive, so `authorization` and `Authorization` collide
                // even though the JSON keys differ.
                if let Some(&first) = lowercase_offsets.get(&name.to_ascii_lowercase()) {
                    let first = self.location(first);
                    return Err(ConfigError::FieldDefinedTwice {
                        location: self.location(value.key_offset),
                        server: Some(server.clone()),
                        field: format!("headers.{name}"),
                        first_line: first.line,
                        first_column: first.column,
                    });
                }
                lowercase_offsets.insert(name.to_ascii_lowercase(), value.key_offset);
                headers.insert(name, Secret::new(value.expanded));
            }
        }

        Ok(match kind {
            DeclaredTransport::StreamableHttp | DeclaredTransport::Stdio => {
                Transport::StreamableHttp { url, headers }
            }
            DeclaredTransport::Sse => Transport::Sse { url, headers },
            DeclaredTransport::WebSocket => Transport::WebSocket { url, headers },
        })
    }

    /// Reads an object of strings (`env`, `headers`), expanding variables in the values.
    fn string_map(
        &self,
        server: &ServerName,
        field: &str,
        prop: &ObjectProp<'_>,
        unset: UnsetVariables,
    ) -> Result<Vec<(String, MapValue)>, ConfigError> {
        let Value::Object(object) = &prop.value else {
            return Err(self.wrong_type(&prop.value, Some(server), field, "an object of strings"));
        };
        let mut values = Vec::with_capacity(object.properties.len());
        let mut key_offsets: HashMap<&str, usize> = HashMap::new();
        for entry in &object.properties {
            let name = key_of(entry);
            let path = format!("{field}.{name}");
            if let Some(&first) = key_offsets.get(name) {
                let first = self.location(first);
                return Err(ConfigError::FieldDefinedTwice {
                    location: self.location(entry.name.start()),
                    server: Some(server.clone()),
                    field: path,
                    first_line: first.line,
                    first_column: first.column,
                });
            }
            key_offsets.insert(name, entry.name.start());
            let Value::StringLit(value) = &entry.value else {
                return Err(self.wrong_type(&entry.value, Some(server), &path, "a string"));
            };
            values.push((
                name.to_owned(),
                MapValue {
                    expanded: self.expand_string(server, &path, value, unset)?,
                    key_offset: entry.name.start(),
                    value_offset: value.start(),
                },
            ));
        }
        Ok(values)
    }

    fn non_empty_string(
        &self,
        server: &ServerName,
        field: &str,
        value: &Value<'_>,
        unset: UnsetVariables,
    ) -> Result<String, ConfigError> {
        let Value::StringLit(lit) = value else {
            return Err(self.wrong_type(value, Some(server), field, "a string"));
        };
        let expanded = self.expand_string(server, field, lit, unset)?;
        if expanded.trim().is_empty() {
            return Err(ConfigError::EmptyField {
                location: self.location(lit.start()),
                server: server.clone(),
                field: field.to_owned(),
            });
        }
        Ok(expanded)
    }

    fn expand_string(
        &self,
        server: &ServerName,
        field: &str,
        lit: &StringLit<'_>,
        unset: UnsetVariables,
    ) -> Result<String, ConfigError> {
        expand(&lit.value, self.env, unset).map_err(|error| match error {
            ExpandError::Unset { variable, offset } => ConfigError::UnsetVariable {
                location: self.location(offset_in_literal(self.text, lit, offset)),
                server: server.clone(),
                variable,
                field: field.to_owned(),
            },
            ExpandError::Unsupported { reference, offset } => ConfigError::UnsupportedVariable {
                location: self.location(offset_in_literal(self.text, lit, offset)),
                server: server.clone(),
                reference,
                field: field.to_owned(),
            },
            ExpandError::Malformed { reason, offset } => ConfigError::MalformedVariable {
                location: self.location(offset_in_literal(self.text, lit, offset)),
                server: server.clone(),
                field: field.to_owned(),
                reason,
            },
        })
    }
}

/// Whether two values are equal, comparing strings after unescaping (`"a\/b"` is `"a/b"`).
fn same_value(text: &str, left: &Value<'_>, right: &Value<'_>) -> bool {
    match (left, right) {
        (Value::StringLit(left), Value::StringLit(right)) => left.value == right.value,
        _ => left.text(text) == right.text(text),
    }
}

/// One value of an `env` or `headers` object, after expansion.
struct MapValue {
    expanded: String,
    key_offset: usize,
    value_offset: usize,
}

fn key_of<'p>(prop: &'p ObjectProp<'_>) -> &'p str {
    match &prop.name {
        ObjectPropName::String(lit) => &lit.value,
        ObjectPropName::Word(word) => word.value,
    }
}

/// A JSON value's kind, for "found ..." in messages.
fn describe(value: &Value<'_>) -> &'static str {
    match value {
        Value::StringLit(_) => "a string",
        Value::NumberLit(_) => "a number",
        Value::BooleanLit(_) => "a boolean",
        Value::Object(_) => "an object",
        Value::Array(_) => "an array",
        Value::NullKeyword(_) => "null",
    }
}

/// Maps a byte offset in a string literal's decoded value to a byte offset in the file, so that an
/// error can point at the `$` of a variable even when escapes come before it.
fn offset_in_literal(text: &str, lit: &StringLit<'_>, decoded_offset: usize) -> usize {
    let start = lit.start();
    let Some(raw) = text.get(start + 1..lit.end().saturating_sub(1)) else {
        return start;
    };
    let mut raw_offset = 0;
    let mut decoded = 0;
    while decoded < decoded_offset {
        let Some(rest) = raw.get(raw_offset..) else {
            return start;
        };
        let Some(escape) = rest.strip_prefix('\\') else {
            let Some(c) = rest.chars().next() else {
                return start;
            };
            raw_offset += c.len_utf8();
            decoded += c.len_utf8();
            continue;
        };
        let Some(hex) = escape.strip_prefix('u') else {
            // Every other JSON escape is two ASCII bytes for one ASCII byte.
            raw_offset += 2;
            decoded += 1;
            continue;
        };
        let Some(unit) = hex.get(..4).and_then(|h| u32::from_str_radix(h, 16).ok()) else {
            return start;
        };
        if (0xD800..0xDC00).contains(&unit) && hex.get(4..6) == Some("\\u") {
            // A surrogate pair: twelve bytes of escapes for one four-byte character.
            raw_offset += 12;
            decoded += 4;
        } else {
            raw_offset += 6;
            // A lone surrogate decodes to U+FFFD, which is three bytes.
            decoded += char::from_u32(unit).map_or(3, char::len_utf8);
        }
    }
    start + 1 + raw_offset
}

/// Why `name` cannot be an environment variable name, if it cannot.
fn env_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.contains('=') {
        Some("it contains '='")
    } else if name.contains('\0') {
        Some("it contains a NUL character")
    } else {
        None
    }
}

/// Why `name` cannot be an HTTP header name (an RFC 9110 token), if it cannot.
pub(crate) fn header_name_problem(name: &str) -> Option<&'static str> {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() {
        Some("its name is empty")
    } else if !name.chars().all(is_token_char) {
        Some("its name may only contain ASCII letters, digits and !#$%&'*+-.^_`|~")
    } else {
        None
    }
}

/// Why `value` cannot be sent as a header value, if it cannot. Line breaks would let a value smuggle
/// in extra headers, so HTTP clients refuse them and every other control character but tab.
pub(crate) fn header_value_problem(value: &str) -> Option<&'static str> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        Some("its value contains a line break or another control character")
    } else {
        None
    }
}
