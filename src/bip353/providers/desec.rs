//! deSEC (desec.io), which signs its zones with DNSSEC: RRsets under
//! `/api/v1/domains/<domain>/rrsets/`, `Authorization: Token <token>`, names relative to the
//! domain registered there (`subname`), records in zone-file form, TTLs of at least an hour.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::{
    by_status, client, joined, presentation, unreachable, DnsHost, HostedRecord, ProviderError,
    MOST_READ,
};
use crate::domain::Secret;

const NAME: &str = "deSEC";
/// deSEC refuses shorter TTLs unless the account is granted them.
const MIN_TTL: u32 = 3600;

pub struct Desec {
    client: reqwest::Client,
    base: String,
    token: Secret,
    /// The domain as registered at deSEC (the zone's name there).
    domain: String,
}

#[derive(Deserialize)]
struct RrSet {
    subname: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    records: Vec<String>,
}

impl Desec {
    pub fn new(
        base: &str,
        token: Secret,
        timeout: std::time::Duration,
        domain: &str,
    ) -> Result<Self, ProviderError> {
        let client = client(NAME, timeout)?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            token,
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
        })
    }

    fn rrsets_url(&self) -> String {
        format!("{}/domains/{}/rrsets/", self.base, self.domain)
    }

    /// `name` relative to the domain at deSEC.
    fn subname(&self, name: &str) -> Result<String, ProviderError> {
        name.trim_end_matches('.')
            .strip_suffix(&format!(".{}", self.domain))
            .map(str::to_owned)
            .ok_or_else(|| {
                ProviderError::Refused(format!("{name} is not under {} at {NAME}", self.domain))
            })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Vec<u8>, ProviderError> {
        let answer = request
            .header("authorization", format!("Token {}", self.token.expose()))
            .send()
            .await
            .map_err(|e| unreachable(NAME, e))?;
        let status = answer.status();
        let body = crate::net::read_at_most(answer, MOST_READ).await;
        if status.is_success() {
            Ok(body)
        } else {
            Err(by_status(NAME, status, crate::backends::quote_body(&body)))
        }
    }

    /// One RRset change through the bulk endpoint: created, replaced, or (no records) removed.
    async fn patch(
        &self,
        subname: &str,
        ttl: u32,
        records: Vec<String>,
    ) -> Result<(), ProviderError> {
        let body = json!([{ "subname": subname, "type": "TXT", "ttl": ttl.max(MIN_TTL), "records": records }]);
        self.send(self.client.patch(self.rrsets_url()).json(&body))
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl DnsHost for Desec {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn list(&self, zone: &str) -> Result<Vec<HostedRecord>, ProviderError> {
        let zone_sub = self.subname(&format!("x.{zone}"))?;
        let zone_sub = zone_sub.strip_prefix("x.").unwrap_or(&zone_sub).to_owned();
        let body = self
            .send(self.client.get(self.rrsets_url()).query(&[("type", "TXT")]))
            .await?;
        let sets: Vec<RrSet> = serde_json::from_slice(&body).map_err(|e| {
            ProviderError::Transient(format!("{NAME} answered something unexpected: {e}"))
        })?;
        Ok(sets
            .into_iter()
            .filter(|s| s.kind == "TXT" && s.subname.ends_with(&format!(".{zone_sub}")))
            .flat_map(|s| {
                let name = format!("{}.{}", s.subname, self.domain);
                s.records.into_iter().map(move |r| HostedRecord {
                    name: name.clone(),
                    text: joined(&r),
                    id: Some(r),
                })
            })
            .collect())
    }

    async fn put(
        &self,
        name: &str,
        strings: &[String],
        ttl: u32,
        _existing: Option<&HostedRecord>,
    ) -> Result<(), ProviderError> {
        // The RRset is the name's TXT records: ours alone.
        self.patch(&self.subname(name)?, ttl, vec![presentation(strings)])
            .await
    }

    async fn remove(&self, record: &HostedRecord) -> Result<(), ProviderError> {
        self.patch(&self.subname(&record.name)?, MIN_TTL, Vec::new())
            .await
    }
}
