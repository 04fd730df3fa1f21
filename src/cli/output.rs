//! Human tables by default, JSON with `--json`.

use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use crate::config::Settings;
use crate::invoices::OperatorInvoiceView as InvoiceView;
use crate::operator::{ApiKeyCreated, ApiKeyView, CheckReport, NostrView, UserView, WebhookView};
use crate::startup::Application;
use crate::store::Pruned;

pub fn json<T: Serialize + ?Sized>(value: &T) {
    // serde_json escapes every control character.
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// `text` with every control character (escape sequences, bells, carriage returns, line
/// breaks) shown as an escape instead: what rayo prints comes partly from payers and apps, and
/// must never drive the operator's terminal.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Prints one line for a person, made printable.
macro_rules! say {
    () => {
        println!()
    };
    ($($arg:tt)*) => {
        println!("{}", printable(&format!($($arg)*)))
    };
}
pub(crate) use say;

fn time(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

fn sats(msat: u64) -> String {
    crate::domain::Msat::from_msat(msat).to_string()
}

/// Left-aligned columns, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) {
    // Made printable first, so the columns line up with what is shown.
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| printable(c).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        say!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in &rows {
        line(row.clone());
    }
}

pub fn users(users: &[UserView], as_json: bool) {
    if as_json {
        return json(users);
    }
    if users.is_empty() {
        return say!("no users yet: add one with `rayo user add <name>`");
    }
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                u.address.clone(),
                format!("{} - {}", sats(u.min_sendable), sats(u.max_sendable)),
                u.comment_allowed.to_string(),
                if u.disabled { "disabled" } else { "active" }.into(),
                u.description.clone(),
            ]
        })
        .collect();
    table(
        &["ADDRESS", "RANGE", "COMMENT", "STATE", "DESCRIPTION"],
        &rows,
    );
}

pub fn user(u: &UserView, as_json: bool) {
    if as_json {
        return json(u);
    }
    say!("address:         {}", u.address);
    say!("lnurl:           {}", u.lnurl);
    say!("description:     {}", u.description);
    if let Some(long) = &u.long_description {
        say!("long description: {long}");
    }
    if let Some(image) = &u.image {
        say!("image:           {image}");
    }
    say!(
        "sendable:        {} to {}",
        sats(u.min_sendable),
        sats(u.max_sendable)
    );
    say!("comment allowed: {} characters", u.comment_allowed);
    if !u.payer_data.is_empty() {
        say!("payer data:      {}", u.payer_data);
    }
    if let Some(action) = &u.success_action {
        say!(
            "success action:  {}",
            serde_json::to_string(action).unwrap_or_default()
        );
    }
    if let Some(url) = &u.webhook_url {
        say!("webhook:         {url}");
    }
    if let Some(secret) = &u.webhook_secret {
        say!("webhook secret:  {secret}   (shown once: store it now)");
    }
    if let Some(backend) = &u.backend {
        say!("backend:         {}", printable(backend));
    }
    if let Some(currency) = &u.currency {
        say!(
            "currency:        {} (from {} to {})",
            printable(currency),
            u.fiat_min.as_deref().map(printable).unwrap_or("any".into()),
            u.fiat_max.as_deref().map(printable).unwrap_or("any".into())
        );
    }
    if let Some(wallet) = &u.nwc {
        say!("own wallet:      {}", printable(wallet));
    }
    for (i, channel) in u.notify.iter().enumerate() {
        let state = match &channel.health {
            crate::notify::Health::Ready => "ready".to_owned(),
            crate::notify::Health::Unconfirmed => {
                "waiting for the mailed link to be opened".to_owned()
            }
            crate::notify::Health::Broken { since, reason } => {
                format!("BROKEN since {}: {}", time(*since), printable(reason))
            }
        };
        say!(
            "{}{} ({state})",
            if i == 0 {
                "notify:          "
            } else {
                "                 "
            },
            printable(&channel.channel)
        );
    }
    if !u.notify.is_empty() {
        say!(
            "notify mode:     {}{}",
            u.notify_digest
                .as_deref()
                .map(|d| format!("a digest every {d}"))
                .unwrap_or_else(|| "a message per payment".into()),
            if u.notify_details {
                ", with comments and payer names"
            } else {
                ", amounts only"
            }
        );
    }
    say!(
        "state:           {}",
        if u.disabled { "disabled" } else { "active" }
    );
    match (&u.bip353, &u.lnurl_only) {
        (Some(name), _) => say!("bip-353:         {name}"),
        (None, Some(why)) => say!("bip-353:         none, LNURL only ({})", printable(why)),
        (None, None) => {}
    }
    if let Some(why) = &u.not_payable {
        say!("NOT PAYABLE NOW: {}", printable(why));
    }
    say!("created:         {}", time(u.created_at));
}

pub fn invoices(invoices: &[InvoiceView], as_json: bool) {
    if as_json {
        return json(invoices);
    }
    if invoices.is_empty() {
        return say!("no invoices");
    }
    let rows: Vec<Vec<String>> = invoices
        .iter()
        .map(|i| {
            vec![
                i.payment_hash.clone(),
                i.user.clone(),
                sats(i.amount_msat),
                i.status.to_string(),
                time(i.created_at),
                i.comment.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "PAYMENT HASH",
            "USER",
            "AMOUNT",
            "STATUS",
            "CREATED",
            "COMMENT",
        ],
        &rows,
    );
}

pub fn invoice(i: &InvoiceView, as_json: bool) {
    if as_json {
        return json(i);
    }
    say!("payment hash:  {}", i.payment_hash);
    say!("user:          {}", i.user);
    say!("amount:        {}", sats(i.amount_msat));
    say!("status:        {}", i.status);
    say!("created:       {}", time(i.created_at));
    say!("expires:       {}", time(i.expires_at));
    if let Some(paid_at) = i.paid_at {
        say!("paid:          {}", time(paid_at));
    }
    if let Some(preimage) = &i.preimage {
        say!("preimage:      {preimage}");
    }
    if let Some(comment) = &i.comment {
        say!("comment:       {comment}");
    }
    if let Some(payer_data) = &i.payer_data {
        say!("payer data:    {payer_data}");
    }
    if let Some(hash) = &i.more.description_hash {
        say!("description h: {hash}");
    }
    if let Some(text) = &i.more.hashed_description {
        say!("hashed string: {text}");
    }
    if let Some(memo) = &i.more.memo {
        say!("memo:          {memo}");
    }
    say!("backend:       {}", i.more.backend);
    say!("bolt11:        {}", i.bolt11);
}

pub fn nostr(view: &NostrView, as_json: bool) {
    if as_json {
        return json(view);
    }
    say!("nostrPubkey: {}", view.pubkey);
    say!("npub:        {}", view.npub);
}

pub fn pruned(pruned: &Pruned, dry_run: bool, as_json: bool) {
    if as_json {
        return json(&serde_json::json!({"dry_run": dry_run, "pruned": pruned}));
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    say!("{verb}:");
    say!("  expired unpaid invoices:  {}", pruned.unpaid_invoices);
    say!("  paid invoices:            {}", pruned.paid_invoices);
    say!("  delivered events:         {}", pruned.events);
    say!("  dead letters:             {}", pruned.dead_letters);
}

pub fn db_status(status: &crate::store::postgres::DbStatus, as_json: bool) {
    if as_json {
        return json(status);
    }
    say!("schema version:     {}", status.schema_version);
    say!("this rayo knows:    {}", status.known_version);
    say!("servers running:    {}", status.servers);
    if status.leases.is_empty() {
        say!("leases held:        none");
    } else {
        say!("leases held:");
        for lease in &status.leases {
            say!(
                "  {:<24} by pid {} from {}",
                printable(&lease.role),
                lease.pid,
                printable(&lease.client)
            );
        }
    }
    if !status.public_can.is_empty() {
        say!(
            "WARNING: PUBLIC may {} here: {}",
            status.public_can.join(" and "),
            crate::store::postgres::PUBLIC_ACCESS_ADVICE
        );
    }
}

pub fn prices(
    reports: &[crate::prices::CurrencyReport],
    unmet: &[crate::prices::Unmet],
    as_json: bool,
) {
    if as_json {
        return json(&serde_json::json!({"currencies": reports, "not_offered": unmet}));
    }
    for report in reports {
        match (&report.rate, &report.problem) {
            (Some(rate), _) => say!(
                "{:<5} {} (median of {}){}",
                report.currency,
                rate.price,
                rate.sources.join(", "),
                if report.single_source {
                    "; one source alone may set this rate (RAYO_PRICE_SINGLE_SOURCE)"
                } else {
                    ""
                }
            ),
            (None, Some(problem)) => {
                say!("{:<5} no rate: {}", report.currency, printable(problem));
                say!("      users with limits in {} are paid at the last good rate for RAYO_PRICE_LIMITS_GRACE, then refused until there is a rate", report.currency);
            }
            (None, None) => say!("{:<5} no rate", report.currency),
        }
        for quote in &report.quotes {
            let price = quote
                .price
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".to_owned());
            let age = quote
                .age_secs
                .map(|a| format!("{a} s old"))
                .unwrap_or_default();
            let note = quote.note.as_deref().map(printable).unwrap_or_default();
            say!("  {:<9} {:>18} {:>9}  {}", quote.source, price, age, note);
        }
    }
    for currency in unmet {
        say!("{:<5} not offered: {}", currency.currency, currency.reason);
    }
}

pub fn backend_report(report: &CheckReport, as_json: bool) {
    if as_json {
        return json(
            &serde_json::json!({"ok": report.ok(), "facts": report.facts, "warnings": report.warnings, "problems": report.problems}),
        );
    }
    for fact in &report.facts {
        say!("  {fact}");
    }
    for warning in &report.warnings {
        say!("  WARNING: {}", printable(warning));
    }
    for problem in &report.problems {
        say!("  PROBLEM: {problem}");
    }
    say!(
        "{}",
        if report.ok() {
            "ok: the backend is usable"
        } else {
            "not usable: see the problems above"
        }
    );
}

pub fn banner(settings: &Settings, app: &Application) {
    say!(
        "rayo {} listening on {}",
        env!("CARGO_PKG_VERSION"),
        settings.bind
    );
    say!("  public URL: {}", settings.public_url.base());
    say!("  data:       {}", settings.data_dir.display());
    if app.backend_kind == "dev" {
        say!("  backend:    dev (signs regtest invoices with a local key: no real money moves)");
    } else {
        say!("  backend:    {}", app.backend_kind);
    }
    if let Some(user) = &app.example_user {
        say!();
        say!("  Lightning Address: {}", user.address);
        say!("  LNURL:             {}", user.lnurl);
        say!(
            "  Try:               curl -s {}",
            settings
                .public_url
                .join(&format!("/.well-known/lnurlp/{}", user.name))
        );
    }
    say!();
}

pub fn webhooks(events: &[WebhookView], as_json: bool) {
    if as_json {
        return json(events);
    }
    if events.is_empty() {
        return say!("no webhook events");
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                e.kind.clone(),
                e.state.as_str().to_owned(),
                e.attempts.to_string(),
                time(e.created_at),
                e.url.clone(),
                e.last_outcome.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "EVENT",
            "TYPE",
            "STATE",
            "ATTEMPTS",
            "CREATED",
            "URL",
            "LAST OUTCOME",
        ],
        &rows,
    );
}

pub fn webhook(e: &WebhookView, as_json: bool) {
    if as_json {
        return json(e);
    }
    say!("event:         {}", e.id);
    say!("type:          {}", e.kind);
    say!("invoice:       {}", e.payment_hash);
    say!("url:           {}", e.url);
    say!("state:         {}", e.state.as_str());
    say!("attempts:      {}", e.attempts);
    say!("created:       {}", time(e.created_at));
    match e.finished_at {
        Some(at) => say!("finished:      {}", time(at)),
        None => say!("next attempt:  {}", time(e.next_attempt_at)),
    }
    say!("gives up at:   {}", time(e.deadline));
    for attempt in &e.log {
        let status = attempt
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        say!(
            "  {}  {status:>3}  {:>6} ms  {}",
            time(attempt.at),
            attempt.duration_ms,
            attempt.outcome
        );
    }
    if let Some(body) = &e.body {
        say!("body:          {body}");
    }
}

pub fn api_key_created(created: &ApiKeyCreated, as_json: bool) {
    if as_json {
        return json(created);
    }
    say!("API key for {}: {}", created.view.user, created.key);
    say!(
        "id: {}   (the key is shown once and stored hashed: save it now)",
        created.view.id
    );
}

pub fn api_keys(keys: &[ApiKeyView], as_json: bool) {
    if as_json {
        return json(keys);
    }
    if keys.is_empty() {
        return say!("no API keys");
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.id.clone(),
                k.user.clone(),
                time(k.created_at),
                k.revoked_at.map(time).unwrap_or_else(|| "active".into()),
            ]
        })
        .collect();
    table(&["ID", "USER", "CREATED", "REVOKED"], &rows);
}

pub fn invite_created(created: &crate::accounts::InviteCreated, as_json: bool) {
    if as_json {
        return json(created);
    }
    say!("{}", created.url);
    say!(
        "invite {} · {} use(s) · expires {}",
        created.invite.id,
        created.invite.uses_left,
        crate::accounts::when(created.invite.expires_at)
    );
    say!("The URL is shown this once: send it to the person privately.");
}

pub fn invites(invites: &[crate::accounts::InviteView], as_json: bool) {
    if as_json {
        return json(&invites);
    }
    if invites.is_empty() {
        say!("no invites");
        return;
    }
    say!(
        "{:<14} {:<8} {:<20} {:>5} expires",
        "id",
        "status",
        "name",
        "left"
    );
    for invite in invites {
        let name = match (&invite.for_user, &invite.name) {
            (Some(user), _) => format!("for {user}"),
            (None, Some(name)) => name.clone(),
            (None, None) => "(their choice)".into(),
        };
        say!(
            "{:<14} {:<8} {:<20} {:>5} {}",
            invite.id,
            invite.status,
            name,
            invite.uses_left,
            crate::accounts::when(invite.expires_at)
        );
    }
}

pub fn operator_invite(invite: &crate::accounts::OperatorInviteUrl, as_json: bool) {
    if as_json {
        return json(invite);
    }
    say!("{}", invite.url);
    say!(
        "works once, until {}; it makes whoever opens it an operator of this server: keep it secret",
        crate::accounts::when(invite.expires_at)
    );
}

pub fn audit(log: &[crate::accounts::AuditEntry], as_json: bool) {
    if as_json {
        return json(log);
    }
    if log.is_empty() {
        say!("nothing yet");
        return;
    }
    for entry in log {
        say!(
            "{}  {:<16} {:<16} {}",
            crate::accounts::when(entry.at),
            printable(&entry.who),
            printable(&entry.from),
            printable(&entry.what)
        );
    }
}

/// Every BIP-353 record, as zone-file lines (for a DNS host) or JSON, and who has none.
pub fn bip353_records(
    view: &crate::operator::RecordsView,
    format: crate::cli::RecordFormat,
    as_json: bool,
) {
    if as_json || format == crate::cli::RecordFormat::Json {
        return json(view);
    }
    say!("; BIP-353 payment instructions: one TXT record per address. Serve them from a DNS");
    say!("; host that signs the zone with DNSSEC: payers refuse unsigned answers.");
    for r in &view.records {
        say!("; {}", r.address);
        let strings: Vec<String> = r.strings.iter().map(|s| format!("\"{s}\"")).collect();
        say!("{} {} IN TXT {}", r.name, r.ttl, strings.join(" "));
    }
    for l in &view.lnurl_only {
        say!("; {}: LNURL only ({})", l.user, l.reason);
    }
}

/// What the parent zone needs, per zone rayo serves.
pub fn delegations(views: &[crate::bip353::publish::Delegation], as_json: bool) {
    if as_json {
        return json(views);
    }
    if views.is_empty() {
        say!("no domain can carry BIP-353 names (an IP address or a single-label host cannot)");
    }
    for d in views {
        say!(
            "; zone {}{}",
            d.zone,
            if d.rollover_under_way {
                " (key rollover under way: both keys are published)"
            } else {
                ""
            }
        );
        say!("; at the parent zone, delegate it to rayo's DNS server:");
        for ns in &d.ns {
            say!("{ns}");
        }
        say!("; and give the parent its DS record:");
        for ds in &d.ds {
            say!("{ds}");
        }
        say!(
            "; the zone's keys, as delv's trust anchors (delv -a FILE +root={}.):",
            d.zone
        );
        say!("trust-anchors {{");
        for anchor in &d.trust_anchors {
            say!("  {anchor}");
        }
        say!("}};");
    }
}

/// A `bip353 check`, step by step.
pub fn bip353_check(report: &crate::bip353::check::CheckReport, as_json: bool) {
    if as_json {
        return json(report);
    }
    say!("{} via {}", report.name, report.server);
    for step in &report.steps {
        say!(
            "  {} {}: {}",
            if step.ok { "ok  " } else { "FAIL" },
            step.what,
            step.detail
        );
    }
    if let Some(uri) = &report.uri {
        say!("  record: {uri}");
    }
    say!(
        "{}",
        if report.ok {
            "₿ name checked: payable by BIP-353"
        } else {
            "the name does not check"
        }
    );
}

/// What each DNS host's last sync found and did.
pub fn sync_reports(reports: &[crate::bip353::providers::SyncReport], as_json: bool) {
    if as_json {
        return json(reports);
    }
    if reports.is_empty() {
        say!("no pass has run yet");
    }
    for r in reports {
        say!("{} at {} ({}):", r.domain, r.provider, time(r.at));
        match &r.error {
            Some(error) => say!("  FAILED: {error} (the next pass tries again)"),
            None if r.drifted() => {
                for (what, names) in [
                    ("created", &r.created),
                    ("repaired", &r.repaired),
                    ("removed", &r.removed),
                ] {
                    if !names.is_empty() {
                        say!("  {what}: {}", names.join(", "));
                    }
                }
            }
            None => say!("  in step: nothing to repair"),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_shown_never_obeyed() {
        assert_eq!(super::printable("plain ⚡ text"), "plain ⚡ text");
        assert_eq!(
            super::printable("a\u{1b}[31mred\u{7}\r\nb"),
            "a\\u{1b}[31mred\\u{7}\\u{d}\\nb"
        );
    }
}
