//! A bounded Server-Sent Events decoder for the providers' streaming answers.
//!
//! Both providers stream `text/event-stream`. The decoder is ours rather than a crate's because
//! it must be bounded: a line longer than [`MAX_SSE_LINE_BYTES`] or a stream longer than
//! [`crate::MAX_RESPONSE_BYTES`] is an error, not an ever-growing buffer.

use std::collections::VecDeque;

use crate::MAX_RESPONSE_BYTES;

/// Longest SSE line we accept. One event's `data` is one line in both providers' streams, and
/// their events are small deltas.
pub const MAX_SSE_LINE_BYTES: usize = 4 * 1024 * 1024;

/// One dispatched event: its `event:` name (if any) and its `data:` lines joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub(crate) event: Option<String>,
    pub(crate) data: String,
}

/// Why a stream could not be decoded; turned into `ModelError::InvalidResponse` by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SseError {
    LineTooLong,
    StreamTooLong,
    NotUtf8,
}

impl SseError {
    pub(crate) fn sentence(&self) -> String {
        match self {
            SseError::LineTooLong => format!(
                "a line of the event stream is longer than {} MiB",
                MAX_SSE_LINE_BYTES / (1024 * 1024)
            ),
            SseError::StreamTooLong => format!(
                "the event stream is longer than {} MiB",
                MAX_RESPONSE_BYTES / (1024 * 1024)
            ),
            SseError::NotUtf8 => "the event stream is not UTF-8 text".to_owned(),
        }
    }
}

/// Feeds bytes in, gets whole events out.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    line: Vec<u8>,
    total: usize,
    event: Option<String>,
    data: Option<String>,
    ready: VecDeque<SseEvent>,
}

impl SseDecoder {
    pub(crate) fn new() -> SseDecoder {
        SseDecoder::default()
    }

    /// Decode a chunk. Completed events are queued for [`SseDecoder::next_event`].
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<(), SseError> {
        self.total = self.total.saturating_add(chunk.len());
        if self.total > MAX_RESPONSE_BYTES {
            return Err(SseError::StreamTooLong);
        }
        let mut rest = chunk;
        while let Some(newline) = rest.iter().position(|byte| *byte == b'\n') {
            if self.line.len() + newline > MAX_SSE_LINE_BYTES {
                return Err(SseError::LineTooLong);
            }
            self.line.extend_from_slice(&rest[..newline]);
            rest = &rest[newline + 1..];
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.line_done(&line)?;
        }
        if self.line.len() + rest.len() > MAX_SSE_LINE_BYTES {
            return Err(SseError::LineTooLong);
        }
        self.line.extend_from_slice(rest);
        Ok(())
    }

    /// The stream ended: an event that was not followed by a blank line is still delivered
    /// (some servers omit the last one); the caller decides whether the stream was complete.
    pub(crate) fn finish(&mut self) -> Result<(), SseError> {
        if !self.line.is_empty() {
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.line_done(&line)?;
        }
        self.dispatch();
        Ok(())
    }

    pub(crate) fn next_event(&mut self) -> Option<SseEvent> {
        self.ready.pop_front()
    }

    fn line_done(&mut self, line: &[u8]) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch();
            return Ok(());
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
        if line.starts_with(':') {
            return Ok(()); // A comment, used as a keep-alive.
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            // `id` and `retry` matter for reconnecting, which a chat completion never does.
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self) {
        let event = self.event.take();
        if let Some(data) = self.data.take() {
            self.ready.push_back(SseEvent { event, data });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> Result<Vec<SseEvent>, SseError> {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        for chunk in chunks {
            decoder.push(chunk)?;
            while let Some(event) = decoder.next_event() {
                events.push(event);
            }
        }
        decoder.finish()?;
        while let Some(event) = decoder.next_event() {
            events.push(event);
        }
        Ok(events)
    }

    #[test]
    fn events_split_across_chunks_are_joined() {
        let events = decode(&[
            b"event: pi",
            b"ng\r\ndata: {\"a\"",
            b":1}\r\n\r\n: keep\n\ndata: x\n",
        ])
        .expect("valid stream");
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: Some("ping".into()),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    event: None,
                    data: "x".into()
                },
            ]
        );
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let events = decode(&[b"data: one\ndata:two\n\n"]).expect("valid stream");
        assert_eq!(events[0].data, "one\ntwo");
    }

    #[test]
    fn a_line_over_the_limit_is_an_error() {
        let mut decoder = SseDecoder::new();
        let big = vec![b'a'; MAX_SSE_LINE_BYTES + 1];
        assert_eq!(decoder.push(&big), Err(SseError::LineTooLong));
    }

    #[test]
    fn a_stream_over_the_total_limit_is_an_error() {
        let mut decoder = SseDecoder::new();
        let mut line = vec![b'a'; 1024 * 1024 - 1];
        line.push(b'\n');
        let mut result = Ok(());
        for _ in 0..=(MAX_RESPONSE_BYTES / line.len()) {
            result = decoder.push(&line);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseError::StreamTooLong));
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        assert_eq!(decode(&[b"data: \xff\xfe\n\n"]), Err(SseError::NotUtf8));
    }
}
