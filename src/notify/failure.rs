//! How an attempt failed, as every channel reports it: a status when the receiver gave one,
//! the reason in words, and how long the receiver asked to wait.

use std::time::Duration;

/// Why one attempt did not deliver, in words for the delivery log.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: Option<u16>,
    pub reason: String,
    /// The receiver asked to wait this long (Telegram's `retry_after`).
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub fn now(reason: String) -> Self {
        Self {
            status: None,
            reason,
            retry_after: None,
        }
    }

    pub fn with_status(status: u16, reason: String) -> Self {
        Self {
            status: Some(status),
            reason,
            retry_after: None,
        }
    }
}

/// An HTTP answer as an attempt's outcome: 2xx delivered, else the status and the start of
/// what the receiver said.
pub(super) async fn http_outcome(
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<u16, Failure> {
    match sent {
        Ok(answer) if answer.status().is_success() => Ok(answer.status().as_u16()),
        Ok(answer) => {
            let status = answer.status();
            let retry_after = answer
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            // A receiver someone else chose may answer anything: its words are read only as far
            // as the log quotes them.
            let body = crate::net::read_at_most(answer, QUOTED_BYTES).await;
            let body = String::from_utf8_lossy(&body);
            let mut failure =
                Failure::with_status(status.as_u16(), format!("HTTP {status}: {}", quote(&body)));
            failure.retry_after = retry_after;
            Err(failure)
        }
        Err(e) => Err(Failure::now(request_error(&e))),
    }
}

pub(super) fn request_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "no answer in time".into();
    }
    let cause = crate::net::root_cause(e);
    if e.is_connect() {
        format!("could not connect: {cause}")
    } else {
        format!("request failed: {cause}")
    }
}

/// Characters of a receiver's words quoted in the log, and the bytes read for them.
const QUOTED_CHARS: usize = 200;
const QUOTED_BYTES: usize = QUOTED_CHARS * 4;

/// What a receiver said, for the log: one line, at most 200 characters.
pub(super) fn quote(words: &str) -> String {
    super::message::one_line(words, QUOTED_CHARS)
}
