//! What every HTTP backend shares: one client per backend (rustls, bounded connect and request
//! times), and turning an upstream's answer into a value or an error an operator can act on.

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

use super::BackendError;
use super::BackendResult;

/// Longest an upstream may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest any one upstream request may take (the callback applies its own, shorter bound).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Error bodies are quoted in logs, never in full.
const MAX_QUOTED: usize = 200;

pub fn client() -> BackendResult<reqwest::Client> {
    client_builder()
        .build()
        .map_err(|e| BackendError::Unavailable(format!("HTTP client: {e}")))
}

/// Timeouts and no redirects; callers add their TLS settings.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
}

/// `path` under the upstream's base URL.
pub fn endpoint(base: &url::Url, upstream: &str, path: &str) -> BackendResult<url::Url> {
    base.join(path)
        .map_err(|e| BackendError::Rejected(format!("{upstream} URL: {e}")))
}

/// A transport failure, in words: which upstream, and whether it was unreachable or slow.
pub fn transport(upstream: &str, e: &reqwest::Error) -> BackendError {
    if e.is_timeout() {
        BackendError::Unavailable(format!("{upstream} did not answer in time"))
    } else if e.is_connect() {
        BackendError::Unavailable(format!("{upstream} is unreachable: {}", root_cause(e)))
    } else {
        BackendError::Unavailable(format!("{upstream}: {}", root_cause(e)))
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Sends `request` and reads the whole answer: its status and body.
pub async fn exchange(
    upstream: &str,
    request: RequestBuilder,
) -> BackendResult<(StatusCode, Vec<u8>)> {
    let answer = request.send().await.map_err(|e| transport(upstream, &e))?;
    read(upstream, answer).await
}

async fn read(upstream: &str, answer: Response) -> BackendResult<(StatusCode, Vec<u8>)> {
    let status = answer.status();
    let body = answer.bytes().await.map_err(|e| transport(upstream, &e))?;
    Ok((status, body.to_vec()))
}

/// Sends `request` and decodes a successful answer as `T`; any other status becomes
/// `error(status, body)`, the upstream's own reading of its errors.
pub async fn call<T: DeserializeOwned>(
    upstream: &str,
    request: RequestBuilder,
    error: impl FnOnce(StatusCode, &[u8]) -> BackendError,
) -> BackendResult<T> {
    let (status, body) = exchange(upstream, request).await?;
    if !status.is_success() {
        return Err(error(status, &body));
    }
    json(upstream, &body)
}

/// A payment hash an upstream reported as hex.
pub fn payment_hash(upstream: &str, hex: &str) -> BackendResult<crate::domain::Hash32> {
    hex.parse().map_err(|_| {
        BackendError::Protocol(format!("{upstream} returned a malformed payment hash"))
    })
}

pub fn json<T: DeserializeOwned>(upstream: &str, body: &[u8]) -> BackendResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        BackendError::Protocol(format!(
            "{upstream} answered something unexpected ({e}): {}",
            quote(body)
        ))
    })
}

/// What a status without a more specific meaning says: a 5xx is the upstream failing (worth a
/// retry), anything else is it refusing the request.
pub fn status_error(upstream: &str, status: StatusCode, detail: &str) -> BackendError {
    if status.is_server_error() {
        BackendError::Unavailable(format!("{upstream} failed ({status}): {detail}"))
    } else {
        BackendError::Rejected(format!(
            "{upstream} refused the request ({status}): {detail}"
        ))
    }
}

/// A short, printable excerpt of an upstream's body for the operator's log.
pub fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut quoted: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_QUOTED)
        .collect();
    if text.chars().count() > MAX_QUOTED {
        quoted.push('…');
    }
    quoted
}

/// How long one push request may stay open. Streams are re-opened after this (resuming from
/// their cursor), which also recovers a connection that died without a word.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// A line of a streamed answer longer than this is refused rather than buffered.
const MAX_LINE: usize = 1024 * 1024;

/// Newline-delimited JSON read from a streaming answer, one line at a time.
pub struct JsonLines {
    upstream: &'static str,
    answer: Response,
    buffer: Vec<u8>,
}

impl JsonLines {
    pub fn new(upstream: &'static str, answer: Response) -> Self {
        Self {
            upstream,
            answer,
            buffer: Vec::new(),
        }
    }

    /// The next non-empty line, or `None` once the upstream ends the answer.
    pub async fn next_line(&mut self) -> BackendResult<Option<Vec<u8>>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                return Ok(Some(line.to_vec()));
            }
            if self.buffer.len() > MAX_LINE {
                return Err(BackendError::Protocol(format!(
                    "{} streamed a line longer than {MAX_LINE} bytes",
                    self.upstream
                )));
            }
            match self.answer.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) => {
                    let rest = std::mem::take(&mut self.buffer);
                    let rest = rest.trim_ascii();
                    return Ok((!rest.is_empty()).then(|| rest.to_vec()));
                }
                Err(e) if e.is_timeout() => return Ok(None),
                Err(e) => return Err(transport(self.upstream, &e)),
            }
        }
    }
}
