//! The gateway's JSON log lines, in the shape of `tracing-subscriber`'s JSON format (with the
//! current span, without the span list), written for less CPU per line.
//!
//! The gateway writes one line per forwarded call, so a line's cost is part of every call's.
//! `tracing-subscriber`'s formatter serializes through an `io::Write` adaptor that checks every
//! small piece serde writes as UTF-8 on its own (about 120 pieces per line), and it parses the
//! current span's fields, which it stored as a JSON object when the span was made, back into a
//! `Value` for every line. This formatter serializes the event's fields into one buffer and
//! copies the span's stored object into the line as it is: the same keys, in the same order,
//! for about a third of the instructions.
//!
//! A span's fields are stored when it is made, by [`JsonSpanFields`]: the object
//! `tracing-subscriber`'s `JsonFields` would store (keys sorted), serialized in one piece
//! where `JsonFields` goes through the same adaptor. The gateway makes a span per request.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber, span};
use tracing_log::NormalizeEvent;
use tracing_serde::AsSerde;
use tracing_serde::fields::AsMap;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// One JSON object per line: `timestamp`, `level`, `fields`, `target` and, inside a span,
/// `span` (the span's fields and its `name`).
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines;

impl<S> FormatEvent<S, JsonSpanFields> for JsonLines
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonSpanFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // A `log` record (through `tracing-log`) is shown with its own level and target.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let mut timestamp = String::with_capacity(32);
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut line = Vec::with_capacity(320);
        line.extend_from_slice(b"{\"timestamp\":\"");
        line.extend_from_slice(timestamp.as_bytes());
        line.extend_from_slice(b"\",\"level\":");
        push_json(&mut line, &meta.level().as_serde())?;
        line.extend_from_slice(b",\"fields\":");
        push_json(&mut line, &event.field_map())?;
        line.extend_from_slice(b",\"target\":");
        push_json(&mut line, meta.target())?;
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            line.extend_from_slice(b",\"span\":");
            let extensions = span.extensions();
            let fields = extensions
                .get::<FormattedFields<JsonSpanFields>>()
                .map(|fields| fields.fields.as_str());
            push_span(&mut line, fields, span.name())?;
        }
        line.extend_from_slice(b"}\n");
        // serde_json writes only valid UTF-8; the line is checked once, whole.
        writer.write_str(std::str::from_utf8(&line).map_err(|_| fmt::Error)?)
    }
}

/// Append `value` as JSON, serialized straight into the line.
fn push_json(line: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) -> fmt::Result {
    serde_json::to_writer(line, value).map_err(|_| fmt::Error)
}

/// Append a span as `{...its fields..., "name": ...}`. `fields` is the object
/// [`JsonSpanFields`] stored for it (`None` or empty when it has no fields), copied without
/// being parsed again.
fn push_span(line: &mut Vec<u8>, fields: Option<&str>, name: &str) -> fmt::Result {
    let inner = fields
        .map(str::trim)
        .and_then(|object| object.strip_prefix('{')?.strip_suffix('}'))
        .map(str::trim)
        .unwrap_or_default();
    line.push(b'{');
    if !inner.is_empty() {
        line.extend_from_slice(inner.as_bytes());
        line.push(b',');
    }
    line.extend_from_slice(b"\"name\":");
    push_json(line, name)?;
    line.push(b'}');
    Ok(())
}

/// Stores a span's fields as one JSON object, with its keys sorted.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonSpanFields;

impl<'writer> FormatFields<'writer> for JsonSpanFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut values = FieldValues::default();
        fields.record(&mut values);
        let json = serde_json::to_string(&values.0).map_err(|_| fmt::Error)?;
        writer.write_str(&json)
    }

    /// Fields recorded after the span was made (rare) are merged into the stored object.
    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &span::Record<'_>,
    ) -> fmt::Result {
        let mut values = FieldValues::default();
        fields.record(&mut values);
        let mut merged: BTreeMap<String, Value> = if current.fields.is_empty() {
            BTreeMap::new()
        } else {
            serde_json::from_str(&current.fields).map_err(|_| fmt::Error)?
        };
        merged.extend(
            values
                .0
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value)),
        );
        current.fields = serde_json::to_string(&merged).map_err(|_| fmt::Error)?;
        Ok(())
    }
}

/// A span's field values by name, as `JsonFields` records them: debug values as their
/// `Debug` text, a raw identifier's `r#` dropped, and the `log.` fields of a `log` record
/// (which the line shows as its target) left out.
#[derive(Default)]
struct FieldValues(BTreeMap<&'static str, Value>);

impl Visit for FieldValues {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name(), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name(), Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), Value::from(value));
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.0.insert(field.name(), Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.0.insert(name, Value::from(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// Lines written by a subscriber, kept for the test to read.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .expect("the capture lock")
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            let bytes = self.0.lock().expect("the capture lock").clone();
            String::from_utf8(bytes)
                .expect("log lines are UTF-8")
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    /// Events of every field type, inside and outside spans, nested spans, a span with a field
    /// recorded after it was made, and strings that need escaping.
    fn emit_everything() {
        #[derive(Debug)]
        struct Shown {
            #[allow(dead_code)]
            quote: &'static str,
        }
        let error = io::Error::other("disk \"full\"\nno space");
        tracing::info!("outside any span");
        tracing::warn!(
            text = "tab\there \"quoted\" é ✓",
            signed = -7_i64,
            unsigned = 7_u64,
            float = 0.125_f64,
            flag = true,
            shown = ?Shown { quote: "\"" },
            displayed = %"display\\",
            error = &error as &(dyn std::error::Error + 'static),
            "fields of every kind"
        );
        let outer =
            tracing::info_span!("request", request_id = %"r-1", method = "POST", count = 3_u64);
        let _outer = outer.enter();
        tracing::info!(latency_ms = 0.5_f64, "in a span");
        let empty = tracing::info_span!("empty");
        empty.in_scope(|| tracing::error!("in a span without fields"));
        let later = tracing::info_span!(
            "later",
            first = 1_u64,
            r#kind = ?"raw identifier",
            second = tracing::field::Empty,
            third = tracing::field::Empty
        );
        later.record("second", "recorded after");
        later.record("third", -3.5_f64);
        later.in_scope(|| tracing::debug!(r#type = "raw identifier", "nested, recorded later"));
        let parent = tracing::info_span!("explicit", parent_only = true);
        tracing::info!(parent: &parent, "with an explicit parent");
        drop(_outer);
        tracing_log::format_trace(
            &log::Record::builder()
                .args(format_args!("a record of the log crate"))
                .level(log::Level::Warn)
                .target("some::library")
                .module_path_static(Some("some::library::module"))
                .build(),
        )
        .expect("the record becomes an event");
    }

    fn without_timestamp(line: &str) -> Value {
        let mut value: Value = serde_json::from_str(line).expect("each line is JSON");
        let object = value.as_object_mut().expect("each line is an object");
        let timestamp = object
            .remove("timestamp")
            .expect("each line has a timestamp");
        let timestamp = timestamp.as_str().expect("the timestamp is a string");
        // RFC 3339 in UTC with microseconds, as tracing-subscriber writes it.
        assert_eq!(
            timestamp.len(),
            "2026-11-25T09:39:35.268672Z".len(),
            "{timestamp}"
        );
        assert!(
            timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
            "{timestamp}"
        );
        value
    }

    #[test]
    fn lines_have_the_same_json_as_tracing_subscribers_format() {
        let ours = Captured::default();
        let theirs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .fmt_fields(JsonSpanFields)
            .event_format(JsonLines)
            .with_writer(ours.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit_everything);
        let reference = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(theirs.clone())
            .finish();
        tracing::subscriber::with_default(reference, emit_everything);

        let (ours, theirs) = (ours.lines(), theirs.lines());
        assert_eq!(ours.len(), 7, "{ours:#?}");
        assert_eq!(ours.len(), theirs.len());
        for (mine, reference) in ours.iter().zip(&theirs) {
            assert_eq!(without_timestamp(mine), without_timestamp(reference));
            // The same keys in the same order, not only the same object.
            let keys = |line: &str| {
                let value: Value = serde_json::from_str(line).expect("JSON");
                value
                    .as_object()
                    .expect("an object")
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
            };
            assert_eq!(keys(mine), keys(reference));
        }
        let span_of = |line: &str| without_timestamp(line)["span"].clone();
        assert_eq!(span_of(&ours[0]), Value::Null);
        assert_eq!(
            span_of(&ours[2]),
            serde_json::json!({"count": 3, "method": "POST", "request_id": "r-1", "name": "request"})
        );
        assert_eq!(span_of(&ours[3]), serde_json::json!({"name": "empty"}));
        assert_eq!(
            span_of(&ours[4]),
            serde_json::json!({
                "first": 1,
                "kind": "\"raw identifier\"",
                "second": "recorded after",
                "third": -3.5,
                "name": "later"
            })
        );
        assert_eq!(
            span_of(&ours[5]),
            serde_json::json!({"parent_only": true, "name": "explicit"})
        );
        let record = without_timestamp(&ours[6]);
        assert_eq!(record["target"], "some::library");
        assert_eq!(record["level"], "WARN");
    }

    #[test]
    fn a_span_whose_stored_fields_are_not_an_object_still_gives_a_json_line() {
        for stored in [None, Some(""), Some("  "), Some("not json"), Some("{ }")] {
            let mut line = Vec::new();
            push_span(&mut line, stored, "request").expect("a span is written");
            let value: Value = serde_json::from_slice(&line).expect("the span is JSON");
            assert_eq!(value, serde_json::json!({"name": "request"}), "{stored:?}");
        }
    }
}
