//! The response body type and its constructors, and the bounded reading of request bodies.
//!
//! One boxed body type for every response, so handlers can answer a small JSON document, a
//! whole object held in memory, or a stream from disk without generic plumbing. Every request
//! body is read chunk by chunk through [`next_chunk`] (a stall longer than the body timeout
//! ends it), and a refused one is drained, bounded, by [`discard_rest`], so the client reads
//! the answer rather than a reset connection.

use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};

/// Why a request body could not be read (the handler's error turns it into an answer).
#[derive(Debug)]
pub enum BodyError {
    /// No chunk arrived within the body timeout.
    Timeout,
    /// The connection failed while the body was read.
    Failed(hyper::Error),
    /// The body is larger than `limit` bytes.
    TooLarge {
        /// The limit.
        limit: u64,
    },
}

/// Every response body.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A body held in memory.
pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A body streamed chunk by chunk.
pub fn stream(s: BoxStream<'static, std::io::Result<Bytes>>) -> Body {
    StreamBody::new(s.map(|r| r.map(Frame::data))).boxed_unsync()
}

/// The next data chunk of a request body (trailers skipped), waiting at most `timeout` for it;
/// `None` at the end.
pub async fn next_chunk(
    body: &mut Incoming,
    timeout: Duration,
) -> Result<Option<Bytes>, BodyError> {
    loop {
        let frame = tokio::time::timeout(timeout, body.frame())
            .await
            .map_err(|_| BodyError::Timeout)?;
        let Some(frame) = frame else { return Ok(None) };
        if let Ok(data) = frame.map_err(BodyError::Failed)?.into_data() {
            return Ok(Some(data));
        }
    }
}

/// A whole request body of at most `limit` bytes. A larger one (by its `declared` length or
/// by what arrives) is drained, up to four times the limit, and refused with 413.
pub async fn read_limited(
    mut body: Incoming,
    declared: Option<u64>,
    timeout: Duration,
    limit: u64,
) -> Result<Vec<u8>, BodyError> {
    if declared.is_some_and(|n| n > limit) {
        discard_rest(&mut body, timeout, 4 * limit).await;
        return Err(BodyError::TooLarge { limit });
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(data) = next_chunk(&mut body, timeout).await? {
        if buf.len() as u64 + data.len() as u64 > limit {
            discard_rest(&mut body, timeout, 4 * limit).await;
            return Err(BodyError::TooLarge { limit });
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf)
}

/// Reads and drops what is left of a refused request's body (a full disk, the size cap), at
/// most `budget` bytes and within `timeout` per frame. A client still sending when the server
/// answers and closes gets a reset connection instead of the answer (a broken pipe, not the
/// 507 that says what to do); this is the bounded form of the "discard the body" that nginx
/// does.
pub async fn discard_rest(body: &mut Incoming, timeout: Duration, mut budget: u64) {
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(timeout, body.frame()).await {
        let len = frame.data_ref().map_or(0, |d| d.len() as u64);
        if len > budget {
            break;
        }
        budget -= len;
    }
}

/// Escapes the five characters special in HTML and XML text and attributes (`'` as `&#39;`,
/// which both read).
pub fn escape_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
