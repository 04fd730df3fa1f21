//! Where the person behind an address hears that they were paid: their notification channels,
//! parsed from the `kind:value` form the CLI, the admin API and the pages all take.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use url::Url;

use super::{Secret, MAX_URL_BYTES};

/// Channels one person (or the operator) may have.
pub const MAX_CHANNELS: usize = 8;
/// Digests gather at most this long: longer would make a payment old news.
pub const MAX_DIGEST_MINUTES: u16 = 24 * 60;
/// The longest email address SMTP carries (RFC 5321's path limit, less the brackets).
const MAX_EMAIL_BYTES: usize = 254;

/// One way to reach someone.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Channel {
    /// A NIP-17 private message to this public key (lowercase hex).
    Nostr { pubkey: String },
    /// Mail to `address`, sent only once the address was confirmed by a link mailed to it.
    Email {
        address: String,
        #[serde(default)]
        verified: bool,
    },
    /// A topic on an ntfy server: `url` is the topic's URL, without credentials.
    Ntfy {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Secret>,
    },
    /// A Telegram chat the operator's bot writes to.
    Telegram { chat_id: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ChannelError(String);

impl Channel {
    /// `nostr:npub1…` (or hex), `email:a@b.example`, `ntfy:https://ntfy.sh/topic` (a token as
    /// the URL's password: `https://:tk_…@ntfy.sh/topic`), `telegram:<chat id>`.
    pub fn parse(raw: &str) -> Result<Self, ChannelError> {
        let raw = raw.trim();
        let (kind, value) = raw.split_once(':').ok_or_else(|| {
            ChannelError(format!(
                "'{}': use nostr:<npub>, email:<address>, ntfy:<topic URL> or telegram:<chat id>",
                shown(raw)
            ))
        })?;
        match kind.to_ascii_lowercase().as_str() {
            "nostr" => Self::nostr(value),
            "email" | "mailto" => Self::email(value),
            "ntfy" => Self::ntfy(value),
            "telegram" => Self::telegram(value),
            other => Err(ChannelError(format!(
                "'{}' is not a channel: use nostr, email, ntfy or telegram",
                shown(other)
            ))),
        }
    }

    fn nostr(value: &str) -> Result<Self, ChannelError> {
        let key = nostr::PublicKey::parse(value.trim()).map_err(|_| {
            ChannelError(format!(
                "nostr: '{}' is not an npub or a 64-hex public key",
                shown(value)
            ))
        })?;
        Ok(Self::Nostr {
            pubkey: key.to_hex(),
        })
    }

    fn email(value: &str) -> Result<Self, ChannelError> {
        let bad = |why: &str| ChannelError(format!("email: '{}' {why}", shown(value)));
        let value = value.trim();
        if value.len() > MAX_EMAIL_BYTES {
            return Err(bad("is longer than an address can be"));
        }
        // A bare address: no display name, no comments, nothing a header could be built from.
        if value.chars().any(|c| c.is_whitespace() || c.is_control())
            || value.contains(['<', '>', ',', ';', '"', '(', ')', '\\'])
        {
            return Err(bad("is not a plain email address"));
        }
        let address =
            lettre::Address::from_str(value).map_err(|_| bad("is not an email address"))?;
        if !address.domain().contains('.') {
            return Err(bad("has no domain to deliver to"));
        }
        Ok(Self::Email {
            address: format!(
                "{}@{}",
                address.user(),
                address.domain().to_ascii_lowercase()
            ),
            verified: false,
        })
    }

    fn ntfy(value: &str) -> Result<Self, ChannelError> {
        let bad = |why: String| ChannelError(format!("ntfy: {why}"));
        if value.len() > MAX_URL_BYTES {
            return Err(bad(format!("the URL is over {MAX_URL_BYTES} bytes")));
        }
        let mut url = Url::parse(value.trim()).map_err(|e| bad(format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(bad(
                "the topic URL must be http:// or https:// with a host".into()
            ));
        }
        if ntfy_topic(&url).is_none() {
            return Err(bad("the URL must end in one topic name (letters, digits, - and _, at most 64), like https://ntfy.sh/alice-x7".into()));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("the topic URL takes no query or fragment".into()));
        }
        let token = match (url.username(), url.password()) {
            ("", None) => None,
            ("", Some(token)) if !token.is_empty() => Some(Secret::new(
                percent_encoding::percent_decode_str(token)
                    .decode_utf8_lossy()
                    .into_owned(),
            )),
            _ => {
                return Err(bad(
                    "give an access token as the URL's password only: https://:tk_…@host/topic"
                        .into(),
                ))
            }
        };
        if token.as_ref().is_some_and(|t| {
            t.expose().len() > 256 || t.expose().chars().any(|c| c.is_control() || c == ' ')
        }) {
            return Err(bad("the access token is malformed".into()));
        }
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Ok(Self::Ntfy {
            url: url.to_string(),
            token,
        })
    }

    fn telegram(value: &str) -> Result<Self, ChannelError> {
        let value = value.trim();
        let digits = value.strip_prefix('-').unwrap_or(value);
        // Telegram's chat ids have at most 52 significant bits; groups' are negative.
        let chat_id = (!digits.is_empty()
            && digits.len() <= 16
            && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse::<i64>().ok())
        .flatten()
        .filter(|id| *id != 0 && id.unsigned_abs() < (1 << 52))
        .ok_or_else(|| {
            ChannelError(format!(
                "telegram: '{}' is not a chat id (a whole number, negative for groups)",
                shown(value)
            ))
        })?;
        Ok(Self::Telegram { chat_id })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Nostr { .. } => "nostr",
            Self::Email { .. } => "email",
            Self::Ntfy { .. } => "ntfy",
            Self::Telegram { .. } => "telegram",
        }
    }

    /// What names this channel in events and health records: the same channel set again has
    /// the same key (a token or a verification does not change it).
    pub fn key(&self) -> String {
        match self {
            Self::Nostr { pubkey } => format!("nostr:{pubkey}"),
            Self::Email { address, .. } => format!("email:{address}"),
            Self::Ntfy { url, .. } => format!("ntfy:{url}"),
            Self::Telegram { chat_id } => format!("telegram:{chat_id}"),
        }
    }

    /// The form `parse` takes, secrets included: what a backup or an edit form carries.
    pub fn to_setting(&self) -> String {
        match self {
            Self::Ntfy {
                url,
                token: Some(token),
            } => {
                let mut with = Url::parse(url).ok();
                if let Some(u) = with.as_mut() {
                    let _ = u.set_password(Some(token.expose()));
                }
                format!(
                    "ntfy:{}",
                    with.map(String::from).unwrap_or_else(|| url.clone())
                )
            }
            Self::Nostr { pubkey } => format!("nostr:{}", npub(pubkey)),
            other => other.key(),
        }
    }

    /// Whether messages may go there now: an email address only once confirmed.
    pub fn is_ready(&self) -> bool {
        !matches!(
            self,
            Self::Email {
                verified: false,
                ..
            }
        )
    }
}

/// What a person sees: the channel, with its token hidden.
impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nostr { pubkey } => write!(f, "nostr:{}", npub(pubkey)),
            Self::Ntfy { url, token } => {
                write!(f, "ntfy:{url}")?;
                if token.is_some() {
                    f.write_str(" (with an access token)")?;
                }
                Ok(())
            }
            Self::Email { address, .. } => write!(f, "email:{address}"),
            Self::Telegram { chat_id } => write!(f, "telegram:{chat_id}"),
        }
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn npub(hex: &str) -> String {
    use nostr::ToBech32;
    nostr::PublicKey::from_hex(hex)
        .ok()
        .and_then(|k| k.to_bech32().ok())
        .unwrap_or_else(|| hex.to_owned())
}

/// The topic an ntfy URL names: its one path segment.
pub fn ntfy_topic(url: &Url) -> Option<&str> {
    let mut segments = url.path_segments()?;
    let topic = segments.next()?;
    let valid = !topic.is_empty()
        && topic.len() <= 64
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (valid && segments.next().is_none()).then_some(topic)
}

/// Input quoted back in errors: short, and without control characters.
fn shown(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(80).collect()
}

/// A person's notification choices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifySettings {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<Channel>,
    /// One summary per this many minutes instead of a message per payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_minutes: Option<u16>,
    /// Whether comments and payer data go into messages (which leave the server to an email
    /// host, ntfy or Telegram).
    #[serde(default = "yes")]
    pub details: bool,
}

fn yes() -> bool {
    true
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            channels: Vec::new(),
            digest_minutes: None,
            details: true,
        }
    }
}

impl NotifySettings {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The channels `raw` names (`[]` or `[""]`: none). A channel that was set already keeps
    /// what it had earned (an email address stays confirmed).
    pub fn set_channels(&mut self, raw: &[String]) -> Result<(), ChannelError> {
        let raw: Vec<&str> = raw
            .iter()
            .map(|r| r.trim())
            .filter(|r| !r.is_empty())
            .collect();
        if raw.len() > MAX_CHANNELS {
            return Err(ChannelError(format!(
                "notify: at most {MAX_CHANNELS} channels"
            )));
        }
        let mut channels: Vec<Channel> = Vec::with_capacity(raw.len());
        for one in raw {
            let mut channel =
                Channel::parse(one).map_err(|e| ChannelError(format!("notify: {e}")))?;
            if channels.iter().any(|c| c.key() == channel.key()) {
                continue;
            }
            let key = channel.key();
            if let Channel::Email { verified, .. } = &mut channel {
                *verified = self.channels.iter().any(|c| c.key() == key && c.is_ready());
            }
            channels.push(channel);
        }
        self.channels = channels;
        Ok(())
    }

    /// `10m`, `1h`; `off`, `0` or `""`: a message per payment.
    pub fn set_digest(&mut self, raw: &str) -> Result<(), ChannelError> {
        let raw = raw.trim();
        if matches!(
            raw.to_ascii_lowercase().as_str(),
            "" | "0" | "off" | "no" | "none"
        ) {
            self.digest_minutes = None;
            return Ok(());
        }
        let bad = || {
            ChannelError(format!(
                "notify_digest: '{}' is not a period of 1 minute to 24 hours (10m, 1h) or off",
                shown(raw)
            ))
        };
        let period = humantime::parse_duration(raw).map_err(|_| bad())?;
        let minutes = period.as_secs() / 60;
        if period.as_secs() % 60 != 0 || minutes == 0 || minutes > u64::from(MAX_DIGEST_MINUTES) {
            return Err(bad());
        }
        self.digest_minutes = Some(minutes as u16);
        Ok(())
    }

    pub fn channel(&self, key: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.key() == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NPUB: &str = "npub1sg6plzptd64u62a878hep2kev88swjh3tw00gjsfl8f237lmu63q0uf63m";

    #[test]
    fn parses_each_kind_of_channel() {
        let nostr = Channel::parse(&format!("nostr:{NPUB}")).unwrap();
        assert_eq!(nostr.kind(), "nostr");
        assert_eq!(nostr.to_setting(), format!("nostr:{NPUB}"));
        assert_eq!(
            Channel::parse("email:Alice@Example.ORG").unwrap().key(),
            "email:Alice@example.org"
        );
        let ntfy = Channel::parse("ntfy:https://:tk_abc@ntfy.sh/alice-x7").unwrap();
        assert_eq!(ntfy.key(), "ntfy:https://ntfy.sh/alice-x7");
        assert_eq!(ntfy.to_setting(), "ntfy:https://:tk_abc@ntfy.sh/alice-x7");
        assert!(!ntfy.to_string().contains("tk_abc"), "{ntfy}");
        assert!(!format!("{ntfy:?}").contains("tk_abc"));
        assert_eq!(
            Channel::parse("telegram:-1001234567890").unwrap(),
            Channel::Telegram {
                chat_id: -1001234567890
            }
        );
    }

    #[test]
    fn refuses_bad_channels_with_the_reason() {
        for (bad, says) in [
            ("nostr:npub1nope", "not an npub"),
            ("email:alice", "not an email address"),
            ("email:alice@localhost", "no domain"),
            ("email:Alice <a@b.example>", "plain email address"),
            (
                "email:a@b.example\r\nBcc: evil@x.example",
                "plain email address",
            ),
            ("ntfy:ftp://ntfy.sh/x", "http"),
            ("ntfy:https://ntfy.sh/", "topic name"),
            ("ntfy:https://ntfy.sh/a/b", "topic name"),
            ("ntfy:https://user:pw@ntfy.sh/a", "password only"),
            ("telegram:abc", "not a chat id"),
            ("telegram:0", "not a chat id"),
            ("telegram:99999999999999999999", "not a chat id"),
            ("pager:555", "not a channel"),
            ("just words", "use nostr:"),
        ] {
            let err = Channel::parse(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
            assert!(!err.chars().any(char::is_control), "{err:?}");
        }
    }

    #[test]
    fn setting_the_same_address_again_keeps_it_confirmed() {
        let mut settings = NotifySettings::default();
        settings
            .set_channels(&["email:a@b.example".into()])
            .unwrap();
        if let Channel::Email { verified, .. } = &mut settings.channels[0] {
            *verified = true;
        }
        settings
            .set_channels(&["email:a@b.example".into(), "telegram:42".into()])
            .unwrap();
        assert!(settings.channels[0].is_ready());
        settings
            .set_channels(&["email:c@b.example".into()])
            .unwrap();
        assert!(!settings.channels[0].is_ready());
        settings.set_channels(&["".into()]).unwrap();
        assert!(settings.channels.is_empty());
        let many: Vec<String> = (1..=9).map(|n| format!("telegram:{n}")).collect();
        assert!(settings.set_channels(&many).is_err());
    }

    #[test]
    fn digests_are_whole_minutes_up_to_a_day() {
        let mut s = NotifySettings::default();
        s.set_digest("10m").unwrap();
        assert_eq!(s.digest_minutes, Some(10));
        s.set_digest("off").unwrap();
        assert_eq!(s.digest_minutes, None);
        for bad in ["30s", "25h", "90s", "soon"] {
            assert!(s.set_digest(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn channel_parsing_never_panics(raw in "\\PC{0,300}") {
            let _ = Channel::parse(&raw);
        }

        #[test]
        fn parsed_channels_parse_again_to_themselves(
            kind in prop::sample::select(vec!["email:", "ntfy:https://ntfy.sh/", "telegram:"]),
            tail in "[a-z0-9]{1,20}",
        ) {
            let raw = match kind {
                "email:" => format!("email:{tail}@x.example"),
                "telegram:" => format!("telegram:1{}", tail.bytes().map(|b| (b % 10).to_string()).collect::<String>().chars().take(12).collect::<String>()),
                _ => format!("{kind}{tail}"),
            };
            let channel = Channel::parse(&raw).unwrap();
            prop_assert_eq!(Channel::parse(&channel.to_setting()).unwrap(), channel);
        }
    }
}
