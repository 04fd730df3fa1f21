//! What rayo publishes for BIP-353: the records of every address with an offer, by domain,
//! and for the zones it serves itself, their keys and delegation.

use hickory_proto::rr::Name;
use serde::{Deserialize, Serialize};

use super::keys::{self, ZoneKeys};
use super::zone::{Zone, Zones};
use super::{can_have_names, zone_for, Bip353Record};
use crate::config::Domains;
use crate::store::{Db, StoreError};

/// The hosts that can carry names (an IP-literal or single-label domain cannot).
pub fn named_hosts(domains: &Domains) -> Vec<String> {
    domains
        .all()
        .map(|d| d.host().to_owned())
        .filter(|h| can_have_names(h))
        .collect()
}

/// Every address's record, by domain then name.
pub async fn records(
    db: &Db,
    domains: &Domains,
    now: u64,
) -> Result<Vec<Bip353Record>, StoreError> {
    let hosts = named_hosts(domains);
    let offers = db.read(crate::offers::all_stored).await?;
    let mut records: Vec<Bip353Record> = offers
        .iter()
        .filter(|o| hosts.contains(&o.domain))
        .map(|o| Bip353Record::of(o, now))
        .collect();
    records.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(records)
}

/// What the parent zone needs for one zone rayo serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delegation {
    pub zone: String,
    /// `<zone>. IN NS <host>.`, one per name server.
    pub ns: Vec<String>,
    /// `<zone>. IN DS <tag> 13 2 <digest>`, for every published key.
    pub ds: Vec<String>,
    /// The keys as `delv`'s trust anchors: `"<zone>." static-key 257 3 13 "<key>";`
    pub trust_anchors: Vec<String>,
    /// The DNSKEY records, as the zone serves them.
    pub dnskeys: Vec<String>,
    pub rollover_under_way: bool,
}

/// The name servers a zone names: `RAYO_DNS_NS`, or the domain's own host.
pub fn nameservers(configured: &[String], host: &str) -> Vec<Name> {
    let hosts: Vec<String> = if configured.is_empty() {
        vec![host.to_owned()]
    } else {
        configured.to_vec()
    };
    hosts
        .iter()
        .filter_map(|h| Name::from_ascii(format!("{}.", h.trim_end_matches('.'))).ok())
        .collect()
}

fn apex_of(host: &str) -> Result<Name, StoreError> {
    Name::from_ascii(format!("{}.", zone_for(host)))
        .map_err(|e| StoreError::Corrupt(format!("zone name for {host}: {e}")))
}

async fn keys_of(db: &Db, zone: &str, now: u64) -> Result<keys::StoredKeys, StoreError> {
    let zone = zone.to_owned();
    db.commit(move |s| {
        keys::load_or_create(s, &zone, now).map_err(|e| match e {
            keys::KeyError::Store(e) => e,
            keys::KeyError::Key(e) => StoreError::Corrupt(e),
        })
    })
    .await
}

/// The zones as they are now, keys made where missing.
pub async fn build_zones(
    db: &Db,
    domains: &Domains,
    configured_ns: &[String],
    now: u64,
) -> Result<Zones, StoreError> {
    let all = records(db, domains, now).await?;
    let mut zones = Vec::new();
    for host in named_hosts(domains) {
        let apex = apex_of(&host)?;
        let stored = keys_of(db, &zone_for(&host), now).await?;
        let keys =
            ZoneKeys::load(&apex, &stored).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let hostmaster = Name::from_ascii(format!("hostmaster.{host}."))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let serial = u32::try_from(now).unwrap_or(u32::MAX);
        zones.push(Zone::new(
            apex,
            keys,
            serial,
            nameservers(configured_ns, &host),
            hostmaster,
            &all,
        ));
    }
    Ok(Zones::new(zones))
}

/// The delegation of every zone, keys made where missing.
pub async fn delegations(
    db: &Db,
    domains: &Domains,
    configured_ns: &[String],
    now: u64,
) -> Result<Vec<Delegation>, StoreError> {
    let mut out = Vec::new();
    for host in named_hosts(domains) {
        let zone = zone_for(&host);
        let apex = apex_of(&host)?;
        let stored = keys_of(db, &zone, now).await?;
        let keys =
            ZoneKeys::load(&apex, &stored).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut ds = Vec::new();
        let mut trust_anchors = Vec::new();
        let mut dnskeys = Vec::new();
        for key in keys.published() {
            let record = key
                .ds(&apex)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            ds.push(format!(
                "{zone}. IN DS {} 13 2 {}",
                record.key_tag(),
                hex::encode_upper(record.digest())
            ));
            trust_anchors.push(format!(
                "\"{zone}.\" static-key 257 3 13 \"{}\";",
                key.public_base64()
            ));
            dnskeys.push(format!(
                "{zone}. IN DNSKEY 257 3 13 {}",
                key.public_base64()
            ));
        }
        out.push(Delegation {
            ns: nameservers(configured_ns, &host)
                .iter()
                .map(|ns| format!("{zone}. IN NS {ns}"))
                .collect(),
            ds,
            trust_anchors,
            dnskeys,
            rollover_under_way: keys.incoming.is_some(),
            zone,
        });
    }
    Ok(out)
}

/// Takes a rollover step for every zone rayo serves.
pub async fn roll(
    db: &Db,
    domains: &Domains,
    step: keys::Rollover,
    now: u64,
) -> Result<Vec<String>, String> {
    let mut zones = Vec::new();
    for host in named_hosts(domains) {
        let zone = zone_for(&host);
        let name = zone.clone();
        db.commit(move |s| {
            Ok(keys::roll(s, &name, step, now)
                .map(|_| ())
                .map_err(|e| e.to_string()))
        })
        .await
        .map_err(|e| e.to_string())??;
        zones.push(zone);
    }
    Ok(zones)
}
