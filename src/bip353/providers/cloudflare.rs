//! Cloudflare DNS (with DNSSEC on for the zone): records under
//! `/client/v4/zones/<zone id>/dns_records`, `Authorization: Bearer <token>`, answers wrapped
//! in `{"success", "errors", "result"}`, full names, TXT content in zone-file form.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::{
    by_status, client, joined, presentation, unreachable, DnsHost, HostedRecord, ProviderError,
    MOST_READ,
};
use crate::domain::Secret;

const NAME: &str = "Cloudflare";
const PER_PAGE: u32 = 500;
/// Pages read at most in one listing: 50,000 records.
const MOST_PAGES: u32 = 100;

pub struct Cloudflare {
    client: reqwest::Client,
    base: String,
    token: Secret,
    zone_id: String,
}

#[derive(Deserialize)]
struct Envelope<T> {
    success: bool,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
    result: Option<T>,
    #[serde(default)]
    result_info: Option<Pages>,
}

#[derive(Deserialize)]
struct Pages {
    #[serde(default)]
    total_pages: Option<u32>,
}

#[derive(Deserialize)]
struct Record {
    id: String,
    name: String,
    #[serde(rename = "type")]
    kind: String,
    content: String,
}

impl Cloudflare {
    pub fn new(
        base: &str,
        token: Secret,
        timeout: std::time::Duration,
        zone_id: &str,
    ) -> Result<Self, ProviderError> {
        if zone_id.is_empty() || !zone_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ProviderError::Refused(format!(
                "{NAME} zone id {zone_id:?}: letters and digits only"
            )));
        }
        let client = client(NAME, timeout)?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            token,
            zone_id: zone_id.to_owned(),
        })
    }

    fn records_url(&self) -> String {
        format!("{}/zones/{}/dns_records", self.base, self.zone_id)
    }

    async fn send<T: for<'de> Deserialize<'de>>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<Envelope<T>, ProviderError> {
        let answer = request
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| unreachable(NAME, e))?;
        let status = answer.status();
        let body = crate::net::read_at_most(answer, MOST_READ).await;
        let parsed: Option<Envelope<T>> = serde_json::from_slice(&body).ok();
        match parsed {
            Some(envelope) if status.is_success() && envelope.success => Ok(envelope),
            Some(envelope) => Err(by_status(
                NAME,
                status,
                serde_json::to_string(&envelope.errors).unwrap_or_default(),
            )),
            None => Err(by_status(NAME, status, crate::backends::quote_body(&body))),
        }
    }
}

#[async_trait]
impl DnsHost for Cloudflare {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn list(&self, zone: &str) -> Result<Vec<HostedRecord>, ProviderError> {
        let mut found = Vec::new();
        let mut page = 1;
        loop {
            let envelope: Envelope<Vec<Record>> = self
                .send(self.client.get(self.records_url()).query(&[
                    ("type", "TXT".to_owned()),
                    ("name.endswith", format!(".{zone}")),
                    ("per_page", PER_PAGE.to_string()),
                    ("page", page.to_string()),
                ]))
                .await?;
            found.extend(
                envelope
                    .result
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|r| r.kind == "TXT")
                    .map(|r| HostedRecord {
                        text: joined(&r.content),
                        name: r.name,
                        id: Some(r.id),
                    }),
            );
            let pages = envelope
                .result_info
                .and_then(|i| i.total_pages)
                .unwrap_or(1);
            if page >= pages.min(MOST_PAGES) {
                return Ok(found);
            }
            page += 1;
        }
    }

    async fn put(
        &self,
        name: &str,
        strings: &[String],
        ttl: u32,
        existing: Option<&HostedRecord>,
    ) -> Result<(), ProviderError> {
        let body =
            json!({ "type": "TXT", "name": name, "content": presentation(strings), "ttl": ttl });
        let request = match existing.and_then(|e| e.id.as_deref()) {
            Some(id) => self.client.put(format!("{}/{id}", self.records_url())),
            None => self.client.post(self.records_url()),
        };
        self.send::<serde_json::Value>(request.json(&body))
            .await
            .map(|_| ())
    }

    async fn remove(&self, record: &HostedRecord) -> Result<(), ProviderError> {
        let Some(id) = record.id.as_deref() else {
            return Ok(());
        };
        self.send::<serde_json::Value>(self.client.delete(format!("{}/{id}", self.records_url())))
            .await
            .map(|_| ())
    }
}
