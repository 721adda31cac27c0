//! Resource URIs through the gateway: `gateway://{upstream}/{original URI}`.
//!
//! The upstream's URI is kept verbatim after the first `/` that follows the upstream name, so:
//! - the mapping reverses exactly (upstream names cannot contain `/`);
//! - a resource template maps to a template (`gateway://fx/fixture://items/{id}`), and what
//!   a client expands from it maps back to what the upstream's template expands to;
//! - gateways nest: `gateway://outer/gateway://inner/file:///x` reverses one level at a time.

/// The scheme of resource URIs served by the gateway.
pub const SCHEME_PREFIX: &str = "gateway://";

/// The gateway URI of `uri` on `upstream`.
pub fn to_gateway(upstream: &str, uri: &str) -> String {
    format!("{SCHEME_PREFIX}{upstream}/{uri}")
}

/// The upstream and its original URI, or `None` for a URI the gateway did not make.
pub fn from_gateway(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix(SCHEME_PREFIX)?;
    let (upstream, original) = rest.split_once('/')?;
    (!upstream.is_empty() && !original.is_empty()).then_some((upstream, original))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_and_templates_map_back() {
        for (upstream, uri) in [
            ("expenses", "expenses://categories"),
            ("fx", "fixture://items/{id}"),
            ("files", "file:///home/a%20b/c?x=1#y"),
            ("outer", "gateway://inner/file:///x"),
        ] {
            let mapped = to_gateway(upstream, uri);
            assert_eq!(from_gateway(&mapped), Some((upstream, uri)), "{mapped}");
        }
        // A client expands a mapped template; the result maps to the upstream's expansion.
        let expanded = to_gateway("fx", "fixture://items/{id}").replace("{id}", "5");
        assert_eq!(from_gateway(&expanded), Some(("fx", "fixture://items/5")));
    }

    #[test]
    fn foreign_uris_are_not_ours() {
        assert_eq!(from_gateway("expenses://categories"), None);
        assert_eq!(from_gateway("gateway://"), None);
        assert_eq!(from_gateway("gateway://only-a-name"), None);
        assert_eq!(from_gateway("gateway:///x"), None);
    }
}
