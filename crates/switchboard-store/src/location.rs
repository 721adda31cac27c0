//! Where a database is, from the text of `--db` or `DATABASE_URL`.

use std::{fmt, path::PathBuf};

use crate::{Backend, StoreError};

/// A database location: a SQLite file or a PostgreSQL URL.
///
/// `Display` never shows a password, so a location can go into messages and logs.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// An absolute path to a SQLite file.
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL, as given.
    Postgres(String),
}

impl Location {
    /// Read `--db` text: a `postgres://`/`postgresql://` URL is PostgreSQL; a `sqlite:` or
    /// `sqlite://` prefix is dropped; any other URL scheme is refused; anything else is a SQLite
    /// path, made absolute against the current directory.
    pub fn parse(text: &str) -> Result<Location, StoreError> {
        let trimmed = text.trim();
        let invalid = |reason: &str| StoreError::InvalidLocation {
            location: redact(trimmed),
            reason: reason.to_owned(),
        };
        if trimmed.is_empty() {
            return Err(invalid(
                "it is empty; give a file path or a postgres:// URL",
            ));
        }
        if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
            return Ok(Location::Postgres(trimmed.to_owned()));
        }
        let path = if let Some(rest) = trimmed
            .strip_prefix("sqlite://")
            .or_else(|| trimmed.strip_prefix("sqlite:"))
        {
            rest
        } else if let Some((scheme, _)) = trimmed.split_once("://")
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(invalid(&format!(
                "{scheme}:// databases are not supported; use a postgres:// URL or a SQLite file path"
            )));
        } else {
            trimmed
        };
        if path.is_empty() || path == ":memory:" {
            return Err(invalid("give the path of a SQLite file"));
        }
        let path = std::path::absolute(path).map_err(|error| invalid(&error.to_string()))?;
        Ok(Location::Sqlite(path))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Location::Sqlite(_) => Backend::Sqlite,
            Location::Postgres(_) => Backend::Postgres,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Location::Postgres(url) => f.debug_tuple("Postgres").field(&redact(url)).finish(),
        }
    }
}

/// The URL with any password replaced by `***` (and a `password=` query parameter dropped).
fn redact(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        return text.to_owned();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query_pairs().any(|(key, _)| key == "password") {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(key, _)| key != "password")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths_are_told_apart() {
        assert!(matches!(
            Location::parse("postgres://u@h/db"),
            Ok(Location::Postgres(_))
        ));
        assert!(matches!(
            Location::parse("postgresql://u@h/db"),
            Ok(Location::Postgres(_))
        ));
        assert_eq!(
            Location::parse("/tmp/a.sqlite3").ok(),
            Some(Location::Sqlite(PathBuf::from("/tmp/a.sqlite3")))
        );
        assert_eq!(
            Location::parse("sqlite:///tmp/a.db").ok(),
            Some(Location::Sqlite(PathBuf::from("/tmp/a.db")))
        );
        let relative = Location::parse("data/x.db").ok();
        assert!(
            matches!(&relative, Some(Location::Sqlite(p)) if p.is_absolute() && p.ends_with("data/x.db"))
        );
        let mysql = Location::parse("mysql://root:pw@h/db")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            mysql.as_deref(),
            Some(
                "\"mysql://root:***@h/db\" is not a database location: mysql:// databases are not supported; use a postgres:// URL or a SQLite file path"
            )
        );
        assert!(Location::parse("  ").is_err());
    }

    #[test]
    fn passwords_are_never_shown() {
        let location =
            Location::parse("postgres://me:secret@db.example:5432/app?password=x&sslmode=require")
                .ok();
        let shown = location
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            !shown.contains("secret") && !shown.contains("=x"),
            "{shown}"
        );
        assert_eq!(
            shown,
            "postgres://me:***@db.example:5432/app?sslmode=require"
        );
        assert!(!format!("{location:?}").contains("secret"));
    }
}
