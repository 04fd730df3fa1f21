//! Two instances on one database send each payment's alert once per channel, whichever of
//! them notices the payment and whichever claims the message.

use std::time::Duration;

use crate::support::notify::{FakeNtfy, FakeTelegram, TELEGRAM_TOKEN};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_send_one_alert_per_payment_per_channel() {
    let Some((database, http)) = database_and_wallet() else {
        return;
    };
    let ntfy = FakeNtfy::start();
    let telegram = FakeTelegram::start();
    let env = [
        ("RAYO_NOTIFY_ALLOW_PRIVATE", "true"),
        ("RAYO_TELEGRAM_BOT_TOKEN", TELEGRAM_TOKEN),
        ("RAYO_TELEGRAM_API_URL", telegram.base.as_str()),
    ];
    let a = Instance::start(&database, &env);
    let b = Instance::start(&database, &env);
    let topic = format!("ntfy:{}/alice-x7", ntfy.base);
    a.through(
        &database,
        &[
            "user",
            "add",
            "alice",
            "--notify",
            &topic,
            "--notify",
            "telegram:4242",
        ],
    );
    // Invoices from both instances, paid through both.
    let mut hashes = Vec::new();
    for n in 0..10 {
        let (maker, payer) = if n % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let invoice = invoice_from(&http, &maker.base()).await.unwrap();
        payer.through(&database, &["dev", "settle", &invoice.hash]);
        hashes.push(invoice.hash);
    }
    let all = eventually(Duration::from_secs(20), || async {
        ntfy.heard().len() >= 10 && telegram.sent().len() >= 10
    })
    .await;
    assert!(
        all.is_some(),
        "ntfy {} telegram {}",
        ntfy.heard().len(),
        telegram.sent().len()
    );
    // Every event is marked delivered: nothing is left for either instance to send again.
    let settled = eventually(Duration::from_secs(10), || async {
        let events = cli(&database, &["webhook", "list", "--limit", "100"]);
        let events = events.as_array().cloned().unwrap_or_default();
        events.len() == 20 && events.iter().all(|e| e["state"] == "delivered")
    })
    .await;
    assert!(
        settled.is_some(),
        "{}",
        cli(&database, &["webhook", "list"])
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ntfy.heard().len(), 10, "one ntfy message per payment");
    assert_eq!(
        telegram.sent().len(),
        10,
        "one Telegram message per payment"
    );
    for hash in &hashes {
        let clicks = ntfy
            .heard()
            .iter()
            .filter(|h| {
                h.body["click"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(hash.as_str())
            })
            .count();
        assert_eq!(clicks, 1, "{hash}");
        let texts = telegram
            .sent()
            .iter()
            .filter(|m| {
                m["text"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(hash.as_str())
            })
            .count();
        assert_eq!(texts, 1, "{hash}");
    }
    println!(
        "two instances, 10 payments: {} ntfy messages, {} Telegram messages, 20 events delivered",
        ntfy.heard().len(),
        telegram.sent().len()
    );
}
