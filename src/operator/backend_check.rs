//! `rayo backend check`: is the configured backend usable, in plain words. It asks for a small
//! real invoice, checks it exactly as the callback would, and looks it up again.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::backends::Backend;
use crate::backends::{InvoiceBackend, InvoiceDescription, InvoiceRequest, InvoiceState};
use crate::clock::Random;
use crate::domain::{Hash32, Msat};
use crate::invoices::{check_invoice, Expected};

/// More difference than this between the backend's clock and ours breaks expiry checks.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);
const TEST_DESCRIPTION: &str = "rayo backend check";

#[derive(Debug, Default)]
pub struct CheckReport {
    /// What was found, one fact a line.
    pub facts: Vec<String>,
    /// Usable, but worth changing.
    pub warnings: Vec<String>,
    /// What is wrong; empty when the backend is usable.
    pub problems: Vec<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Whether the backend makes BOLT12 offers (BIP-353 names), and if so, that a test offer
/// passes the checks every published offer must pass. CLN keeps offers: the test one is
/// disabled again.
async fn check_offers(
    backend: &Backend<dyn InvoiceBackend>,
    identity: &crate::backends::Identity,
    now: SystemTime,
    report: &mut CheckReport,
) {
    if let crate::backends::OfferSupport::No(why) = backend.offer_support() {
        report.facts.push(format!(
            "BOLT12 offers: no ({why}); addresses are payable by LNURL only, without BIP-353 names"
        ));
        return;
    }
    let request = crate::backends::OfferRequest {
        description: TEST_DESCRIPTION,
        issuer: "rayo backend check",
        label: "rayo-backend-check-offer",
    };
    let made = match backend.make_offer(request).await {
        Ok(made) => made,
        Err(e) => {
            report.problems.push(format!(
                "BOLT12 offers: could not make a test offer ({e}); addresses stay LNURL-only"
            ));
            return;
        }
    };
    let unix = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let expected = crate::offers::ExpectedOffer {
        description: TEST_DESCRIPTION,
        issuer: "rayo backend check",
        network: backend.capabilities().network.clone(),
        node_id: identity.node_id,
    };
    match crate::offers::check_offer(&made.offer, &expected, unix) {
        Ok(_) => report.facts.push(
            "BOLT12 offers: yes, one per address (BIP-353 names); a test offer checked".into(),
        ),
        Err(e) => report.problems.push(format!(
            "BOLT12 offers: the backend's test offer is unusable ({e}); addresses stay LNURL-only"
        )),
    }
    if let Some(reference) = &made.backend_ref {
        if let Err(e) = backend.disable_offer(reference).await {
            report
                .warnings
                .push(format!("could not disable the test offer again: {e}"));
        }
    }
}

pub async fn check_backend(
    backend: &Backend<dyn InvoiceBackend>,
    now: SystemTime,
    random: &dyn Random,
) -> CheckReport {
    let mut report = CheckReport::default();
    let caps = backend.capabilities();
    report.facts.push(format!("backend: {}", backend.kind()));
    let identity = match backend.identity().await {
        Ok(identity) => identity,
        Err(e) => {
            report
                .problems
                .push(format!("could not identify the backend: {e}"));
            Default::default()
        }
    };
    report.facts.push(match identity.node_id {
        Some(_) => format!("identity: {identity}; invoices must be signed by this node"),
        None => format!(
            "identity: {identity}; no node key offered (or not readable with these credentials), so invoices are checked by key recovery"
        ),
    });
    report.facts.push(format!("network: {:?}", caps.network));
    let findings = backend.findings().await;
    report.facts.extend(findings.facts);
    report.warnings.extend(findings.warnings);
    report.problems.extend(findings.problems);
    report.facts.push(format!(
        "description hash: {}",
        if caps.description_hash {
            "yes (invoices commit to the LNURL metadata)"
        } else {
            "NO: invoices carry a memo instead; wallets that check `h` refuse them, and zaps cannot work"
        }
    ));
    report.facts.push(format!(
        "amounts: {}",
        if caps.msat_precision {
            "any millisatoshi amount"
        } else {
            "whole satoshis only"
        }
    ));
    report
        .facts
        .push(format!("longest expiry: {} s", caps.max_expiry.as_secs()));
    check_offers(backend, &identity, now, &mut report).await;

    let amount = Msat::from_msat(1000);
    let hash = Hash32::sha256(TEST_DESCRIPTION.as_bytes());
    let description = if caps.description_hash {
        InvoiceDescription::Hash {
            hash,
            text: Cow::Borrowed(TEST_DESCRIPTION),
        }
    } else {
        InvoiceDescription::Memo(Cow::Borrowed(TEST_DESCRIPTION))
    };
    let label = format!("rayo-backend-check-{}", hex::encode(&random.bytes32()[..6]));
    let request = InvoiceRequest {
        amount,
        description,
        expiry: Duration::from_secs(600).min(caps.max_expiry),
        label: &label,
    };
    let created = match backend.create_invoice(request).await {
        Ok(created) => created,
        Err(e) => {
            report
                .problems
                .push(format!("could not create a test invoice: {e}"));
            return report;
        }
    };
    let expected = Expected {
        amount,
        description_hash: caps.description_hash.then_some(hash),
        memo: (!caps.description_hash).then_some(TEST_DESCRIPTION),
        network: caps.network.clone(),
        payment_hash: created.payment_hash,
        node: identity.node_id,
        now,
    };
    let checked = check_invoice(&created.bolt11, &expected);
    match &checked {
        Ok(checked) => {
            report.facts.push(format!(
                "test invoice: {} (1 sat, checked)",
                checked.payment_hash
            ));
            let ours = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            let skew = ours.abs_diff(checked.created_at);
            if skew > MAX_CLOCK_SKEW.as_secs() {
                report.problems.push(format!(
                    "clock skew: the backend dated its invoice {skew} s away from this machine's clock"
                ));
            }
        }
        Err(e) => report
            .problems
            .push(format!("the test invoice is unusable: {e}")),
    }
    let Ok(checked) = checked else {
        return report;
    };
    match backend.lookup_invoice(&checked.payment_hash).await {
        Ok(InvoiceState::Pending) => report
            .facts
            .push("lookup: the test invoice is pending, as it should be".into()),
        Ok(InvoiceState::Unknown) if !caps.lookup_sees_unpaid => report
            .facts
            .push("lookup: this backend only reports invoices once paid (the dev backend: `rayo dev settle`)".into()),
        Ok(other) => report.problems.push(format!(
            "lookup: the new test invoice is reported as {other:?}"
        )),
        Err(e) => report.problems.push(format!("lookup failed: {e}")),
    }
    report
}
