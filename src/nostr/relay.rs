//! Publishing one event to one relay: connect, send `["EVENT", ...]`, wait for its `["OK", ...]`.

use futures_util::{SinkExt, StreamExt};
use nostr::JsonUtil;
use tokio_tungstenite::tungstenite::Message;

use super::connect::{self, ConnectError, Frames, ANSWER_TIMEOUT};
use crate::domain::RelayUrl;
use crate::net::Reach;

/// Sends `event` (a signed event's JSON) and waits for the relay's verdict: the connection
/// within `connect`'s deadline, then the answer within `ANSWER_TIMEOUT`.
pub async fn publish(url: &RelayUrl, event: &str, reach: Reach) -> Result<(), PublishError> {
    let event_id = serde_json::from_str::<serde_json::Value>(event)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .ok_or(PublishError::NotAnEvent)?;
    let socket = connect::connect(url, reach, Frames::OneShot).await?;
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

/// The newest event of `kind` by `author` (hex) that `url` holds, checked (id and signature):
/// `["REQ", …]` with a limit of one, read until the relay's `EOSE`.
pub async fn latest_event(
    url: &RelayUrl,
    author: &str,
    kind: u16,
    reach: Reach,
) -> Result<Option<nostr::Event>, PublishError> {
    let mut socket = connect::connect(url, reach, Frames::OneShot).await?;
    let request =
        serde_json::json!(["REQ", "rayo", {"authors": [author], "kinds": [kind], "limit": 1}]);
    let read = async {
        let broken =
            |e: tokio_tungstenite::tungstenite::Error| PublishError::Connection(e.to_string());
        socket
            .send(Message::text(request.to_string()))
            .await
            .map_err(broken)?;
        let mut newest: Option<nostr::Event> = None;
        while let Some(message) = socket.next().await {
            let text = match message.map_err(broken)? {
                Message::Text(text) => text.as_str().to_owned(),
                Message::Close(_) => break,
                _ => continue,
            };
            let Ok(serde_json::Value::Array(parts)) = serde_json::from_str(&text) else {
                continue;
            };
            match parts.first().and_then(|v| v.as_str()) {
                Some("EVENT") => {
                    let Some(event) = parts
                        .get(2)
                        .and_then(|e| nostr::Event::from_json(e.to_string()).ok())
                    else {
                        continue;
                    };
                    // A relay may hand over anything: only the author's own, signed event counts.
                    let wanted = event.pubkey.to_hex() == author
                        && event.kind.as_u16() == kind
                        && event.verify().is_ok();
                    if wanted
                        && newest
                            .as_ref()
                            .is_none_or(|n| event.created_at > n.created_at)
                    {
                        newest = Some(event);
                    }
                }
                Some("EOSE") | Some("CLOSED") => break,
                _ => {}
            }
        }
        let _ = socket.close(None).await;
        Ok(newest)
    };
    tokio::time::timeout(ANSWER_TIMEOUT, read)
        .await
        .map_err(|_| PublishError::Timeout)?
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A relay that answers with `answer` for whatever event it is sent.
    async fn relay_answering(answer: String) -> RelayUrl {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = RelayUrl::parse(&format!("ws://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
            let _event = socket.next().await;
            let _ = socket.send(Message::text(answer)).await;
            let _ = socket.next().await;
        });
        url
    }

    const EVENT: &str = r#"{"id":"ab","kind":9735}"#;

    #[tokio::test]
    async fn a_relay_that_accepts_the_event_is_a_delivery() {
        let url = relay_answering(r#"["OK","ab",true,""]"#.into()).await;
        assert_eq!(publish(&url, EVENT, Reach::Anywhere).await, Ok(()));
    }

    #[tokio::test]
    async fn a_stranger_named_relay_cannot_make_rayo_hold_a_huge_message() {
        // A zap request names its relays: anyone's. One frame over what rayo reads ends that
        // attempt (the outbox retries later) instead of being buffered.
        let huge = format!(r#"["NOTICE","{}"]"#, "x".repeat(connect::MAX_MESSAGE + 1));
        let url = relay_answering(huge).await;
        assert!(matches!(
            publish(&url, EVENT, Reach::Anywhere).await,
            Err(PublishError::Connection(_))
        ));
    }
}
