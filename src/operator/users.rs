//! Users: who has an address here, and how it is served.

use super::{no_user, Operator, OperatorError, UserView};
use crate::clock::Random;
use crate::domain::{Domain, Metadata, Secret, User, UserContext, UserSettings, Username};
use crate::net::WebhookUrlError;
use crate::store::{Store, StoreError};

/// What a user write decided: the user to store and show, with something extra, or why not.
type Decision<T> = Result<(User, T), OperatorError>;

fn webhook_secret(random: &dyn Random) -> Secret {
    Secret::new(format!("whsec_{}", hex::encode(random.bytes32())))
}

impl Operator {
    pub async fn users(&self) -> Result<Vec<UserView>, OperatorError> {
        let users = self.db.read(|s| s.users()).await?;
        Ok(users
            .iter()
            .map(|u| UserView::of(u, &self.domains, false))
            .collect())
    }

    /// The first user by name, if any (what the start-up banner shows).
    pub async fn first_user(&self) -> Result<Option<UserView>, OperatorError> {
        let users = self.db.read(|s| s.first_users(1)).await?;
        Ok(users.first().map(|u| UserView::of(u, &self.domains, false)))
    }

    pub async fn user(&self, name: &Username) -> Result<UserView, OperatorError> {
        let found = name.clone();
        let user = self
            .db
            .point(move |s| s.user(&found))
            .await?
            .ok_or_else(|| no_user(name))?;
        let mut view = UserView::of(&user, &self.domains, false);
        let marks = crate::notify::health_of(&self.db, Some(name)).await?;
        view.notify = user
            .notify
            .channels
            .iter()
            .map(|c| super::ChannelView::of(c, &marks))
            .collect();
        let found = name.clone();
        let offer = self
            .db
            .point(move |s| crate::offers::stored(s, &found))
            .await?;
        match offer.filter(|o| crate::bip353::can_have_names(&o.domain)) {
            Some(offer) => view.bip353 = Some(format!("₿{}@{}", offer.user, offer.domain)),
            None => {
                view.lnurl_only =
                    Some(self.offers.lnurl_only_because(&user).unwrap_or_else(|| {
                        "no offer yet (made within a minute by the server)".into()
                    }))
            }
        }
        // Known only to a server that reads prices.
        if self.prices.has_read() {
            view.not_payable = crate::lnurl::Sendable::of(&user, &self.prices)
                .held
                .map(|held| held.to_string());
        }
        Ok(view)
    }

    /// Creates a user. The view shows the webhook secret, this once.
    pub async fn add_user(
        &self,
        name: Username,
        settings: UserSettings,
    ) -> Result<UserView, OperatorError> {
        self.vet(&settings).await?;
        let domain = self.domain_for(&settings, None)?;
        let now = self.clock.unix();
        let random = self.random.clone();
        let (user, ()) = self
            .write_user(move |store| {
                if store.user(&name)?.is_some() {
                    return Ok(Err(OperatorError::Conflict(format!(
                        "user '{name}' already exists"
                    ))));
                }
                let ctx = UserContext {
                    domain: domain.as_str(),
                    now,
                    new_secret: &|| webhook_secret(random.as_ref()),
                };
                Ok(User::create(name, settings, &ctx)
                    .map(|user| (user, ()))
                    .map_err(|e| OperatorError::Invalid(e.to_string())))
            })
            .await?;
        self.ask_to_confirm(&user, &[]).await;
        Ok(UserView::of(&user, &self.domains, true))
    }

    /// Changes a user. The view shows the webhook secret only if this change created one.
    pub async fn update_user(
        &self,
        name: Username,
        settings: UserSettings,
    ) -> Result<UserView, OperatorError> {
        self.vet(&settings).await?;
        let requested = settings
            .domain
            .as_ref()
            .map(|_| self.domain_for(&settings, None))
            .transpose()?;
        let domains = self.domains.clone();
        let now = self.clock.unix();
        let random = self.random.clone();
        let (user, (fresh_secret, asked)) = self
            .write_user(move |store| {
                let Some(current) = store.user(&name)? else {
                    return Ok(Err(no_user(&name)));
                };
                let before = current.webhook_secret.clone();
                // Addresses that were waiting already were sent their link.
                let asked: Vec<String> = current.notify.channels.iter().map(|c| c.key()).collect();
                let domain = requested
                    .unwrap_or_else(|| domains.for_user(current.domain.as_ref()).domain().clone());
                let ctx = UserContext {
                    domain: domain.as_str(),
                    now,
                    new_secret: &|| webhook_secret(random.as_ref()),
                };
                Ok(current
                    .updated(settings, &ctx)
                    .map(|updated| {
                        let fresh =
                            updated.webhook_secret.is_some() && updated.webhook_secret != before;
                        (updated, (fresh, asked))
                    })
                    .map_err(|e| OperatorError::Invalid(e.to_string())))
            })
            .await?;
        // A channel no longer set forgets its mark: set again, it starts afresh.
        for key in asked
            .iter()
            .filter(|key| user.notify.channel(key).is_none())
        {
            crate::notify::forget_channel_health(&self.db, &user.name, key).await?;
        }
        self.ask_to_confirm(&user, &asked).await;
        Ok(UserView::of(&user, &self.domains, fresh_secret))
    }

    /// Removes a user and revokes their API keys in the same write, so a user created later
    /// under the same name does not inherit them. Their invoices stay, as records of money.
    pub async fn remove_user(&self, name: &Username) -> Result<(), OperatorError> {
        let _guard = self.user_writes.lock().await;
        let removed_name = name.clone();
        let now = self.clock.unix();
        let removed = self
            .db
            .commit(move |s| {
                if !s.remove_user(&removed_name)? {
                    return Ok(false);
                }
                // Their passkeys, wallets and sessions go with them, and their channels' marks.
                crate::store::records::forget_person(s, &removed_name)?;
                crate::notify::forget_health(s, &removed_name)?;
                for mut key in s.api_keys()? {
                    if key.user == removed_name && key.is_active() {
                        key.revoked_at = Some(now);
                        s.put_api_key(&key)?;
                    }
                }
                Ok(true)
            })
            .await?;
        if !removed {
            return Err(no_user(name));
        }
        self.directory.remove(name);
        // Its watcher stops with it; invoices it made stay, as records.
        self.user_wallets.forget(name);
        Ok(())
    }

    /// Mails each of `user`'s unconfirmed addresses not in `asked` its confirmation link.
    pub(super) async fn ask_to_confirm(&self, user: &User, asked: &[String]) {
        let nonce = crate::domain::Hash32(self.random.bytes32());
        let items = self.notifier.confirm_events(user, asked, nonce);
        if items.is_empty() {
            return;
        }
        match self.notifier.queue(items).await {
            Ok(queued) => {
                self.ledger.metrics().outbox_backlog.inc_by(queued as i64);
                self.ledger.outbox_wake().notify_one();
            }
            Err(e) => {
                tracing::error!(user = %user.name, error = %e, "could not queue an address's confirmation")
            }
        }
    }

    /// Runs a user change on the store writer (with the metadata its invoices will commit to),
    /// then shows it to the LNURL routes.
    pub(super) async fn write_user<T, F>(&self, decide: F) -> Result<(User, T), OperatorError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<Decision<T>, StoreError> + Send + 'static,
    {
        let _guard = self.user_writes.lock().await;
        let domains = self.domains.clone();
        let (user, extra) = self
            .db
            .commit(move |store| {
                let decided = decide(store)?;
                if let Ok((user, _)) = &decided {
                    store.put_user(user)?;
                    // Invoices refer to the metadata by hash: store it with the user who
                    // serves it.
                    let domain = domains.for_user(user.domain.as_ref()).domain();
                    store.put_metadata(Metadata::for_user(user, domain.as_str()).as_str())?;
                }
                Ok(decided)
            })
            .await??;
        self.directory.upsert(user.clone());
        Ok((user, extra))
    }

    /// The domain `settings` put a user on (`current` if they name none), checked against the
    /// configured ones.
    fn domain_for(
        &self,
        settings: &UserSettings,
        current: Option<&Domain>,
    ) -> Result<Domain, OperatorError> {
        let wanted = match settings.domain.as_deref() {
            None => return Ok(self.domains.for_user(current).domain().clone()),
            Some("") => return Ok(self.domains.primary().domain().clone()),
            Some(wanted) => wanted,
        };
        Domain::parse(wanted)
            .ok()
            .and_then(|d| self.domains.get(&d))
            .map(|u| u.domain().clone())
            .ok_or_else(|| {
                let known: Vec<String> =
                    self.domains.all().map(|u| u.domain().to_string()).collect();
                OperatorError::Invalid(format!(
                    "domain: '{wanted}' is not configured (configured: {})",
                    known.join(", ")
                ))
            })
    }

    /// A user's own wallet must be on relays this server will reach: refused now, with the
    /// reason and the setting, rather than every payer hearing later that the wallet did not
    /// answer. Names are resolved, so one that points inside is caught too; a name that does
    /// not resolve now may later, and is let through with a warning in the log.
    /// Everything settings must pass before they are applied: what they name exists here, and
    /// a wallet's relays can be reached.
    pub(super) async fn vet(&self, settings: &UserSettings) -> Result<(), OperatorError> {
        self.check_settings(settings)?;
        for raw in settings
            .notify
            .iter()
            .flatten()
            .filter(|c| !c.trim().is_empty())
        {
            let channel = crate::domain::Channel::parse(raw)
                .map_err(|e| OperatorError::Invalid(format!("notify: {e}")))?;
            if let Some(why) = self.notifier.refuses(&channel) {
                return Err(OperatorError::Invalid(format!("notify: {why}")));
            }
        }
        self.check_wallet_relays(settings).await
    }

    async fn check_wallet_relays(&self, settings: &UserSettings) -> Result<(), OperatorError> {
        let Some(uri) = settings.nwc.as_deref().filter(|u| !u.trim().is_empty()) else {
            return Ok(());
        };
        let uri = crate::domain::NwcUri::parse(uri)
            .map_err(|e| OperatorError::Invalid(format!("nwc: {e}")))?;
        for relay in &uri.relays {
            match crate::net::resolve(relay.url(), self.relay_reach).await {
                Ok(_) => {}
                Err(e @ (crate::net::NetError::Private(_) | crate::net::NetError::ResolvesPrivate(_))) => {
                    return Err(OperatorError::Invalid(format!(
                        "nwc: relay {relay}: {e}; users' own wallets may only use public relays unless RAYO_NOSTR_ALLOW_PRIVATE_RELAYS=true"
                    )))
                }
                Err(e) => {
                    tracing::warn!(relay = %relay, error = %e, "a user's wallet relay cannot be reached now; payments to them wait for it")
                }
            }
        }
        Ok(())
    }

    /// Tries a wallet connection before it is saved: the relays it names must be reachable as
    /// users' relays are, and then `backend check` runs on it (a 1-sat test invoice, looked up
    /// again), with its findings (among them whether the connection can spend).
    pub async fn check_user_wallet(&self, uri: &str) -> Result<super::CheckReport, OperatorError> {
        let settings = UserSettings {
            nwc: Some(uri.to_owned()),
            ..UserSettings::default()
        };
        self.check_wallet_relays(&settings).await?;
        let uri = crate::domain::NwcUri::parse(uri.trim())
            .map_err(|e| OperatorError::Invalid(format!("nwc: {e}")))?;
        let wallet = self.user_wallets.trial(&uri);
        Ok(super::check_backend(&wallet, self.clock.now(), self.random.as_ref()).await)
    }

    /// What a user's settings name must exist here: their backend, and a webhook this server
    /// may reach.
    fn check_settings(&self, settings: &UserSettings) -> Result<(), OperatorError> {
        if let Some(code) = settings
            .currency
            .as_deref()
            .filter(|c| !c.trim().is_empty())
        {
            let offered = self
                .currencies
                .iter()
                .find(|c| c.code.eq_ignore_ascii_case(code.trim()))
                .ok_or_else(|| {
                    let offered: Vec<&str> = self.currencies.iter().map(|c| c.code).collect();
                    OperatorError::Invalid(format!(
                        "currency: {} is not offered (RAYO_CURRENCIES: {})",
                        code.chars().take(8).collect::<String>(),
                        if offered.is_empty() {
                            "none".to_owned()
                        } else {
                            offered.join(", ")
                        }
                    ))
                })?;
            for (name, value) in [
                ("fiat_min", &settings.fiat_min),
                ("fiat_max", &settings.fiat_max),
            ] {
                if let Some(value) = value.as_deref().filter(|v| !v.trim().is_empty()) {
                    crate::domain::Decimal::parse_at_most(value.trim(), offered.decimals).map_err(
                        |e| {
                            OperatorError::Invalid(format!(
                                "{name}: {e} ({} has {} decimals)",
                                offered.code, offered.decimals
                            ))
                        },
                    )?;
                }
            }
        }
        if let Some(name) = settings.backend.as_deref().filter(|n| !n.is_empty()) {
            if !self.backends.iter().any(|known| known.as_str() == name) {
                let names: Vec<&str> = self.backends.iter().map(|b| b.as_str()).collect();
                return Err(OperatorError::Invalid(format!(
                    "backend: no backend named '{name}' (configured: {})",
                    names.join(", ")
                )));
            }
        }
        if let Some(url) = settings.webhook_url.as_deref().filter(|u| !u.is_empty()) {
            crate::net::webhook_url(url, self.webhook_reach).map_err(|e| {
                OperatorError::Invalid(match e {
                    WebhookUrlError::Malformed(e) => format!("webhook_url: {e}"),
                    WebhookUrlError::Private(e) => format!(
                        "webhook_url: {e}; for a receiver on this machine or network, set RAYO_WEBHOOK_ALLOW_PRIVATE=true"
                    ),
                })
            })?;
        }
        Ok(())
    }
}
