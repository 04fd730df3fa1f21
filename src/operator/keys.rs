//! Keys: apps' API keys, the server's Nostr key, and the whole store as a backup.

use super::{no_user, ApiKeyCreated, ApiKeyView, NostrView, Operator, OperatorError};
use crate::domain::{ApiKey, Username};
use crate::nostr::IdentityError;

impl Operator {
    /// A new API key for `user`: returned once, stored only as a hash.
    pub async fn create_api_key(&self, user: &Username) -> Result<ApiKeyCreated, OperatorError> {
        let name = user.clone();
        if self.db.point(move |s| s.user(&name)).await?.is_none() {
            return Err(no_user(user));
        }
        let (record, key) = ApiKey::issue(user.clone(), self.random.bytes32(), self.clock.unix());
        let stored = record.clone();
        self.db.commit(move |s| s.put_api_key(&stored)).await?;
        Ok(ApiKeyCreated {
            key,
            view: ApiKeyView::of(&record),
        })
    }

    pub async fn api_keys(
        &self,
        user: Option<&Username>,
    ) -> Result<Vec<ApiKeyView>, OperatorError> {
        let mut keys = self.db.read(|s| s.api_keys()).await?;
        keys.retain(|k| user.is_none_or(|u| &k.user == u));
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys.iter().map(ApiKeyView::of).collect())
    }

    /// Revokes a key by its id (`key_...`); requests with it are refused from now on.
    pub async fn revoke_api_key(&self, id: &str) -> Result<ApiKeyView, OperatorError> {
        let id = id.to_owned();
        let now = self.clock.unix();
        let revoked = self
            .db
            .commit(move |s| {
                let Some(mut key) = s.api_keys()?.into_iter().find(|k| k.id == id) else {
                    return Ok(None);
                };
                key.revoked_at.get_or_insert(now);
                s.put_api_key(&key)?;
                Ok(Some(key))
            })
            .await?
            .ok_or_else(|| OperatorError::NotFound("no such API key".into()))?;
        Ok(ApiKeyView::of(&revoked))
    }

    pub fn nostr(&self) -> NostrView {
        NostrView::of(&self.nostr.public_key_hex())
    }

    /// A new key for zap receipts; wallets see the new `nostrPubkey` at once.
    pub async fn rotate_nostr_key(&self) -> Result<NostrView, OperatorError> {
        let public_key = self
            .nostr
            .rotate(&self.db, self.random.as_ref())
            .await
            .map_err(|e| match e {
                IdentityError::Store(e) => OperatorError::Store(e),
                other => OperatorError::Conflict(other.to_string()),
            })?;
        self.directory.set_nostr_key(public_key.clone());
        tracing::info!(nostr_pubkey = %public_key, "Nostr key rotated");
        Ok(NostrView::of(&public_key))
    }

    /// The whole store as a backup document: on sled, one consistent moment of it.
    pub async fn backup(&self) -> Result<crate::backup::Backup, OperatorError> {
        let now = self.clock.unix();
        Ok(self
            .db
            .snapshot(move |s| crate::backup::export(s, now))
            .await?)
    }
}
