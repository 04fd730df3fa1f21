//! Publishing one event to one relay: connect, send `["EVENT", ...]`, wait for its `["OK", ...]`.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::connect::{self, ConnectError, ANSWER_TIMEOUT, MAX_MESSAGE};
use crate::domain::RelayUrl;
use crate::net::Reach;

/// Sends `event` (a signed event's JSON) and waits for the relay's verdict: the connection
/// within `connect`'s deadline, then the answer within `ANSWER_TIMEOUT`.
pub async fn publish(url: &RelayUrl, event: &str, reach: Reach) -> Result<(), PublishError> {
    let event_id = serde_json::from_str::<serde_json::Value>(event)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .ok_or(PublishError::NotAnEvent)?;
    let socket = connect::connect(url, reach).await?;
    tokio::time::timeout(ANSWER_TIMEOUT, send_and_hear(socket, event, &event_id))
        .await
        .map_err(|_| PublishError::Timeout)?
}

/// Why an event did not reach a relay, in words for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Unreachable(#[from] ConnectError),
    #[error("not a signed event")]
    NotAnEvent,
    #[error("relay connection: {0}")]
    Connection(String),
    #[error("the relay refused the event: {0}")]
    Refused(String),
    #[error("the relay closed without answering")]
    Closed,
    #[error("the relay did not answer in time")]
    Timeout,
}

async fn send_and_hear(
    mut socket: connect::RelaySocket,
    event: &str,
    event_id: &str,
) -> Result<(), PublishError> {
    let broken = |e: tokio_tungstenite::tungstenite::Error| PublishError::Connection(e.to_string());
    socket
        .send(Message::text(format!("[\"EVENT\",{event}]")))
        .await
        .map_err(broken)?;
    while let Some(message) = socket.next().await {
        let text = match message.map_err(broken)? {
            // Not an answer to us: answers are small.
            Message::Text(text) if text.len() > MAX_MESSAGE => continue,
            Message::Text(text) => text.as_str().to_owned(),
            Message::Close(_) => break,
            _ => continue,
        };
        let Ok(serde_json::Value::Array(parts)) = serde_json::from_str(&text) else {
            continue;
        };
        if parts.first().and_then(|v| v.as_str()) != Some("OK")
            || parts.get(1).and_then(|v| v.as_str()) != Some(event_id)
        {
            continue;
        }
        let accepted = parts.get(2).and_then(|v| v.as_bool()) == Some(true);
        let reason = parts.get(3).and_then(|v| v.as_str()).unwrap_or("");
        let _ = socket.close(None).await;
        // A relay that already has it is as good as one that just took it.
        return if accepted || reason.starts_with("duplicate:") {
            Ok(())
        } else {
            Err(PublishError::Refused(reason.to_owned()))
        };
    }
    Err(PublishError::Closed)
}
