//! Human tables by default, JSON with `--json`.

use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use crate::admin::{ApiKeyCreated, ApiKeyView, InvoiceView, UserView, WebhookView};
use crate::backends::CheckReport;
use crate::config::Settings;
use crate::startup::Application;

fn json<T: Serialize + ?Sized>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

fn time(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

fn sats(msat: u64) -> String {
    if msat.is_multiple_of(1000) {
        format!("{} sat", msat / 1000)
    } else {
        format!("{msat} msat")
    }
}

/// Left-aligned columns, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
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
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

pub fn users(users: &[UserView], as_json: bool) {
    if as_json {
        return json(users);
    }
    if users.is_empty() {
        return println!("no users yet: add one with `rayo user add <name>`");
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
    println!("address:         {}", u.address);
    println!("lnurl:           {}", u.lnurl);
    println!("description:     {}", u.description);
    if let Some(long) = &u.long_description {
        println!("long description: {long}");
    }
    if let Some(image) = &u.image {
        println!("image:           {image}");
    }
    println!(
        "sendable:        {} to {}",
        sats(u.min_sendable),
        sats(u.max_sendable)
    );
    println!("comment allowed: {} characters", u.comment_allowed);
    if !u.payer_data.is_empty() {
        println!("payer data:      {}", u.payer_data);
    }
    if let Some(action) = &u.success_action {
        println!(
            "success action:  {}",
            serde_json::to_string(action).unwrap_or_default()
        );
    }
    if let Some(url) = &u.webhook_url {
        println!("webhook:         {url}");
    }
    if let Some(secret) = &u.webhook_secret {
        println!("webhook secret:  {secret}   (shown once: store it now)");
    }
    println!(
        "state:           {}",
        if u.disabled { "disabled" } else { "active" }
    );
    println!("created:         {}", time(u.created_at));
}

pub fn invoices(invoices: &[InvoiceView], as_json: bool) {
    if as_json {
        return json(invoices);
    }
    if invoices.is_empty() {
        return println!("no invoices");
    }
    let rows: Vec<Vec<String>> = invoices
        .iter()
        .map(|i| {
            vec![
                i.payment_hash.clone(),
                i.user.clone(),
                sats(i.amount_msat),
                i.status.clone(),
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
    println!("payment hash:  {}", i.payment_hash);
    println!("user:          {}", i.user);
    println!("amount:        {}", sats(i.amount_msat));
    println!("status:        {}", i.status);
    println!("created:       {}", time(i.created_at));
    println!("expires:       {}", time(i.expires_at));
    if let Some(paid_at) = i.paid_at {
        println!("paid:          {}", time(paid_at));
    }
    if let Some(preimage) = &i.preimage {
        println!("preimage:      {preimage}");
    }
    if let Some(comment) = &i.comment {
        println!("comment:       {comment}");
    }
    if let Some(payer_data) = &i.payer_data {
        println!("payer data:    {payer_data}");
    }
    if let Some(hash) = &i.description_hash {
        println!("description h: {hash}");
    }
    if let Some(text) = &i.hashed_description {
        println!("hashed string: {text}");
    }
    if let Some(memo) = &i.memo {
        println!("memo:          {memo}");
    }
    println!("backend:       {}", i.backend);
    println!("bolt11:        {}", i.bolt11);
}

pub fn backend_report(report: &CheckReport, as_json: bool) {
    if as_json {
        return json(
            &serde_json::json!({"ok": report.ok(), "facts": report.facts, "problems": report.problems}),
        );
    }
    for fact in &report.facts {
        println!("  {fact}");
    }
    for problem in &report.problems {
        println!("  PROBLEM: {problem}");
    }
    println!(
        "{}",
        if report.ok() {
            "ok: the backend is usable"
        } else {
            "not usable: see the problems above"
        }
    );
}

pub fn banner(settings: &Settings, app: &Application) {
    println!(
        "rayo {} listening on {}",
        env!("CARGO_PKG_VERSION"),
        settings.bind
    );
    println!("  public URL: {}", settings.public_url.base());
    println!("  data:       {}", settings.data_dir.display());
    if app.backend_kind == "dev" {
        println!(
            "  backend:    dev (signs regtest invoices with a local key: no real money moves)"
        );
    } else {
        println!("  backend:    {}", app.backend_kind);
    }
    if let Some(user) = &app.example_user {
        println!();
        println!("  Lightning Address: {}", user.address);
        println!("  LNURL:             {}", user.lnurl);
        println!(
            "  Try:               curl -s {}",
            settings
                .public_url
                .join(&format!("/.well-known/lnurlp/{}", user.name))
        );
    }
    println!();
}

pub fn webhooks(events: &[WebhookView], as_json: bool) {
    if as_json {
        return json(events);
    }
    if events.is_empty() {
        return println!("no webhook events");
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                e.kind.clone(),
                e.state.clone(),
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
    println!("event:         {}", e.id);
    println!("type:          {}", e.kind);
    println!("invoice:       {}", e.payment_hash);
    println!("url:           {}", e.url);
    println!("state:         {}", e.state);
    println!("attempts:      {}", e.attempts);
    println!("created:       {}", time(e.created_at));
    match e.finished_at {
        Some(at) => println!("finished:      {}", time(at)),
        None => println!("next attempt:  {}", time(e.next_attempt_at)),
    }
    println!("gives up at:   {}", time(e.deadline));
    for attempt in &e.log {
        let status = attempt
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        println!(
            "  {}  {status:>3}  {:>6} ms  {}",
            time(attempt.at),
            attempt.duration_ms,
            attempt.outcome
        );
    }
    if let Some(body) = &e.body {
        println!("body:          {body}");
    }
}

pub fn api_key_created(created: &ApiKeyCreated, as_json: bool) {
    if as_json {
        return json(created);
    }
    println!("API key for {}: {}", created.view.user, created.key);
    println!(
        "id: {}   (the key is shown once and stored hashed: save it now)",
        created.view.id
    );
}

pub fn api_keys(keys: &[ApiKeyView], as_json: bool) {
    if as_json {
        return json(keys);
    }
    if keys.is_empty() {
        return println!("no API keys");
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
