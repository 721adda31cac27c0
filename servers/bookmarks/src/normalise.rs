//! What users type, made canonical: URLs (so one page is one bookmark), tags, and the words of a
//! search.
//!
//! # The URL rule
//!
//! 1. Surrounding whitespace is trimmed.
//! 2. The text is parsed as an absolute URL by the `url` crate (the WHATWG URL Standard). That
//!    lowercases the scheme and the host, writes international host names in punycode, drops
//!    the scheme's default port (80 for http, 443 for https), resolves `.` and `..` path
//!    segments, percent-encodes what must be, and makes an empty path `/`.
//! 3. Only `http` and `https` are accepted. A user name or password is refused rather than
//!    stored, since bookmarks are shown in plain text.
//! 4. The fragment (`#...`) is dropped: it names a place in a page, not another page.
//! 5. The path and query are kept exactly (case, trailing slash, parameter order), since
//!    servers may treat them as significant.
//!
//! So `HTTP://Example.com:80/a#frag` and `http://example.com/a` are the same bookmark, while
//! `http://example.com/a` and `https://example.com/a` or `http://example.com/a/` are not.

use std::collections::BTreeSet;

/// Longest URL, in characters, before and after normalisation.
pub const MAX_URL_CHARS: usize = 2048;
/// Longest tag, in characters (after trimming and lowercasing).
pub const MAX_TAG_CHARS: usize = 64;
/// Most tags on one bookmark.
pub const MAX_TAGS: usize = 32;
/// Most words a search looks for; later words are ignored.
pub const MAX_QUERY_TERMS: usize = 32;

/// The normalised form of `text`, or why it cannot be bookmarked (a sentence for the `/url`
/// pointer).
pub fn url(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    let mut url = url::Url::parse(trimmed).map_err(|error| {
        format!(
            "{trimmed:?} is not a URL ({error}); give an absolute http:// or https:// URL, like \"https://example.com/page\""
        )
    })?;
    let scheme = url.scheme();
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "{trimmed:?} is a {scheme}: URL; only http:// and https:// URLs can be bookmarked"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{trimmed:?} has no host name"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "the URL contains a user name or password; remove it, since bookmarks are stored and shown as plain text"
                .to_owned(),
        );
    }
    url.set_fragment(None);
    let normalised = String::from(url);
    let chars = normalised.chars().count();
    if chars > MAX_URL_CHARS {
        return Err(format!(
            "is {chars} characters long once normalised ({normalised:.60}...); at most {MAX_URL_CHARS} fit"
        ));
    }
    Ok(normalised)
}

/// One tag: trimmed and lower case; refused when blank or too long.
pub fn tag(text: &str) -> Result<String, String> {
    let tag = text.trim().to_lowercase();
    if tag.is_empty() {
        return Err("must not be blank".to_owned());
    }
    let chars = tag.chars().count();
    if chars > MAX_TAG_CHARS {
        return Err(format!(
            "is {chars} characters long; a tag has at most {MAX_TAG_CHARS}"
        ));
    }
    Ok(tag)
}

/// A bookmark's tags, each normalised, without repeats, sorted. The error is the index of the
/// bad tag and why.
pub fn tags(texts: &[String]) -> Result<Vec<String>, (usize, String)> {
    if texts.len() > MAX_TAGS {
        return Err((
            MAX_TAGS,
            format!("is one tag too many; a bookmark has at most {MAX_TAGS}"),
        ));
    }
    let mut set = BTreeSet::new();
    for (index, text) in texts.iter().enumerate() {
        set.insert(tag(text).map_err(|message| (index, message))?);
    }
    Ok(set.into_iter().collect())
}

/// The words of a search: runs of letters and digits, lower case, without repeats, at most
/// [`MAX_QUERY_TERMS`]. Both back ends search for exactly these words (all of them), so
/// punctuation never reaches a query parser.
pub fn terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in words(query) {
        if terms.len() == MAX_QUERY_TERMS {
            break;
        }
        if !terms.contains(&word) {
            terms.push(word);
        }
    }
    terms
}

/// The words of a URL for the full-text index: the host's labels and the path's and query's
/// words, without the scheme. Both back ends index this text, so they split URLs alike.
pub fn url_words(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    words(rest).collect::<Vec<_>>().join(" ")
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalised_by_the_documented_rule() {
        let cases = [
            ("HTTP://Example.com:80/a#frag", "http://example.com/a"),
            ("  https://EXAMPLE.com:443  ", "https://example.com/"),
            (
                "https://example.com:8443/A/b/?Q=1&a=2",
                "https://example.com:8443/A/b/?Q=1&a=2",
            ),
            ("http://example.com/a/./b/../c", "http://example.com/a/c"),
            (
                "https://bücher.example/x y",
                "https://xn--bcher-kva.example/x%20y",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(url(input).as_deref(), Ok(expected), "{input}");
        }
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        assert_eq!(
            url("ftp://example.com/file"),
            Err(
                "\"ftp://example.com/file\" is a ftp: URL; only http:// and https:// URLs can be bookmarked"
                    .to_owned()
            )
        );
        assert!(url("example.com").is_err());
        assert!(url("http://exa mple.com/").is_err());
        assert!(url("https://me:secret@example.com/").is_err_and(|e| !e.contains("secret")));
    }

    #[test]
    fn tags_are_trimmed_lowercased_and_deduplicated() {
        let given = [
            " Rust ".to_owned(),
            "rust".to_owned(),
            "Async IO".to_owned(),
        ];
        assert_eq!(
            tags(&given),
            Ok(vec!["async io".to_owned(), "rust".to_owned()])
        );
        assert_eq!(
            tags(&["ok".to_owned(), "  ".to_owned()]),
            Err((1, "must not be blank".to_owned()))
        );
        let many: Vec<String> = (0..=MAX_TAGS).map(|n| n.to_string()).collect();
        assert_eq!(tags(&many).map_err(|(index, _)| index), Err(MAX_TAGS));
    }

    #[test]
    fn search_terms_are_plain_words() {
        assert_eq!(
            terms("Rust's \"async\" book -- async! OR"),
            ["rust", "s", "async", "book", "or"]
        );
        assert!(terms("  ?! ").is_empty());
        assert_eq!(
            url_words("https://doc.rust-lang.org/book/ch01?x=1"),
            "doc rust lang org book ch01 x 1"
        );
    }
}
