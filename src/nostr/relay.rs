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
pub async fn publish(url: &RelayUrl, event: &str, reach: Reach) -> Result<(), String> {
    tokio::time::timeout(PUBLISH_TIMEOUT, publish_inner(url, event, reach))
        .await
        .map_err(|_| "the relay did not answer in time".to_owned())?
}

async fn publish_inner(url: &RelayUrl, event: &str, reach: Reach) -> Result<(), String> {
    let stream = net::connect(url.url(), reach)
        .await
        .map_err(|e| format!("relay: {e}"))?;
    let event_id = serde_json::from_str::<serde_json::Value>(event)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .ok_or("not a signed event")?;
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let (mut socket, _) =
        tokio_tungstenite::client_async_tls_with_config(url.as_str(), stream, Some(config), None)
            .await
            .map_err(|e| format!("could not open the websocket: {e}"))?;
    socket
        .send(Message::text(format!("[\"EVENT\",{event}]")))
        .await
        .map_err(|e| format!("could not send: {e}"))?;
    while let Some(message) = socket.next().await {
        let text = match message.map_err(|e| format!("relay connection: {e}"))? {
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
            Err(format!("the relay refused the event: {reason}"))
        };
    }
    Err("the relay closed without answering".into())
}
