//! Keeping the BIP-353 records at a DNS host that signs the zone (deSEC, Cloudflare), for
//! operators who do not serve the zone from rayo. Each pass reads what the host holds under
//! `user._bitcoin-payment.<domain>`, compares it with what rayo would publish, and repairs
//! the difference: missing records are created, changed ones put right, and `bitcoin:`
//! records of names that are not users are removed. Only that zone's TXT records are
//! touched. Transient failures are retried; each pass's outcome is kept in the store, for
//! `rayo bip353 sync` and the log.

mod cloudflare;
mod desec;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use cloudflare::Cloudflare;
pub use desec::Desec;

use super::{zone_for, Bip353Record};
use crate::clock::Random;

/// One record at the host: its full name (no trailing dot), its strings joined, and the
/// host's handle for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedRecord {
    pub name: String,
    pub text: String,
    pub id: Option<String>,
}

/// What went wrong talking to a host, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Refused(String),
}

/// A DNS host's API, as far as BIP-353 records need it.
#[async_trait]
pub trait DnsHost: Send + Sync {
    fn name(&self) -> &'static str;
    /// The TXT records under `zone` (`user._bitcoin-payment.<domain>`).
    async fn list(&self, zone: &str) -> Result<Vec<HostedRecord>, ProviderError>;
    /// Sets `name`'s TXT record to exactly `strings` (replacing `existing`, if given).
    async fn put(
        &self,
        name: &str,
        strings: &[String],
        ttl: u32,
        existing: Option<&HostedRecord>,
    ) -> Result<(), ProviderError>;
    async fn remove(&self, record: &HostedRecord) -> Result<(), ProviderError>;
}

/// What a pass found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    pub domain: String,
    pub provider: String,
    pub at: u64,
    /// Names whose record was missing, and was created.
    pub created: Vec<String>,
    /// Names whose record differed, and was put right.
    pub repaired: Vec<String>,
    /// `bitcoin:` records of names that are not users, removed.
    pub removed: Vec<String>,
    /// Why the pass could not finish, if it could not; the next pass tries again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SyncReport {
    pub fn drifted(&self) -> bool {
        !(self.created.is_empty() && self.repaired.is_empty() && self.removed.is_empty())
    }
}

/// Tries `step` up to three times, waiting longer after each transient failure.
async fn with_retries<T, F, Fut>(random: &dyn Random, mut step: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ProviderError>>,
{
    let mut failures = 0;
    loop {
        match step().await {
            Err(ProviderError::Transient(why)) if failures < 2 => {
                failures += 1;
                let wait = crate::retry::delay_after(
                    Duration::from_millis(200),
                    Duration::from_secs(5),
                    failures,
                    random,
                );
                tracing::info!(error = %why, retry_in_ms = wait.as_millis() as u64, "the DNS host failed; trying again");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// One pass for `domain` at `host`: `records` are what rayo publishes there.
pub async fn reconcile(
    host: &dyn DnsHost,
    domain: &str,
    records: &[Bip353Record],
    random: &dyn Random,
    now: u64,
) -> SyncReport {
    let mut report = SyncReport {
        domain: domain.to_owned(),
        provider: host.name().to_owned(),
        at: now,
        ..SyncReport::default()
    };
    if let Err(e) = pass(host, domain, records, random, &mut report).await {
        report.error = Some(e.to_string());
    }
    report
}

async fn pass(
    host: &dyn DnsHost,
    domain: &str,
    records: &[Bip353Record],
    random: &dyn Random,
    report: &mut SyncReport,
) -> Result<(), ProviderError> {
    let zone = zone_for(domain);
    let suffix = format!(".{zone}");
    let hosted = with_retries(random, || host.list(&zone)).await?;
    let mut by_name: BTreeMap<String, Vec<HostedRecord>> = BTreeMap::new();
    for record in hosted {
        let name = record.name.trim_end_matches('.').to_ascii_lowercase();
        // Only names one label under the zone: the zone's own records are not ours.
        let Some(label) = name.strip_suffix(&suffix) else {
            continue;
        };
        if label.is_empty() || label.contains('.') {
            continue;
        }
        by_name.entry(name).or_default().push(record);
    }
    let wanted: BTreeMap<String, &Bip353Record> = records
        .iter()
        .map(|r| (r.name.trim_end_matches('.').to_ascii_lowercase(), r))
        .filter(|(name, _)| name.ends_with(&suffix))
        .collect();
    for (name, record) in &wanted {
        let present = by_name.remove(name).unwrap_or_default();
        let bitcoin: Vec<&HostedRecord> = present
            .iter()
            .filter(|r| r.text.to_ascii_lowercase().starts_with("bitcoin:"))
            .collect();
        match bitcoin.as_slice() {
            [one] if one.text == record.uri => continue,
            [] => {
                with_retries(random, || host.put(name, &record.strings, record.ttl, None)).await?;
                report.created.push(name.clone());
            }
            [first, rest @ ..] => {
                // Exactly one `bitcoin:` record per name (BIP-353): the rest go.
                for extra in rest {
                    with_retries(random, || host.remove(extra)).await?;
                }
                with_retries(random, || {
                    host.put(name, &record.strings, record.ttl, Some(first))
                })
                .await?;
                report.repaired.push(name.clone());
            }
        }
    }
    for (name, leftovers) in by_name {
        for record in leftovers
            .iter()
            .filter(|r| r.text.to_ascii_lowercase().starts_with("bitcoin:"))
        {
            with_retries(random, || host.remove(record)).await?;
            if !report.removed.contains(&name) {
                report.removed.push(name.clone());
            }
        }
    }
    Ok(())
}

/// The TXT strings of a record in zone-file form: `"one" "two"`, quotes and backslashes
/// escaped (a BIP-321 URI has neither, but nothing here assumes it).
pub fn presentation(strings: &[String]) -> String {
    strings
        .iter()
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The strings of a record in zone-file form, joined: what a host's `"a" "b"` holds.
pub fn joined(presentation: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = presentation.chars();
    let mut any_quote = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (_, '"') => {
                quoted = !quoted;
                any_quote = true;
            }
            (true, '\\') => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            (true, c) => out.push(c),
            (false, _) => {}
        }
    }
    // A host may also answer the text unquoted.
    if any_quote {
        out
    } else {
        presentation.to_owned()
    }
}

/// The most of a host's answer that is read.
const MOST_READ: usize = 8 << 20;

/// A client for a host's API: the operator's choice of URL, no redirects, a deadline per call.
fn client(host: &str, timeout: Duration) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ProviderError::Refused(format!("{host} HTTP client: {e}")))
}

/// Transient or not, by HTTP status: 429 and 5xx may pass; anything else will not.
fn by_status(host: &str, status: reqwest::StatusCode, detail: String) -> ProviderError {
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        ProviderError::Transient(format!("{host} answered {status}: {detail}"))
    } else {
        ProviderError::Refused(format!("{host} refused ({status}): {detail}"))
    }
}

/// The token travels in a header, never the URL; the URL is left out all the same.
fn unreachable(host: &str, e: reqwest::Error) -> ProviderError {
    ProviderError::Transient(format!(
        "{host}: {}",
        crate::net::root_cause(&e.without_url())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn strings_go_out_quoted_and_come_back_joined() {
        let strings = vec!["bitcoin:?lno=abc".to_owned(), "def".to_owned()];
        assert_eq!(presentation(&strings), "\"bitcoin:?lno=abc\" \"def\"");
        assert_eq!(joined(&presentation(&strings)), "bitcoin:?lno=abcdef");
        assert_eq!(joined("bitcoin:?lno=abc"), "bitcoin:?lno=abc");
        assert_eq!(joined(r#""a\"b" "c""#), "a\"bc");
    }

    proptest! {
        #[test]
        fn any_strings_survive_the_round_trip(strings in proptest::collection::vec("[ -~]{1,40}", 1..5)) {
            let text = presentation(&strings);
            prop_assert_eq!(joined(&text), strings.concat());
        }

        #[test]
        fn joining_never_panics(text in "\\PC{0,200}") {
            let _ = joined(&text);
        }
    }
}
