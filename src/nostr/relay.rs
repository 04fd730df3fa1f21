//! Publishing one event to one relay: connect, send `["EVENT", ...]`, wait for its `["OK", ...]`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::domain::RelayUrl;
use crate::net::{self, Reach};

/// Connecting, sending and hearing back must all fit in this.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// Relay answers are small; anything bigger is not an answer to us.
const MAX_MESSAGE: usize = 64 * 1024;

/// Sends `event` (a signed event's JSON) and waits for the relay's verdict. The relay is
/// reached on an address `reach` allows, the one that was checked: the WebSocket handshake
/// runs over that very connection.
pub async fn publish(url: &RelayUrl, event: &str, reach: Reach) -> Result<(), PublishError> {
    tokio::time::timeout(PUBLISH_TIMEOUT, publish_inner(url, event, reach))
        .await
        .map_err(|_| PublishError::Timeout)?
}

/// Why an event did not reach a relay, in words for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("relay: {0}")]
    Unreachable(#[from] net::NetError),
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

async fn publish_inner(url: &RelayUrl, event: &str, reach: Reach) -> Result<(), PublishError> {
    let stream = net::connect(url.url(), reach).await?;
    let event_id = serde_json::from_str::<serde_json::Value>(event)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .ok_or(PublishError::NotAnEvent)?;
    let broken = |e: tokio_tungstenite::tungstenite::Error| PublishError::Connection(e.to_string());
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let (mut socket, _) =
        tokio_tungstenite::client_async_tls_with_config(url.as_str(), stream, Some(config), None)
            .await
            .map_err(broken)?;
    socket
        .send(Message::text(format!("[\"EVENT\",{event}]")))
        .await
        .map_err(broken)?;
    while let Some(message) = socket.next().await {
        let text = match message.map_err(broken)? {
            Message::Text(text) => text.as_str().to_owned(),
            Message::Close(_) => break,
            _ => continue,
        };
        let Ok(serde_json::Value::Array(parts)) = serde_json::from_str(&text) else {
            continue;
        };
        if parts.first().and_then(|v| v.as_str()) != Some("OK")
            || parts.get(1).and_then(|v| v.as_str()) != Some(event_id.as_str())
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
