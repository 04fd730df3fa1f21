//! Telegram: the operator's bot writes to a person's chat (`sendMessage`), and links chats to
//! people by the one-time code they send it (`/start <code>`, read with `getUpdates`).

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::failure::{quote, request_error, Failure};
use super::message::Message;
use crate::domain::Secret;

/// The Bot API, at `api` (`https://api.telegram.org`, or a mirror), as the bot `token`.
#[derive(Clone)]
pub struct Bot {
    api: String,
    token: Secret,
    client: reqwest::Client,
    /// The bot's @name, asked once.
    name: std::sync::Arc<tokio::sync::OnceCell<String>>,
}

/// The most of one Bot API answer rayo reads.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// What the Bot API answers: `{"ok": true, "result": …}` or `{"ok": false, "error_code",
/// "description", "parameters": {"retry_after"}}`.
#[derive(Debug, Deserialize)]
struct Answer<T> {
    ok: bool,
    result: Option<T>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(Debug, Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct Update {
    pub update_id: i64,
    #[serde(default)]
    pub message: Option<IncomingMessage>,
}

#[derive(Debug, Deserialize)]
pub struct IncomingMessage {
    pub chat: Chat,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Chat {
    pub id: i64,
}

#[derive(Debug, Deserialize)]
struct Me {
    username: Option<String>,
}

impl Bot {
    pub fn new(api: &str, token: Secret, client: reqwest::Client) -> Self {
        Self {
            api: api.trim_end_matches('/').to_owned(),
            token,
            client,
            name: Default::default(),
        }
    }

    fn method(&self, name: &str) -> String {
        format!("{}/bot{}/{name}", self.api, self.token.expose())
    }

    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        name: &str,
        body: serde_json::Value,
        timeout: Duration,
    ) -> Result<T, Failure> {
        let answer = self
            .client
            .post(self.method(name))
            .timeout(timeout)
            .json(&body)
            .send()
            .await
            // The URL holds the bot's token: errors are told without it.
            .map_err(|e| Failure::now(request_error(&e.without_url())))?;
        let status = answer.status().as_u16();
        // A full getUpdates batch is well under this; a mirror answering more is not read on.
        let body = crate::net::read_at_most(answer, MAX_ANSWER_BYTES).await;
        let parsed: Answer<T> = serde_json::from_slice(&body).map_err(|_| {
            Failure::with_status(
                status,
                format!("Telegram answered HTTP {status} without its JSON"),
            )
        })?;
        match (parsed.ok, parsed.result) {
            (true, Some(result)) => Ok(result),
            _ => {
                let words = parsed
                    .description
                    .unwrap_or_else(|| format!("HTTP {status}"));
                let mut failure =
                    Failure::with_status(status, format!("Telegram: {}", quote(&words)));
                failure.retry_after = parsed
                    .parameters
                    .and_then(|p| p.retry_after)
                    .map(Duration::from_secs);
                Err(failure)
            }
        }
    }

    pub async fn send(&self, chat_id: i64, message: &Message) -> Result<u16, Failure> {
        self.send_text(chat_id, &format!("{}\n\n{}", message.title, message.text))
            .await
    }

    pub async fn send_text(&self, chat_id: i64, text: &str) -> Result<u16, Failure> {
        let mut text = text.trim_end().to_owned();
        if text.chars().count() > 4000 {
            text = text.chars().take(3999).collect::<String>() + "…";
        }
        // Plain text (no parse_mode): nothing a payer wrote is read as markup.
        self.call::<serde_json::Value>(
            "sendMessage",
            json!({"chat_id": chat_id, "text": text, "disable_web_page_preview": true}),
            Duration::from_secs(10),
        )
        .await
        .map(|_| 200)
    }

    /// The bot's @name, for the `t.me` link people open.
    pub async fn username(&self) -> Result<String, Failure> {
        self.name
            .get_or_try_init(|| async {
                let me: Me = self
                    .call("getMe", json!({}), Duration::from_secs(10))
                    .await?;
                me.username
                    .ok_or_else(|| Failure::now("Telegram: the bot has no username".into()))
            })
            .await
            .cloned()
    }

    /// Updates after `offset`, waiting up to `wait` for one.
    pub async fn updates(&self, offset: i64, wait: Duration) -> Result<Vec<Update>, Failure> {
        self.call(
            "getUpdates",
            json!({"offset": offset, "timeout": wait.as_secs(), "allowed_updates": ["message"]}),
            wait + Duration::from_secs(10),
        )
        .await
    }
}

/// Where the updates already handled end, in the store: a restart (or another instance taking
/// over) goes on from there.
const OFFSET_KEY: &str = "telegram.offset";
/// How long one `getUpdates` waits for a message.
const LONG_POLL: Duration = Duration::from_secs(25);

/// Reads what people send the bot, forever, and answers each message with what `answer`
/// says. Text is all it reads; a message is handled once (the offset is stored after it).
pub async fn listen<F, Fut>(bot: Bot, db: crate::store::Db, answer: F)
where
    F: Fn(i64, String) -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let mut offset = match db.point(|s| s.meta(OFFSET_KEY)).await {
        Ok(Some(bytes)) => <[u8; 8]>::try_from(bytes.as_slice())
            .map(i64::from_be_bytes)
            .unwrap_or(0),
        _ => 0,
    };
    let mut failures = 0u32;
    loop {
        let updates = match bot.updates(offset, LONG_POLL).await {
            Ok(updates) => {
                failures = 0;
                updates
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = e
                    .retry_after
                    .unwrap_or_else(|| Duration::from_secs(2u64.saturating_pow(failures.min(6))));
                tracing::warn!(error = %e.reason, wait_secs = wait.as_secs(), "could not read the Telegram bot's messages");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        for update in updates {
            offset = offset.max(update.update_id.saturating_add(1));
            let Some(message) = update.message else {
                continue;
            };
            let Some(text) = message.text.filter(|t| t.len() <= 4096) else {
                continue;
            };
            if let Some(reply) = answer(message.chat.id, text).await {
                if let Err(e) = bot.send_text(message.chat.id, &reply).await {
                    tracing::warn!(error = %e.reason, "could not answer a Telegram chat");
                }
            }
            let bytes = offset.to_be_bytes().to_vec();
            if let Err(e) = db.commit(move |s| s.put_meta(OFFSET_KEY, &bytes)).await {
                tracing::error!(error = %e, "could not store the Telegram offset");
            }
        }
    }
}
