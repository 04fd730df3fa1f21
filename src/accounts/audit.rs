//! The operators' audit log: who did what, when, from where. Every action of the console
//! lands here, and so do the admin API's changes (as `admin token`). Append-only: lines are
//! created and never replaced; retention does not touch them.

use serde::{Deserialize, Serialize};

use super::{encode, AccountError, Accounts};
use crate::store::{RecordKind, Swap};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: u64,
    /// An operator's name, `admin token` (the API and the CLI), or `command line` (the CLI on
    /// the store itself).
    pub who: String,
    /// What was done, e.g. `user.remove alice`.
    pub what: String,
    /// The client's address, or `local`.
    pub from: String,
}

/// Lines are kept short: an action names its object, never a body.
const MAX_FIELD: usize = 300;

fn clip(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_FIELD)
        .collect()
}

/// Orders the lines one process writes within the same second.
static WRITTEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A line's key: the newest sorts first (within a second, this process's later lines first;
/// the random part keeps instances' lines apart).
fn audit_key(at: u64, random: &[u8]) -> String {
    let sequence = WRITTEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{:020}/{:020}/{}",
        u64::MAX - at,
        u64::MAX - sequence,
        hex::encode(&random[..8])
    )
}

impl Accounts {
    /// Writes one line.
    pub async fn audit(&self, who: &str, what: &str, from: &str) -> Result<(), AccountError> {
        let entry = AuditEntry {
            at: self.now(),
            who: clip(who),
            what: clip(what),
            from: clip(from),
        };
        let key = audit_key(entry.at, &self.random.bytes32());
        let value = encode(&entry)?;
        self.db
            .commit(move |s| s.swap_record(Swap::create(RecordKind::Audit, &key, &value)))
            .await?;
        Ok(())
    }

    /// The newest `limit` lines, newest first.
    pub async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, AccountError> {
        let found = self
            .db
            .read(move |s| s.records(RecordKind::Audit, "", limit))
            .await?;
        Ok(found
            .iter()
            .filter_map(|(_, bytes)| super::decode(bytes).ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{CountingRandom, HandClock};
    use crate::config::Settings;
    use crate::store::{Db, MemoryStore};

    #[tokio::test]
    async fn the_audit_log_reads_newest_first_and_keeps_lines_to_one_short_line() {
        let settings = Settings::defaults();
        let clock = Arc::new(HandClock::at(1_000));
        let accounts = Accounts::new(
            &settings,
            settings.domains().unwrap(),
            Db::new(Arc::new(MemoryStore::new())),
            clock.clone(),
            Arc::new(CountingRandom::new(3)),
        );
        accounts
            .audit("ana", "user.add alice", "127.0.0.1")
            .await
            .unwrap();
        clock.advance(5);
        accounts
            .audit("ana", "user.remove alice\nforged line", "127.0.0.1")
            .await
            .unwrap();
        let log = accounts.audit_log(10).await.unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].what, "user.remove aliceforged line");
        assert_eq!(log[0].at, 1_005);
        assert_eq!(log[1].what, "user.add alice");
        assert_eq!(accounts.audit_log(1).await.unwrap().len(), 1);
    }
}
