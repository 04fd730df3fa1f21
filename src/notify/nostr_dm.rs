//! Nostr private messages (NIP-17): the text as an unsigned kind 14 rumour, sealed (kind 13)
//! by rayo's key and gift-wrapped (kind 1059) by a fresh one, both with randomised times
//! (NIP-59, through the `nostr` crate), sent to the relays the person reads DMs on (their
//! kind 10050 list).

use nostr::{EventBuilder, JsonUtil, PublicKey, Timestamp};

use super::failure::{quote, Failure};
use super::message::Message;
use crate::domain::RelayUrl;
use crate::net::{self, Reach};
use crate::nostr::NostrIdentity;

/// NIP-17's list of the relays someone reads private messages on.
const DM_RELAY_LIST: u16 = 10050;
/// Relays asked for the list, and relays a message goes to: a list names a few.
const MAX_RELAYS: usize = 6;

pub struct Dms {
    pub identity: NostrIdentity,
    /// The operator's relays (`RAYO_NOSTR_RELAYS`): asked for lists, and used when the person
    /// has none.
    pub fallback: Vec<RelayUrl>,
    pub reach: Reach,
}

impl Dms {
    /// Sends `message` to `to` (hex). `known` are relays the person named (their NIP-05
    /// relays); `at` is the rumour's time, so every retry carries the same rumour.
    pub async fn send(
        &self,
        to: &str,
        known: &[RelayUrl],
        message: &Message,
        at: u64,
    ) -> Result<u16, Failure> {
        let receiver =
            PublicKey::from_hex(to).map_err(|_| Failure::now("not a Nostr public key".into()))?;
        let mut asked: Vec<RelayUrl> = Vec::new();
        for relay in known.iter().chain(&self.fallback) {
            if !asked.contains(relay) && asked.len() < MAX_RELAYS {
                asked.push(relay.clone());
            }
        }
        let relays = match self.dm_relays(to, &asked).await {
            listed if !listed.is_empty() => listed,
            _ => asked,
        };
        if relays.is_empty() {
            return Err(Failure::now(
                "no relay to send to: the person lists no DM relays (kind 10050) and RAYO_NOSTR_RELAYS is empty".into(),
            ));
        }
        let mut text = message.title.clone();
        if !message.text.is_empty() {
            text.push_str("\n\n");
            text.push_str(&message.text);
        }
        let keys = self.identity.keys();
        let rumor = EventBuilder::private_msg_rumor(receiver, text)
            .custom_created_at(Timestamp::from(at))
            .build(keys.public_key());
        let wrap = EventBuilder::gift_wrap(&keys, &receiver, rumor, [])
            .await
            .map_err(|e| Failure::now(format!("could not wrap the message: {e}")))?;
        let json = wrap.as_json();
        let mut refusals = Vec::new();
        let mut accepted = 0;
        for relay in &relays {
            match crate::nostr::publish(relay, &json, self.reach).await {
                Ok(()) => accepted += 1,
                Err(e) => refusals.push(format!("{relay}: {e}")),
            }
        }
        if accepted > 0 {
            if !refusals.is_empty() {
                tracing::info!(refused = %refusals.join("; "), accepted, "a private message reached some of its relays");
            }
            Ok(200)
        } else {
            Err(Failure::now(format!(
                "no relay took the message: {}",
                quote(&refusals.join("; "))
            )))
        }
    }

    /// The relays `author`'s newest kind 10050 list names, as any of `relays` holds it.
    async fn dm_relays(&self, author: &str, relays: &[RelayUrl]) -> Vec<RelayUrl> {
        let lookups = relays
            .iter()
            .map(|relay| crate::nostr::latest_event(relay, author, DM_RELAY_LIST, self.reach));
        let newest = futures_util::future::join_all(lookups)
            .await
            .into_iter()
            .filter_map(|found| found.ok().flatten())
            .max_by_key(|event| event.created_at);
        let Some(list) = newest else {
            return Vec::new();
        };
        let mut listed = Vec::new();
        for tag in list.tags.iter() {
            let parts = tag.as_slice();
            if parts.first().map(String::as_str) != Some("relay") {
                continue;
            }
            let Some(url) = parts.get(1).and_then(|u| RelayUrl::parse(u).ok()) else {
                continue;
            };
            // The list is the person's word, not the operator's: the usual reach applies.
            if net::check_url(url.url(), self.reach).is_ok() && !listed.contains(&url) {
                listed.push(url);
            }
            if listed.len() == MAX_RELAYS {
                break;
            }
        }
        listed
    }
}
