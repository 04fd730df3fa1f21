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
/// The largest message rayo reads from a relay: answers and NWC events are small. On a shared
/// link a bigger one is skipped, and the link stays up.
pub const MAX_MESSAGE: usize = 256 * 1024;

/// How much one frame may hold before the connection is given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frames {
    /// A connection for one event (a zap receipt), to a relay a stranger may have named: a
    /// frame bigger than any message rayo reads ends it, and the attempt is retried later.
    OneShot,
    /// A link many wallets share (NWC): an event anyone can publish, p-tagged to one wallet,
    /// must cost its sender that event and not everyone on the relay their link, so frames
    /// far above `MAX_MESSAGE` are taken, and skipped by the reader.
    Shared,
}

impl Frames {
    fn limit(self) -> usize {
        match self {
            Self::OneShot => MAX_MESSAGE,
            Self::Shared => 4 * 1024 * 1024,
        }
    }
}

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
pub async fn connect(
    url: &RelayUrl,
    reach: Reach,
    frames: Frames,
) -> Result<RelaySocket, ConnectError> {
    tokio::time::timeout(CONNECT_TIMEOUT, async {
        let stream = net::connect(url.url(), reach).await?;
        let config = WebSocketConfig::default()
            .max_message_size(Some(frames.limit()))
            .max_frame_size(Some(frames.limit()));
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
