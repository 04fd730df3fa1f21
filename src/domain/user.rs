use serde::{Deserialize, Serialize};
use validator::Validate;

use super::success_action::{check_text, success_action};
use super::{
    BackendName, CurrencyCode, Decimal, Domain, Image, Msat, NotifySettings, NwcUri, PayerDataSpec,
    RelayUrl, Secret, SuccessAction, Username, WebhookUrl, MAX_COMMENT_ALLOWED,
};

const DEFAULT_MIN_SENDABLE: Msat = Msat::from_msat(1_000);
const DEFAULT_MAX_SENDABLE: Msat = Msat::from_msat(10_000_000_000);
const DEFAULT_COMMENT_ALLOWED: u16 = 255;

/// A recipient: everything needed to serve their address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: Username,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    pub min_sendable: Msat,
    pub max_sendable: Msat,
    pub comment_allowed: u16,
    #[serde(default, skip_serializing_if = "PayerDataSpec::is_empty")]
    pub payer_data: PayerDataSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_action: Option<SuccessAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<WebhookUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<Secret>,
    /// The configured backend serving this user; `None`: the default one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<BackendName>,
    /// The user's own wallet, over Nostr Wallet Connect: its connection URI, checked when
    /// set. It serves the user instead of any configured backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nwc: Option<NwcUri>,
    /// The currency the user thinks in (an offered currency's code): listed first in the
    /// payRequest's currencies, and the one `fiat_min`/`fiat_max` are in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<CurrencyCode>,
    /// Limits in `currency`, in its unit ("1000", "5.00"; stored as those strings): the
    /// payRequest's range follows the rate, within `min_sendable`/`max_sendable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiat_min: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiat_max: Option<Decimal>,
    /// The domain the address lives on; `None`: the server's primary domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Domain>,
    /// NIP-05: the user's Nostr public key (lowercase hex) and relays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nostr_pubkey: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nostr_relays: Vec<RelayUrl>,
    /// Where the user hears of payments, and how.
    #[serde(default, skip_serializing_if = "NotifySettings::is_default")]
    pub notify: NotifySettings,
    #[serde(default)]
    pub disabled: bool,
    pub created_at: u64,
}

/// Relays a user may list for NIP-05.
pub const MAX_NOSTR_RELAYS: usize = 10;

/// Settings for creating or changing a user. Absent fields keep their value (or default);
/// an empty string clears an optional text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    #[validate(length(min = 1, max = 639, message = "must be 1 to 639 characters"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[validate(length(max = 4000, message = "must be at most 4000 characters"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    /// Remove the picture (an `image` given too replaces it instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_image: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_sendable: Option<Msat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sendable: Option<Msat>,
    #[validate(range(max = MAX_COMMENT_ALLOWED, message = "must be at most 2000"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_allowed: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_data: Option<PayerDataSpec>,
    #[validate(length(max = 144, message = "must be at most 144 characters (LUD-09)"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Replace the webhook secret (or make one, for per-invoice webhooks set by apps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_webhook_secret: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// The currency the user thinks in, e.g. "CLP"; "" removes it (and its limits).
    #[validate(length(max = 8, message = "must be at most 8 characters"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The smallest payment in `currency`, a decimal string ("1000", "5.00"); "" removes it.
    #[validate(length(max = 40, message = "must be at most 40 characters"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiat_min: Option<String>,
    /// The largest payment in `currency`; "" removes it.
    #[validate(length(max = 40, message = "must be at most 40 characters"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiat_max: Option<String>,
    /// The user's own wallet: a Nostr Wallet Connect URI (receive-only); "" removes it.
    #[validate(length(max = 2048, message = "must be at most 2048 characters"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nwc: Option<String>,
    /// A configured backend's name; "" returns the user to the default backend.
    #[validate(length(max = 64, message = "must be at most 64 characters"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// One of the configured domains; "" moves the user to the primary domain.
    #[validate(length(max = 253, message = "must be at most 253 characters"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// NIP-05 public key, hex or npub; "" removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nostr_pubkey: Option<String>,
    /// NIP-05 relays (ws:// or wss://); an empty list removes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nostr_relays: Option<Vec<String>>,
    /// Notification channels, `kind:value` (nostr:npub1…, email:…, ntfy:<topic URL>,
    /// telegram:<chat id>); they replace the current ones, and an empty list removes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Vec<String>>,
    /// One summary per period (`10m`) instead of a message per payment; "off" for each.
    #[validate(length(max = 32, message = "must be at most 32 characters"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_digest: Option<String>,
    /// Whether comments and payer data appear in notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_details: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    Invalid(String),
}

/// What creating or updating a user needs from outside the domain.
pub struct UserContext<'a> {
    /// Host (and port) of the public URL: success URLs must point there (LUD-09).
    pub domain: &'a str,
    pub now: u64,
    /// Makes a fresh webhook secret when a webhook URL is first set.
    pub new_secret: &'a dyn Fn() -> Secret,
}

impl User {
    pub fn create(
        name: Username,
        settings: UserSettings,
        ctx: &UserContext<'_>,
    ) -> Result<Self, UserError> {
        let user = Self {
            description: format!("Pay {}@{}", name, ctx.domain),
            name,
            long_description: None,
            image: None,
            min_sendable: DEFAULT_MIN_SENDABLE,
            max_sendable: DEFAULT_MAX_SENDABLE,
            comment_allowed: DEFAULT_COMMENT_ALLOWED,
            payer_data: PayerDataSpec::default(),
            success_action: None,
            webhook_url: None,
            webhook_secret: None,
            backend: None,
            nwc: None,
            currency: None,
            fiat_min: None,
            fiat_max: None,
            domain: None,
            nostr_pubkey: None,
            nostr_relays: Vec::new(),
            notify: NotifySettings::default(),
            disabled: false,
            created_at: ctx.now,
        };
        user.updated(settings, ctx)
    }

    /// Returns this user with `settings` applied, or why they cannot be.
    pub fn updated(
        mut self,
        settings: UserSettings,
        ctx: &UserContext<'_>,
    ) -> Result<Self, UserError> {
        settings
            .validate()
            .map_err(|e| UserError::Invalid(describe(&e)))?;
        let UserSettings {
            description,
            long_description,
            image,
            remove_image,
            min_sendable,
            max_sendable,
            comment_allowed,
            payer_data,
            success_message,
            success_url,
            webhook_url,
            rotate_webhook_secret,
            disabled,
            currency,
            fiat_min,
            fiat_max,
            nwc,
            backend,
            domain,
            nostr_pubkey,
            nostr_relays,
            notify,
            notify_digest,
            notify_details,
        } = settings;
        if let Some(d) = description {
            check_text("description", &d, false)?;
            self.description = d;
        }
        if let Some(d) = long_description {
            check_text("long_description", &d, true)?;
            self.long_description = Some(d).filter(|d| !d.is_empty());
        }
        if remove_image == Some(true) {
            self.image = None;
        }
        if let Some(image) = image {
            image.check()?;
            self.image = Some(image);
        }
        self.min_sendable = min_sendable.unwrap_or(self.min_sendable);
        self.max_sendable = max_sendable.unwrap_or(self.max_sendable);
        if self.max_sendable > Msat::MAX_MONEY {
            return Err(UserError::Invalid(format!(
                "max_sendable ({}) is more than 21 million bitcoin ({} msat)",
                self.max_sendable.msat(),
                Msat::MAX_MONEY.msat()
            )));
        }
        if self.min_sendable.msat() < 1 || self.min_sendable > self.max_sendable {
            return Err(UserError::Invalid(format!(
                "min_sendable ({}) must be at least 1 msat and at most max_sendable ({})",
                self.min_sendable.msat(),
                self.max_sendable.msat()
            )));
        }
        self.comment_allowed = comment_allowed.unwrap_or(self.comment_allowed);
        self.payer_data = payer_data.unwrap_or(self.payer_data);
        self.success_action = success_action(
            self.success_action,
            success_message,
            success_url,
            ctx.domain,
        )?;
        if let Some(url) = webhook_url {
            if url.is_empty() {
                // The secret stays: apps' per-invoice webhooks are signed with it too.
                self.webhook_url = None;
            } else {
                let parsed = WebhookUrl::parse(&url)
                    .map_err(|e| UserError::Invalid(format!("webhook_url: {e}")))?;
                self.webhook_secret = self.webhook_secret.or_else(|| Some((ctx.new_secret)()));
                self.webhook_url = Some(parsed);
            }
        }
        if rotate_webhook_secret == Some(true) {
            self.webhook_secret = Some((ctx.new_secret)());
        }
        if let Some(domain) = domain {
            // The operator checks it names a configured domain.
            self.domain = if domain.is_empty() {
                None
            } else {
                Some(
                    Domain::parse(&domain)
                        .map_err(|e| UserError::Invalid(format!("domain: {e}")))?,
                )
            };
        }
        if let Some(key) = nostr_pubkey {
            self.nostr_pubkey = if key.is_empty() {
                None
            } else {
                Some(
                    nostr::PublicKey::parse(key.trim())
                        .map_err(|_| {
                            UserError::Invalid(
                                "nostr_pubkey: not a 64-hex or npub public key".into(),
                            )
                        })?
                        .to_hex(),
                )
            };
        }
        if let Some(relays) = nostr_relays {
            if relays.len() > MAX_NOSTR_RELAYS {
                return Err(UserError::Invalid(format!(
                    "nostr_relays: at most {MAX_NOSTR_RELAYS}"
                )));
            }
            self.nostr_relays = relays
                .iter()
                .map(|relay| {
                    RelayUrl::parse(relay)
                        .map_err(|e| UserError::Invalid(format!("nostr_relays: {e}")))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(channels) = notify {
            self.notify
                .set_channels(&channels)
                .map_err(|e| UserError::Invalid(e.to_string()))?;
        }
        if let Some(digest) = notify_digest {
            self.notify
                .set_digest(&digest)
                .map_err(|e| UserError::Invalid(e.to_string()))?;
        }
        self.notify.details = notify_details.unwrap_or(self.notify.details);
        self.disabled = disabled.unwrap_or(self.disabled);
        self.apply_currency(currency, fiat_min, fiat_max)?;
        if let Some(uri) = nwc {
            self.nwc = if uri.trim().is_empty() {
                None
            } else {
                Some(NwcUri::parse(&uri).map_err(|e| UserError::Invalid(format!("nwc: {e}")))?)
            };
        }
        if let Some(name) = backend {
            self.backend = if name.is_empty() {
                None
            } else {
                Some(
                    BackendName::parse(&name)
                        .map_err(|e| UserError::Invalid(format!("backend: {e}")))?,
                )
            };
        }
        Ok(self)
    }
}

impl User {
    /// The currency and its limits, as given ("" removes).
    fn apply_currency(
        &mut self,
        currency: Option<String>,
        fiat_min: Option<String>,
        fiat_max: Option<String>,
    ) -> Result<(), UserError> {
        if let Some(code) = currency {
            if code.trim().is_empty() {
                self.currency = None;
                self.fiat_min = None;
                self.fiat_max = None;
            } else {
                self.currency = Some(
                    CurrencyCode::parse(&code)
                        .map_err(|e| UserError::Invalid(format!("currency: {e}")))?,
                );
            }
        }
        let limit = |name: &str, raw: String| -> Result<Option<Decimal>, UserError> {
            if raw.trim().is_empty() {
                return Ok(None);
            }
            let value = Decimal::parse(raw.trim())
                .map_err(|e| UserError::Invalid(format!("{name}: {e}")))?;
            if value.is_zero() {
                return Err(UserError::Invalid(format!(
                    "{name}: must be more than zero"
                )));
            }
            Ok(Some(value))
        };
        if let Some(raw) = fiat_min {
            self.fiat_min = limit("fiat_min", raw)?;
        }
        if let Some(raw) = fiat_max {
            self.fiat_max = limit("fiat_max", raw)?;
        }
        if self.currency.is_none() && (self.fiat_min.is_some() || self.fiat_max.is_some()) {
            return Err(UserError::Invalid(
                "fiat_min and fiat_max need a currency (--currency)".into(),
            ));
        }
        if let (Some(min), Some(max)) = (&self.fiat_min, &self.fiat_max) {
            if min > max {
                return Err(UserError::Invalid(format!(
                    "fiat_min ({min}) must be at most fiat_max ({max})"
                )));
            }
        }
        Ok(())
    }

    /// The settings that describe this user, as `user add` would take them.
    pub fn to_settings(&self) -> UserSettings {
        let (success_message, success_url) = match &self.success_action {
            None => (None, None),
            Some(SuccessAction::Message { message }) => (Some(message.clone()), None),
            Some(SuccessAction::Url { description, url }) => {
                (Some(description.clone()), Some(url.clone()))
            }
        };
        UserSettings {
            description: Some(self.description.clone()),
            long_description: self.long_description.clone(),
            image: self.image.clone(),
            remove_image: None,
            min_sendable: Some(self.min_sendable),
            max_sendable: Some(self.max_sendable),
            comment_allowed: Some(self.comment_allowed),
            payer_data: Some(self.payer_data.clone()),
            success_message,
            success_url,
            webhook_url: self.webhook_url.as_ref().map(|u| u.to_string()),
            rotate_webhook_secret: None,
            disabled: Some(self.disabled),
            nwc: self.nwc.as_ref().map(NwcUri::expose),
            currency: self.currency.as_ref().map(CurrencyCode::to_string),
            fiat_min: self.fiat_min.as_ref().map(Decimal::to_string),
            fiat_max: self.fiat_max.as_ref().map(Decimal::to_string),
            backend: self.backend.as_ref().map(|b| b.to_string()),
            domain: self.domain.as_ref().map(|d| d.to_string()),
            nostr_pubkey: self.nostr_pubkey.clone(),
            nostr_relays: Some(self.nostr_relays.iter().map(|r| r.to_string()).collect()),
            notify: Some(
                self.notify
                    .channels
                    .iter()
                    .map(|c| c.to_setting())
                    .collect(),
            ),
            notify_digest: Some(
                self.notify
                    .digest_minutes
                    .map(|m| format!("{m}m"))
                    .unwrap_or_else(|| "off".into()),
            ),
            notify_details: Some(self.notify.details),
        }
    }

    /// Whether this user (from a backup, say) obeys every rule `user add` applies; `domain` is
    /// where the address lives (success URLs must point there).
    pub fn check(&self, domain: &str) -> Result<(), UserError> {
        let ctx = UserContext {
            domain,
            now: self.created_at,
            new_secret: &|| Secret::new(""),
        };
        User::create(self.name.clone(), self.to_settings(), &ctx).map(|_| ())
    }
}

fn describe(errors: &validator::ValidationErrors) -> String {
    let mut parts: Vec<String> = errors
        .field_errors()
        .iter()
        .flat_map(|(field, errs)| {
            errs.iter().map(move |e| match &e.message {
                Some(m) => format!("{field}: {m}"),
                None => format!("{field}: invalid ({})", e.code),
            })
        })
        .collect();
    parts.sort();
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> UserContext<'static> {
        UserContext {
            domain: "example.com",
            now: 1,
            new_secret: &|| Secret::new("s3cret"),
        }
    }

    fn alice(settings: UserSettings) -> Result<User, UserError> {
        User::create(Username::parse("alice").unwrap(), settings, &ctx())
    }

    #[test]
    fn new_users_get_sensible_defaults() {
        let user = alice(UserSettings::default()).unwrap();
        assert_eq!(user.description, "Pay alice@example.com");
        assert_eq!(user.min_sendable, Msat::from_msat(1000));
        assert!(user.webhook_secret.is_none());
    }

    #[test]
    fn refuses_inverted_ranges_and_bad_texts() {
        let inverted = UserSettings {
            min_sendable: Some(Msat::from_msat(5000)),
            max_sendable: Some(Msat::from_msat(1000)),
            ..Default::default()
        };
        assert!(alice(inverted).is_err());
        let zero = UserSettings {
            min_sendable: Some(Msat::from_msat(0)),
            ..Default::default()
        };
        assert!(alice(zero).is_err());
        let beyond_all_bitcoin = UserSettings {
            max_sendable: Some(Msat::from_msat(Msat::MAX_MONEY.msat() + 1)),
            ..Default::default()
        };
        let err = alice(beyond_all_bitcoin).unwrap_err().to_string();
        assert!(err.contains("21 million bitcoin"), "{err}");
        let all_bitcoin = UserSettings {
            max_sendable: Some(Msat::MAX_MONEY),
            ..Default::default()
        };
        assert!(alice(all_bitcoin).is_ok());
        let control = UserSettings {
            description: Some("a\u{7}b".into()),
            ..Default::default()
        };
        assert!(alice(control).is_err());
        let long = UserSettings {
            success_message: Some("x".repeat(145)),
            ..Default::default()
        };
        let err = alice(long).unwrap_err().to_string();
        assert!(err.contains("success_message"), "{err}");
    }

    #[test]
    fn success_urls_must_stay_on_the_domain() {
        let foreign = UserSettings {
            success_url: Some("https://evil.test/x".into()),
            ..Default::default()
        };
        assert!(alice(foreign).is_err());
        let ours = UserSettings {
            success_url: Some("https://example.com/thanks".into()),
            success_message: Some("Thanks".into()),
            ..Default::default()
        };
        assert_eq!(
            alice(ours).unwrap().success_action,
            Some(SuccessAction::Url {
                description: "Thanks".into(),
                url: "https://example.com/thanks".into()
            })
        );
    }

    #[test]
    fn setting_a_webhook_generates_a_secret_once() {
        let with_hook = UserSettings {
            webhook_url: Some("https://hooks.test/in".into()),
            ..Default::default()
        };
        let user = alice(with_hook).unwrap();
        assert_eq!(user.webhook_secret, Some(Secret::new("s3cret")));
        let cleared = user
            .updated(
                UserSettings {
                    webhook_url: Some(String::new()),
                    ..Default::default()
                },
                &ctx(),
            )
            .unwrap();
        assert!(cleared.webhook_url.is_none());
        assert!(
            cleared.webhook_secret.is_some(),
            "kept for per-invoice webhooks"
        );
        let rotated = cleared
            .updated(
                UserSettings {
                    rotate_webhook_secret: Some(true),
                    ..Default::default()
                },
                &ctx(),
            )
            .unwrap();
        assert!(rotated.webhook_secret.is_some());
    }

    #[test]
    fn a_user_checks_out_exactly_when_its_settings_would_be_accepted() {
        let user = alice(UserSettings {
            long_description: Some("More".into()),
            success_url: Some("https://example.com/thanks".into()),
            webhook_url: Some("https://hooks.test/in".into()),
            nostr_relays: Some(vec!["wss://relay.example".into()]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(user.check("example.com"), Ok(()));
        let mut broken = user.clone();
        broken.min_sendable = Msat::from_msat(broken.max_sendable.msat() + 1);
        assert!(broken.check("example.com").is_err());
        let mut loud = user;
        loud.description = "a\u{7}b".into();
        assert!(loud.check("example.com").is_err());
    }
}
