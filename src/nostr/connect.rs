//! Opening a WebSocket to a Nostr relay: the one connector behind zap receipts and NWC, with
//! one set of limits.

use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::domain::RelayUrl;
use crate::net::{self, Reach};

/// A connection to a relay.
pub type RelaySocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a relay has to take the connection: TCP, TLS and the WebSocket handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a relay may take to answer an event with its `OK`.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest message rayo reads from a relay: answers and NWC events are small. A bigger one
/// is skipped by its reader, and the connection stays up.
pub const MAX_MESSAGE: usize = 256 * 1024;
/// What the connection itself takes before it gives up on a relay. Far above `MAX_MESSAGE`:
/// an event anyone can publish (say, p-tagged to a wallet on a subscription many wallets
/// share) must cost its sender that event, not everyone on the relay their connection.
const MAX_FRAME: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("relay: {0}")]
    Unreachable(#[from] net::NetError),
    #[error("relay connection: {0}")]
    Handshake(String),
    #[error("the relay did not take the connection in time")]
    Timeout,
}

/// Connects to `url` on an address `reach` allows, the one that was checked: the WebSocket
/// handshake runs over that very stream.
pub async fn connect(url: &RelayUrl, reach: Reach) -> Result<RelaySocket, ConnectError> {
    tokio::time::timeout(CONNECT_TIMEOUT, async {
        let stream = net::connect(url.url(), reach).await?;
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME))
            .max_frame_size(Some(MAX_FRAME));
        let (socket, _) = tokio_tungstenite::client_async_tls_with_config(
            url.as_str(),
            stream,
            Some(config),
            None,
        )
        .await
        .map_err(|e| ConnectError::Handshake(e.to_string()))?;
        Ok(socket)
    })
    .await
    .map_err(|_| ConnectError::Timeout)?
}
