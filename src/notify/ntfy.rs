//! ntfy: one JSON publish to the server's root, naming the topic (ntfy's documented
//! `POST /` form), with an access token when the topic is protected.

use serde_json::json;

use super::failure::{http_outcome, Failure};
use super::message::Message;
use crate::domain::{ntfy_topic, Secret};

/// Publishes `message` to the topic at `url` (`https://ntfy.sh/alice-x7`).
pub async fn publish(
    client: &reqwest::Client,
    url: &str,
    token: Option<&Secret>,
    message: &Message,
) -> Result<u16, Failure> {
    let topic_url = url::Url::parse(url).map_err(|e| Failure::now(format!("ntfy URL: {e}")))?;
    let topic = ntfy_topic(&topic_url)
        .ok_or_else(|| Failure::now("ntfy URL names no topic".into()))?
        .to_owned();
    let mut root = topic_url.clone();
    root.set_path("/");
    let mut body = json!({
        "topic": topic,
        "title": message.title,
        "message": message.text,
        "tags": message.tags,
        "priority": 3,
    });
    if let Some(link) = &message.link {
        body["click"] = json!(link);
    }
    let mut request = client.post(root).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token.expose());
    }
    http_outcome(request.send().await).await
}
