//! Publishing one event to one relay: connect, send `["EVENT", ...]`, wait for its `["OK", ...]`.

use std::net::IpAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// Connecting, sending and hearing back must all fit in this.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// Relay answers are small; anything bigger is not an answer to us.
const MAX_MESSAGE: usize = 64 * 1024;

/// Checks a relay URL: `ws` or `wss`, a host, and (unless allowed) a host that is not a
/// private, loopback or link-local address. Names are checked again after resolving.
pub fn check_relay_url(url: &str, allow_private: bool) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("relay URL {url:?}: {e}"))?;
    if !matches!(parsed.scheme(), "ws" | "wss") {
        return Err(format!("relay URL {url:?}: only ws:// and wss:// relays"));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("relay URL {url:?}: no host"))?;
    if !allow_private {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.eq_ignore_ascii_case("localhost") || bare.ends_with(".localhost") {
            return Err(format!(
                "relay URL {url:?}: private addresses are not allowed"
            ));
        }
        if let Ok(ip) = bare.parse::<IpAddr>() {
            if is_private(ip) {
                return Err(format!(
                    "relay URL {url:?}: private addresses are not allowed"
                ));
            }
        }
    }
    Ok(parsed)
}

/// Addresses a public relay cannot have: loopback, private ranges, link-local, unspecified,
/// carrier-grade NAT, unique-local IPv6 and IPv4-mapped versions of these.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Sends `event` (a signed event's JSON) and waits for the relay's verdict.
pub async fn publish(url: &str, event: &str, allow_private: bool) -> Result<(), String> {
    tokio::time::timeout(PUBLISH_TIMEOUT, publish_inner(url, event, allow_private))
        .await
        .map_err(|_| "the relay did not answer in time".to_owned())?
}

async fn publish_inner(url: &str, event: &str, allow_private: bool) -> Result<(), String> {
    let parsed = check_relay_url(url, allow_private)?;
    if !allow_private {
        let host = parsed.host_str().unwrap_or_default();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let addresses = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("could not resolve the relay: {e}"))?;
        for address in addresses {
            if is_private(address.ip()) {
                return Err("the relay resolves to a private address".into());
            }
        }
    }
    let event_id = serde_json::from_str::<serde_json::Value>(event)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .ok_or("not a signed event")?;
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(parsed.as_str(), Some(config), false)
            .await
            .map_err(|e| format!("could not connect: {e}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_urls_must_be_websockets_to_public_hosts() {
        assert!(check_relay_url("wss://relay.damus.io", false).is_ok());
        assert!(check_relay_url("https://relay.damus.io", false).is_err());
        for private in [
            "ws://127.0.0.1:7000",
            "ws://localhost",
            "wss://10.1.2.3",
            "wss://192.168.0.9",
            "wss://169.254.1.1",
            "wss://100.64.0.1",
            "wss://[::1]",
            "wss://[fd00::1]",
            "wss://[::ffff:127.0.0.1]",
            "wss://0.0.0.0",
        ] {
            assert!(check_relay_url(private, false).is_err(), "{private}");
            assert!(check_relay_url(private, true).is_ok(), "{private}");
        }
    }
}
