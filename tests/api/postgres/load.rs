//! Instances killed or restarted under callback load lose no invoice they answered.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::support::get_json_url;
use crate::support::nginx::Nginx;

use super::*;

/// Callbacks from `workers` wallets at once, round robin over `bases`, until `stop`; counts
/// each answered invoice in `progress` as it comes.
async fn callback_load(
    bases: Vec<String>,
    workers: usize,
    stop: Arc<AtomicBool>,
    progress: Arc<AtomicUsize>,
) -> (Vec<Answered>, Vec<String>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let (http, bases, stop, progress) =
            (http.clone(), bases.clone(), stop.clone(), progress.clone());
        tasks.push(tokio::spawn(async move {
            let (mut answered, mut failed) = (Vec::new(), Vec::new());
            let mut n = worker;
            while !stop.load(Ordering::Relaxed) {
                let base = &bases[n % bases.len()];
                n += 1;
                let url = format!("{base}/lnurlp/alice/callback?amount=21000");
                match http.get(&url).send().await {
                    Ok(answer) if answer.status().is_success() => {
                        let body: Value = answer.json().await.unwrap_or_default();
                        match Answered::of(&body) {
                            Some(invoice) => {
                                answered.push(invoice);
                                progress.fetch_add(1, Ordering::Relaxed);
                            }
                            None => failed.push(format!("{base}: {body}")),
                        }
                    }
                    Ok(answer) => failed.push(format!("{base}: {}", answer.status())),
                    Err(e) => failed.push(format!("{base}: {e}")),
                }
            }
            (answered, failed)
        }));
    }
    let (mut answered, mut failed) = (Vec::new(), Vec::new());
    for task in tasks {
        let (a, f) = task.await.unwrap();
        answered.extend(a);
        failed.extend(f);
    }
    (answered, failed)
}

/// Waits until the load has had `more` invoices answered since now.
async fn answered_beyond(progress: &AtomicUsize, more: usize) {
    let target = progress.load(Ordering::Relaxed) + more;
    crate::support::poll_until(60, || async {
        (progress.load(Ordering::Relaxed) >= target).then_some(())
    })
    .await
    .expect("the load keeps being answered");
}

/// How many of `invoices` the database holds.
async fn stored(http: &reqwest::Client, base: &str, invoices: &[Answered]) -> usize {
    let mut found = 0;
    for chunk in invoices.chunks(32) {
        let checks = chunk.iter().map(|invoice| {
            let url = format!("{base}{}", invoice.verify);
            let http = http.clone();
            async move { get_json_url(&http, &url).await["status"] == "OK" }
        });
        found += futures_util::future::join_all(checks)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count();
    }
    found
}

const UNCAPPED: [(&str, &str); 2] = [
    ("RAYO_MAX_PENDING_PER_USER", "0"),
    ("RAYO_RATE_LIMIT_CALLBACK_PER_MINUTE", "100000000"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_under_callback_load_loses_no_invoice_it_answered() {
    let Some((database, http)) = database_and_wallet() else {
        return;
    };
    let mut a = Instance::start(&database, &UNCAPPED);
    let b = Instance::start(&database, &UNCAPPED);
    cli(&database, &["user", "add", "alice"]);
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(callback_load(
        vec![a.base(), b.base()],
        16,
        stop.clone(),
        progress.clone(),
    ));
    answered_beyond(&progress, 200).await;
    a.kill();
    answered_beyond(&progress, 200).await;
    stop.store(true, Ordering::Relaxed);
    let (answered, failed) = load.await.unwrap();
    let found = stored(&http, &b.base(), &answered).await;
    eprintln!(
        "answered {} invoices ({} requests failed, to the killed instance); {found} stored",
        answered.len(),
        failed.len()
    );
    assert!(answered.len() > 100, "the load ran");
    assert!(
        failed.iter().all(|f| f.starts_with(&a.base())),
        "only the killed instance failed: {:?}",
        failed.iter().take(5).collect::<Vec<_>>()
    );
    assert_eq!(found, answered.len(), "every answered invoice is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_behind_a_load_balancer_fails_no_wallet_request() {
    let Some((database, http)) = database_and_wallet() else {
        return;
    };
    let mut a = Instance::start(&database, &UNCAPPED);
    let mut b = Instance::start(&database, &UNCAPPED);
    let Some(nginx) = Nginx::start(&[a.port, b.port]) else {
        return;
    };
    cli(&database, &["user", "add", "alice"]);
    let front = format!("http://127.0.0.1:{}", nginx.port);
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(callback_load(
        vec![front.clone()],
        8,
        stop.clone(),
        progress.clone(),
    ));
    for instance in [&mut a, &mut b] {
        answered_beyond(&progress, 60).await;
        let database = database.clone();
        tokio::task::block_in_place(|| {
            instance.stop();
            instance.restart(&database, &UNCAPPED);
        });
    }
    answered_beyond(&progress, 60).await;
    stop.store(true, Ordering::Relaxed);
    let (answered, failed) = load.await.unwrap();
    let found = stored(&http, &front, &answered).await;
    eprintln!(
        "rolling restart: {} callbacks answered, {} failed, {found} stored",
        answered.len(),
        failed.len()
    );
    assert!(answered.len() > 100, "the load ran");
    assert_eq!(failed, Vec::<String>::new(), "no wallet request failed");
    assert_eq!(found, answered.len(), "every answered invoice is stored");
}
