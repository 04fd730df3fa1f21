//! What a person may change about their own address, and leaving. Every change goes through
//! the operator's user services (the one path the CLI and the admin API take); this only
//! decides which fields a person may touch: never the backend, the domain or `disabled`.

use serde::Deserialize;

use super::{refused, AccountError, Accounts};
use crate::domain::{Image, Msat, UserSettings, Username, MAX_IMAGE_BYTES};
use crate::operator::{Operator, UserView};
use crate::store::RecordKind;

/// The profile form, as typed. Empty optional fields clear what they set.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProfileForm {
    pub description: String,
    #[serde(default)]
    pub long_description: String,
    /// Sats, as typed.
    pub min_sats: String,
    pub max_sats: String,
    #[serde(default)]
    pub comment_allowed: String,
    #[serde(default)]
    pub success_message: String,
    #[serde(default)]
    pub currency: String,
}

/// The integrations form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WebhookForm {
    #[serde(default)]
    pub webhook_url: String,
}

/// How long a deleted account's name stays unclaimable, so nobody is paid in its place by
/// wallets and contacts that still know it.
pub const QUARANTINE: u64 = 30 * 24 * 3600;

fn sats(field: &str, raw: &str) -> Result<Msat, AccountError> {
    let sats: u64 = raw
        .trim()
        .parse()
        .map_err(|_| refused(format!("{field}: a whole number of sats.")))?;
    sats.checked_mul(1000)
        .map(Msat::from_msat)
        .ok_or_else(|| refused(format!("{field}: too large.")))
}

impl ProfileForm {
    fn settings(&self) -> Result<UserSettings, AccountError> {
        let optional = |s: &str| Some(s.trim().to_owned());
        let comment_allowed = match self.comment_allowed.trim() {
            "" => 0,
            raw => raw
                .parse()
                .map_err(|_| refused("Comment length: a whole number from 0 to 2000."))?,
        };
        Ok(UserSettings {
            description: Some(self.description.trim().to_owned()),
            long_description: optional(&self.long_description),
            min_sendable: Some(sats("Smallest payment", &self.min_sats)?),
            max_sendable: Some(sats("Largest payment", &self.max_sats)?),
            comment_allowed: Some(comment_allowed),
            success_message: optional(&self.success_message),
            currency: optional(&self.currency),
            ..UserSettings::default()
        })
    }
}

impl Accounts {
    /// Changes `user`'s profile as the form says.
    pub async fn update_profile(
        &self,
        operator: &Operator,
        user: &Username,
        form: &ProfileForm,
    ) -> Result<UserView, AccountError> {
        Ok(operator.update_user(user.clone(), form.settings()?).await?)
    }

    /// Sets (or, empty, removes) `user`'s webhook URL.
    pub async fn update_webhook(
        &self,
        operator: &Operator,
        user: &Username,
        form: &WebhookForm,
    ) -> Result<UserView, AccountError> {
        let settings = UserSettings {
            webhook_url: Some(form.webhook_url.trim().to_owned()),
            ..UserSettings::default()
        };
        Ok(operator.update_user(user.clone(), settings).await?)
    }

    /// Replaces `user`'s picture with `bytes` (PNG or JPEG, recognised by their first bytes,
    /// at most `MAX_IMAGE_BYTES`), or removes it.
    pub async fn update_picture(
        &self,
        operator: &Operator,
        user: &Username,
        picture: Option<&[u8]>,
    ) -> Result<UserView, AccountError> {
        let settings = match picture {
            Some(bytes) => UserSettings {
                image: Some(Image::from_bytes(bytes).map_err(|_| {
                    refused(format!(
                        "A picture is a PNG or JPEG file of at most {} KiB.",
                        MAX_IMAGE_BYTES / 1024
                    ))
                })?),
                ..UserSettings::default()
            },
            None => UserSettings {
                remove_image: Some(true),
                ..UserSettings::default()
            },
        };
        Ok(operator.update_user(user.clone(), settings).await?)
    }

    /// Connects `user`'s own wallet (an NWC URI) after trying it: a connection with problems is
    /// not saved. The report says what was found, and warns when the connection can spend.
    pub async fn connect_wallet(
        &self,
        operator: &Operator,
        user: &Username,
        uri: &str,
    ) -> Result<crate::operator::CheckReport, AccountError> {
        let uri = uri.trim();
        if uri.is_empty() {
            return Err(refused(
                "Paste the connection (nostr+walletconnect://…) from your wallet.",
            ));
        }
        let report = operator.check_user_wallet(uri).await?;
        if report.ok() {
            let settings = UserSettings {
                nwc: Some(uri.to_owned()),
                ..UserSettings::default()
            };
            operator.update_user(user.clone(), settings).await?;
        }
        Ok(report)
    }

    /// Goes back to the operator's backend: the person's wallet connection is forgotten.
    pub async fn disconnect_wallet(
        &self,
        operator: &Operator,
        user: &Username,
    ) -> Result<UserView, AccountError> {
        let settings = UserSettings {
            nwc: Some(String::new()),
            ..UserSettings::default()
        };
        Ok(operator.update_user(user.clone(), settings).await?)
    }

    /// A new webhook secret, shown once (in the view).
    pub async fn rotate_webhook_secret(
        &self,
        operator: &Operator,
        user: &Username,
    ) -> Result<UserView, AccountError> {
        let settings = UserSettings {
            rotate_webhook_secret: Some(true),
            ..UserSettings::default()
        };
        Ok(operator.update_user(user.clone(), settings).await?)
    }

    /// Deletes `user`'s address and account: the user goes (their invoices stay, as records
    /// of money, and follow retention), every way in and every session ends, and the name is
    /// held back for `QUARANTINE`.
    pub async fn delete_account(
        &self,
        operator: &Operator,
        user: &Username,
    ) -> Result<(), AccountError> {
        let until = self.now() + QUARANTINE;
        self.update::<u64, ()>(RecordKind::Quarantine, user.as_str(), |_| {
            Ok((Some(until), ()))
        })
        .await?;
        // Removing the user forgets the account with it (see `records::forget_person`).
        Ok(operator.remove_user(user).await?)
    }
}

impl Accounts {
    /// Names held back after their accounts were deleted, with the time each is free again.
    pub async fn quarantined(&self) -> Result<Vec<(String, u64)>, AccountError> {
        let now = self.now();
        let found = self
            .db
            .read(|s| s.records(RecordKind::Quarantine, "", 10_000))
            .await?;
        Ok(found
            .into_iter()
            .filter_map(|(name, bytes)| Some((name, super::decode::<u64>(&bytes).ok()?)))
            .filter(|(_, until)| *until > now)
            .collect())
    }
}
