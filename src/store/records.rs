//! People's account records (see `accounts`): small values by kind and key, beside the money.
//! They change only by compare-and-swap, so what must happen once (an invite's last use, a
//! sign-in challenge, removing a person's last passkey) happens once, on every instance.

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
}

impl RecordKind {
    pub const ALL: [RecordKind; 8] = [
        RecordKind::Account,
        RecordKind::Handle,
        RecordKind::LinkingKey,
        RecordKind::Invite,
        RecordKind::Session,
        RecordKind::SessionOf,
        RecordKind::Challenge,
        RecordKind::Quarantine,
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
}
