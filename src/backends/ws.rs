//! Websocket push channels (LNbits, phoenixd): connect with the upstream's auth, then read text
//! messages, answering pings, until the upstream closes or goes quiet for too long.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

use super::BackendError;
use super::BackendResult;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Silence this long ends the channel; the watcher reconnects and reconciles.
const IDLE_LIMIT: Duration = Duration::from_secs(15 * 60);
/// Messages beyond this size are refused by the websocket layer.
const MAX_MESSAGE: usize = 1024 * 1024;

pub struct WsChannel {
    upstream: &'static str,
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// The websocket URL for `path` under an `http(s)` base.
pub fn ws_url(base: &Url, path: &str) -> BackendResult<Url> {
    let mut url = base
        .join(path)
        .map_err(|e| BackendError::Rejected(format!("websocket URL: {e}")))?;
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme)
        .map_err(|()| BackendError::Rejected("websocket URL scheme".into()))?;
    Ok(url)
}

impl WsChannel {
    pub async fn connect(
        upstream: &'static str,
        url: &Url,
        authorization: Option<&str>,
    ) -> BackendResult<Self> {
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| BackendError::Rejected(format!("{upstream} websocket URL: {e}")))?;
        if let Some(value) = authorization {
            let value = HeaderValue::from_str(value).map_err(|_| {
                BackendError::Rejected(format!("{upstream} credentials are not a valid header"))
            })?;
            request.headers_mut().insert("Authorization", value);
        }
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let connecting = tokio_tungstenite::connect_async_with_config(request, Some(config), false);
        let (socket, _) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| {
                BackendError::Unavailable(format!("{upstream} websocket did not open in time"))
            })?
            .map_err(|e| match e {
                tokio_tungstenite::tungstenite::Error::Http(answer) => {
                    let status = answer.status();
                    if status.as_u16() == 401 || status.as_u16() == 403 {
                        BackendError::Rejected(format!(
                            "{upstream} refused the websocket credentials ({status})"
                        ))
                    } else {
                        BackendError::Unavailable(format!(
                            "{upstream} refused the websocket ({status})"
                        ))
                    }
                }
                other => BackendError::Unavailable(format!("{upstream} websocket: {other}")),
            })?;
        Ok(Self { upstream, socket })
    }

    /// The next text message, or `None` when the channel closed or went quiet.
    pub async fn next_text(&mut self) -> BackendResult<Option<String>> {
        loop {
            let message = match tokio::time::timeout(IDLE_LIMIT, self.socket.next()).await {
                Err(_) | Ok(None) => return Ok(None),
                Ok(Some(message)) => message.map_err(|e| {
                    BackendError::Unavailable(format!("{} websocket: {e}", self.upstream))
                })?,
            };
            match message {
                Message::Text(text) => return Ok(Some(text.as_str().to_owned())),
                Message::Binary(bytes) => {
                    return Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
                }
                Message::Ping(payload) => {
                    let _ = self.socket.send(Message::Pong(payload)).await;
                }
                Message::Close(_) => return Ok(None),
                Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }
}
