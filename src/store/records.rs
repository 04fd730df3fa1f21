//! People's account records (see `accounts`): small values by kind and key, beside the money.
//! They change only by compare-and-swap, so what must happen once (an invite's last use, a
//! sign-in challenge, removing a person's last passkey) happens once, on every instance.

use super::{Store, StoreError};
use crate::domain::Username;

/// What a record is. Each kind is its own key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKind {
    /// A person's account, by username: passkeys, linked wallets.
    Account,
    /// A passkey's user handle (hex), to the username it belongs to.
    Handle,
    /// An LNURL-auth linking key (hex), to the username it belongs to.
    LinkingKey,
    /// An invite, by the SHA-256 of its token.
    Invite,
    /// A session, by the SHA-256 of its token.
    Session,
    /// A person's sessions, by `<username>/<session key>`: for listing and ending them.
    SessionOf,
    /// A sign-in or registration in progress, by its id: single use, short-lived.
    Challenge,
    /// A name freed by a deleted account, held back until the quarantine ends.
    Quarantine,
    /// An operator of the console, by name: their passkeys.
    Operator,
    /// An operator's passkey user handle (hex), to the operator's name.
    OperatorHandle,
    /// An invite to become an operator, by the SHA-256 of its token.
    OperatorInvite,
    /// A console session, by the SHA-256 of its token: never opens a person's account, and a
    /// person's session never opens the console.
    ConsoleSession,
    /// An operator's console sessions, by `<name>/<session key>`.
    ConsoleSessionOf,
    /// One line of the operators' audit log, by `<u64::MAX - time, 20 digits>/…`: the newest
    /// first in key order.
    Audit,
    /// A notification channel marked broken, by `<owner>/<channel key>`.
    ChannelHealth,
    /// A one-time code that links a Telegram chat to a person, by the code's SHA-256.
    TelegramLink,
    /// A user's BOLT12 offer (`offers::OfferRecord`), by username.
    Offer,
    /// An offer's owner, by the offer id (hex): payments to it are theirs.
    OfferOwner,
    /// A BIP-353 zone's DNSSEC signing keys, by zone name.
    DnsKeys,
}

impl RecordKind {
    pub const ALL: [RecordKind; 19] = [
        RecordKind::Account,
        RecordKind::Handle,
        RecordKind::LinkingKey,
        RecordKind::Invite,
        RecordKind::Session,
        RecordKind::SessionOf,
        RecordKind::Challenge,
        RecordKind::Quarantine,
        RecordKind::Operator,
        RecordKind::OperatorHandle,
        RecordKind::OperatorInvite,
        RecordKind::ConsoleSession,
        RecordKind::ConsoleSessionOf,
        RecordKind::Audit,
        RecordKind::ChannelHealth,
        RecordKind::TelegramLink,
        RecordKind::Offer,
        RecordKind::OfferOwner,
        RecordKind::DnsKeys,
    ];

    /// The kind's stored name: never changes once written.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Account => "account",
            RecordKind::Handle => "handle",
            RecordKind::LinkingKey => "linking_key",
            RecordKind::Invite => "invite",
            RecordKind::Session => "session",
            RecordKind::SessionOf => "session_of",
            RecordKind::Challenge => "challenge",
            RecordKind::Quarantine => "quarantine",
            RecordKind::Operator => "operator",
            RecordKind::OperatorHandle => "operator_handle",
            RecordKind::OperatorInvite => "operator_invite",
            RecordKind::ConsoleSession => "console_session",
            RecordKind::ConsoleSessionOf => "console_session_of",
            RecordKind::Audit => "audit",
            RecordKind::ChannelHealth => "channel_health",
            RecordKind::TelegramLink => "telegram_link",
            RecordKind::Offer => "offer",
            RecordKind::OfferOwner => "offer_owner",
            RecordKind::DnsKeys => "dns_keys",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// One compare-and-swap: `key` of `kind` becomes `new` (`None`: removed) if it still is `old`
/// (`None`: absent).
#[derive(Debug, Clone, Copy)]
pub struct Swap<'a> {
    pub kind: RecordKind,
    pub key: &'a str,
    pub old: Option<&'a [u8]>,
    pub new: Option<&'a [u8]>,
}

impl<'a> Swap<'a> {
    /// Creates `key` unless it exists.
    pub fn create(kind: RecordKind, key: &'a str, value: &'a [u8]) -> Self {
        Self {
            kind,
            key,
            old: None,
            new: Some(value),
        }
    }

    /// Replaces `old` with `new`.
    pub fn replace(kind: RecordKind, key: &'a str, old: &'a [u8], new: &'a [u8]) -> Self {
        Self {
            kind,
            key,
            old: Some(old),
            new: Some(new),
        }
    }

    /// Removes `key` if it still is `old`.
    pub fn remove(kind: RecordKind, key: &'a str, old: &'a [u8]) -> Self {
        Self {
            kind,
            key,
            old: Some(old),
            new: None,
        }
    }
}

/// What an index record (a passkey's handle, a wallet's linking key) holds: its owner's
/// name, as a JSON string.
pub fn owner_value(name: &Username) -> Vec<u8> {
    serde_json::to_vec(name.as_str()).unwrap_or_default()
}

/// Removes every account record of `name`, as part of the caller's write: the account, what
/// finds it (handles, linking keys) and its sessions. Removing a user calls this, so a name
/// given to someone else later opens nothing for whoever held it before.
pub fn forget_person(store: &dyn Store, name: &Username) -> Result<(), StoreError> {
    use RecordKind::*;
    if let Some(bytes) = store.record(Account, name.as_str())? {
        store.swap_record(Swap::remove(Account, name.as_str(), &bytes))?;
    }
    // Indexes are few per person and people are removed rarely: a scan is enough.
    let owner = owner_value(name);
    for kind in [Handle, LinkingKey] {
        for (key, value) in store.records(kind, "", usize::MAX)? {
            if value == owner {
                store.swap_record(Swap::remove(kind, &key, &value))?;
            }
        }
    }
    let prefix = format!("{}/", name.as_str());
    for (index, value) in store.records(SessionOf, &prefix, usize::MAX)? {
        let session = &index[prefix.len()..];
        if let Some(bytes) = store.record(Session, session)? {
            store.swap_record(Swap::remove(Session, session, &bytes))?;
        }
        store.swap_record(Swap::remove(SessionOf, &index, &value))?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) fn records_story(store: &dyn super::Store) {
    use RecordKind::*;
    // Created once: a second create of the same key loses.
    assert!(store.swap_record(Swap::create(Invite, "a", b"1")).unwrap());
    assert!(!store.swap_record(Swap::create(Invite, "a", b"2")).unwrap());
    assert_eq!(
        store.record(Invite, "a").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    // Kinds are separate key spaces.
    assert_eq!(store.record(Session, "a").unwrap(), None);
    // Replaced only from what it is.
    assert!(!store
        .swap_record(Swap::replace(Invite, "a", b"0", b"3"))
        .unwrap());
    assert!(store
        .swap_record(Swap::replace(Invite, "a", b"1", b"3"))
        .unwrap());
    assert!(!store
        .swap_record(Swap::replace(Invite, "missing", b"1", b"3"))
        .unwrap());
    // Removed once: the second taker of a single-use record gets nothing.
    assert!(store.swap_record(Swap::remove(Invite, "a", b"3")).unwrap());
    assert!(!store.swap_record(Swap::remove(Invite, "a", b"3")).unwrap());
    assert_eq!(store.record(Invite, "a").unwrap(), None);
    // Listing by prefix, by key, within one kind, at most `limit`.
    for key in ["bob/2", "alice/1", "alice/3", "alice/2", "alicea/1"] {
        assert!(store
            .swap_record(Swap::create(SessionOf, key, b""))
            .unwrap());
    }
    assert!(store
        .swap_record(Swap::create(Session, "alice/9", b""))
        .unwrap());
    let keys = |limit| -> Vec<String> {
        store
            .records(SessionOf, "alice/", limit)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    assert_eq!(keys(10), ["alice/1", "alice/2", "alice/3"]);
    assert_eq!(keys(2), ["alice/1", "alice/2"]);
    assert_eq!(store.records(SessionOf, "", 100).unwrap().len(), 5);
    // Keys with characters a query language or a separator might treat specially.
    for key in ["50%_off", "a\0b", "it's"] {
        assert!(store
            .swap_record(Swap::create(Quarantine, key, key.as_bytes()))
            .unwrap());
        assert_eq!(
            store.record(Quarantine, key).unwrap().as_deref(),
            Some(key.as_bytes())
        );
    }
    assert_eq!(store.records(Quarantine, "50%", 10).unwrap().len(), 1);
    assert_eq!(store.records(Quarantine, "a", 10).unwrap().len(), 1);

    // Forgetting a person removes their account, indexes and sessions, and no one else's.
    let (carol, dave) = (
        Username::parse("carol").unwrap(),
        Username::parse("dave").unwrap(),
    );
    for (name, handle, key, session) in [(&carol, "h1", "k1", "s1"), (&dave, "h2", "k2", "s2")] {
        let owner = owner_value(name);
        assert!(store
            .swap_record(Swap::create(Account, name.as_str(), b"{}"))
            .unwrap());
        assert!(store
            .swap_record(Swap::create(Handle, handle, &owner))
            .unwrap());
        assert!(store
            .swap_record(Swap::create(LinkingKey, key, &owner))
            .unwrap());
        assert!(store
            .swap_record(Swap::create(Session, session, b"{}"))
            .unwrap());
        let index = format!("{name}/{session}");
        assert!(store
            .swap_record(Swap::create(SessionOf, &index, b""))
            .unwrap());
    }
    forget_person(store, &carol).unwrap();
    for (kind, key) in [
        (Account, "carol"),
        (Handle, "h1"),
        (LinkingKey, "k1"),
        (Session, "s1"),
        (SessionOf, "carol/s1"),
    ] {
        assert_eq!(store.record(kind, key).unwrap(), None, "{key}");
    }
    for (kind, key) in [
        (Account, "dave"),
        (Handle, "h2"),
        (LinkingKey, "k2"),
        (Session, "s2"),
        (SessionOf, "dave/s2"),
    ] {
        assert!(store.record(kind, key).unwrap().is_some(), "{key}");
    }
}
