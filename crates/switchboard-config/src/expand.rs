//! `${VAR}` expansion inside config strings.
//!
//! Offsets in the errors are byte offsets into the decoded string; the parser module maps them back
//! to the file.

/// Names that VS Code resolves itself. Without this list `${workspaceFolder}` would be looked up as
/// an environment variable and fail with a misleading "not set" message.
const VSCODE_PREDEFINED: &[&str] = &[
    "workspaceFolder",
    "workspaceFolderBasename",
    "workspaceRoot",
    "file",
    "fileWorkspaceFolder",
    "relativeFile",
    "relativeFileDirname",
    "fileBasename",
    "fileBasenameNoExtension",
    "fileExtname",
    "fileDirname",
    "fileDirnameBasename",
    "cwd",
    "lineNumber",
    "columnNumber",
    "selectedText",
    "execPath",
    "defaultBuildTask",
    "pathSeparator",
    "userHome",
];

/// What to do with a reference to a variable that is not set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UnsetVariables {
    /// Fail, naming the variable.
    Fail,
    /// Leave `${NAME}` in the text. Used for disabled servers, which users often switch off precisely
    /// because their credentials are not set up.
    KeepReference,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ExpandError {
    Unset { variable: String, offset: usize },
    Unsupported { reference: String, offset: usize },
    Malformed { reason: &'static str, offset: usize },
}

/// Expands `${NAME}`, `${env:NAME}` and `${NAME:-default}` with `env`, and `$$` to `$`. A `$` that
/// starts neither form is kept as it is.
pub(crate) fn expand(
    value: &str,
    env: &dyn Fn(&str) -> Option<String>,
    unset: UnsetVariables,
) -> Result<String, ExpandError> {
    let mut expanded = String::with_capacity(value.len());
    let mut position = 0;
    while let Some(found) = value[position..].find('$') {
        let dollar = position + found;
        expanded.push_str(&value[position..dollar]);
        let after = &value[dollar + 1..];
        if after.starts_with('$') {
            expanded.push('$');
            position = dollar + 2;
            continue;
        }
        if !after.starts_with('{') {
            expanded.push('$');
            position = dollar + 1;
            continue;
        }
        let body_start = dollar + 2;
        let Some(body_len) = value[body_start..].find('}') else {
            return Err(ExpandError::Malformed {
                reason: "\"${\" has no closing \"}\" (write \"$${\" for a literal \"${\")",
                offset: dollar,
            });
        };
        let body = &value[body_start..body_start + body_len];
        let reference = &value[dollar..body_start + body_len + 1];
        position = body_start + body_len + 1;

        let (name, default) = if let Some(name) = body.strip_prefix("env:") {
            (name, None)
        } else if let Some((name, default)) = body.split_once(":-")
            && is_variable_name(name)
        {
            (name, Some(default))
        } else if body.contains(':') || VSCODE_PREDEFINED.contains(&body) {
            return Err(ExpandError::Unsupported {
                reference: reference.to_owned(),
                offset: dollar,
            });
        } else {
            (body, None)
        };
        if name.is_empty() {
            return Err(ExpandError::Malformed {
                reason: "the reference names no variable",
                offset: dollar,
            });
        }
        if !is_variable_name(name) {
            return Err(ExpandError::Malformed {
                reason: "a variable name may only contain ASCII letters, digits and '_', and must not start with a digit",
                offset: dollar,
            });
        }

        match (env(name), default) {
            // `:-` follows the shell: an empty value counts as unset.
            (Some(found), Some(default)) if found.is_empty() => expanded.push_str(default),
            (Some(found), _) => expanded.push_str(&found),
            (None, Some(default)) => expanded.push_str(default),
            (None, None) => match unset {
                UnsetVariables::Fail => {
                    return Err(ExpandError::Unset {
                        variable: name.to_owned(),
                        offset: dollar,
                    });
                }
                UnsetVariables::KeepReference => expanded.push_str(reference),
            },
        }
    }
    expanded.push_str(&value[position..]);
    Ok(expanded)
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
