//! Amounts in a currency: prices from fakes of the real price APIs (no network), the
//! payRequest's `currencies`, callbacks denominated in a currency, and what happens when prices
//! are stale or wrong.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use lightning_invoice::Bolt11Invoice;
use serde_json::{json, Value};

use rayo::prices::Currency;

use crate::support::binary::{rayo, reserve_port};
use crate::support::fake_prices::{FakePrices, Misbehaviour};
use crate::support::{assert_lnurl_error, spawn_app_in, ShiftedClock, TestApp};

/// USD: four sources, one of them 30% off; CLP: three.
fn market() -> FakePrices {
    let prices = FakePrices::start();
    prices.set("kraken", "USD", "100000");
    prices.set("coinbase", "USD", "100200");
    prices.set("bitstamp", "USD", "130000");
    prices.set("yadio", "USD", "100100");
    prices.set("buda", "CLP", "90000000");
    prices.set("coinbase", "CLP", "90300000");
    prices.set("yadio", "CLP", "90500000");
    prices
}

fn prices_output(prices: &FakePrices) -> String {
    let dir = tempfile::tempdir().unwrap();
    let output = rayo(dir.path(), reserve_port())
        .arg("prices")
        .env("RAYO_CURRENCIES", "USD,CLP,USDC")
        .env("RAYO_PRICE_SOURCES", prices.sources())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rayo_prices_shows_each_quote_its_age_and_the_median() {
    let prices = market();
    let shown = {
        let prices = prices.clone();
        tokio::task::spawn_blocking(move || prices_output(&prices))
            .await
            .unwrap()
    };
    eprintln!("{shown}");
    assert!(
        shown.contains("USD   100100 (median of coinbase, kraken, yadio)"),
        "{shown}"
    );
    assert!(
        shown.contains("more than 3% from the median: not used"),
        "{shown}"
    );
    assert!(
        shown.contains("CLP   90300000 (median of buda, coinbase, yadio)"),
        "{shown}"
    );
    assert!(shown.contains("0 s old"), "{shown}");
    // One market alone never sets a rate unless the operator says so.
    assert!(
        shown.contains(
            "USDC  not offered: only buda quotes it, and a rate needs 2 agreeing sources"
        ),
        "{shown}"
    );

    // Sources that answer HTML, a 5xx or garbage are left out, each with its reason.
    prices.misbehave("coinbase", Misbehaviour::Html);
    prices.misbehave("buda", Misbehaviour::ServerError);
    prices.misbehave("kraken", Misbehaviour::Garbage);
    prices.misbehave("bitstamp", Misbehaviour::Hang);
    let shown = tokio::task::spawn_blocking(move || prices_output(&prices))
        .await
        .unwrap();
    eprintln!("{shown}");
    assert!(shown.contains("not JSON"), "{shown}");
    assert!(shown.contains("HTTP 503"), "{shown}");
    assert!(shown.contains("no result"), "{shown}");
    assert!(shown.contains("no answer within 5 s"), "{shown}");
    // One source left is not enough.
    assert!(
        shown.contains("USD   no rate: USD needs 2 fresh price sources, and only 1 answered"),
        "{shown}"
    );
    assert!(
        shown.contains("CLP   no rate: CLP needs 2 fresh price sources, and only 1 answered"),
        "{shown}"
    );
}

async fn app_with_currencies(prices: &FakePrices, clock: Arc<ShiftedClock>) -> TestApp {
    app_refreshing_every(prices, clock, Duration::from_secs(60)).await
}

async fn app_refreshing_every(
    prices: &FakePrices,
    clock: Arc<ShiftedClock>,
    every: Duration,
) -> TestApp {
    let tickers = prices.tickers();
    let app = spawn_app_in(tempfile::tempdir().unwrap(), None, Some(clock), move |s| {
        s.currencies = vec![
            Currency::find("USD").unwrap(),
            Currency::find("CLP").unwrap(),
        ];
        s.price_refresh = every;
        s.price_sources = tickers;
    })
    .await;
    // The first reading happens in the background as the server starts.
    let ready = app
        .eventually(10, || async {
            app.get_json("/.well-known/lnurlp/satoshi").await["currencies"]
                .as_array()
                .is_some_and(|c| c.len() == 2)
        })
        .await;
    assert!(ready, "prices were read");
    app
}

/// The `currencies` as npm `@uma-sdk/core` reads them (installed by `.ci/run`), or `None`
/// (with a note) where it is not installed.
fn read_with_the_uma_sdk(currencies: &Value) -> Option<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/uma");
    if !dir.join("node_modules/@uma-sdk/core").exists() {
        let why = "@uma-sdk/core is not installed: run `npm ci --prefix tests/uma` (.ci/run does)";
        crate::support::skip_unless_ci(why);
        return None;
    }
    let output = std::process::Command::new("node")
        .arg("currencies.mjs")
        .arg(currencies.to_string())
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the UMA SDK refuses rayo's currencies: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

fn invoice_msat(answer: &Value) -> u64 {
    let pr = answer["pr"].as_str().unwrap_or_else(|| panic!("{answer}"));
    let invoice = Bolt11Invoice::from_str(pr).unwrap();
    eprintln!(
        "decoded: {} msat, network {:?}, payment hash {}, description hash {}, expiry {} s",
        invoice.amount_milli_satoshis().unwrap(),
        invoice.currency(),
        invoice.payment_hash(),
        match invoice.description() {
            lightning_invoice::Bolt11InvoiceDescriptionRef::Hash(h) => h.0.to_string(),
            lightning_invoice::Bolt11InvoiceDescriptionRef::Direct(d) => format!("(memo) {d}"),
        },
        invoice.expiry_time().as_secs()
    );
    invoice.amount_milli_satoshis().unwrap()
}

#[tokio::test]
async fn a_payer_can_name_the_amount_in_a_currency_and_pays_at_least_its_worth() {
    let prices = market();
    let clock = Arc::new(ShiftedClock::default());
    let app = app_with_currencies(&prices, clock.clone()).await;

    let pay_request = app.get_json("/.well-known/lnurlp/satoshi").await;
    let usd = &pay_request["currencies"][0];
    assert_eq!(
        (
            usd["code"].clone(),
            usd["symbol"].clone(),
            usd["decimals"].clone()
        ),
        (json!("USD"), json!("$"), json!(2))
    );
    // 1e11 msat per bitcoin at 100100 USD, per cent: 9990.00999...
    let multiplier = usd["multiplier"].as_f64().unwrap();
    assert!((multiplier - 9990.00999).abs() < 0.001, "{multiplier}");
    assert_eq!(pay_request["currencies"][1]["code"], "CLP");
    assert_eq!(pay_request["currencies"][1]["decimals"], 0);
    if let Some(read) = read_with_the_uma_sdk(&pay_request["currencies"]) {
        // The SDK reads what rayo meant: a cent is worth about 9990 msat, and the satoshi
        // payRequest's limits (1 sat to 10,000,000 sat) in cents, rounded inwards.
        assert_eq!(read[0]["code"], "USD");
        assert_eq!(read[0]["decimals"], 2);
        assert_eq!(read[0]["minSendable"], 1);
        assert_eq!(read[0]["maxSendable"], 1_001_000);
        let multiplier = read[0]["multiplier"].as_f64().unwrap();
        assert!((500.0 * multiplier - 4_995_005.0).abs() < 1.0);
    }

    // 5.00 USD at 100100 USD/BTC is 4995004.995 msat: the payer is asked for 4995005.
    assert_eq!(
        invoice_msat(&app.callback("satoshi", "amount=500.USD").await),
        4_995_005
    );
    // 1000 CLP at 90300000 CLP/BTC is 1107419.71 msat: 1107420.
    assert_eq!(
        invoice_msat(&app.callback("satoshi", "amount=1000.CLP").await),
        1_107_420
    );
    // Plain millisatoshis, exactly as before.
    assert_eq!(
        invoice_msat(&app.callback("satoshi", "amount=21000").await),
        21_000
    );

    let stored = app.invoices().await.len();
    for (query, reason) in [
        ("amount=500.XYZ", "not offered"),
        ("amount=500.EUR", "not offered"),
        ("amount=5.00.USD", "whole number of its smallest unit"),
        ("amount=-5.USD", "whole number of its smallest unit"),
        ("amount=.USD", "whole number of its smallest unit"),
        ("amount=99999999999999999999.USD", "out of range"),
        ("amount=999999999999999.USD", "out of range"),
        ("amount=0.USD", "too small"),
        ("amount=500.USD&convert=CLP", "does not convert"),
    ] {
        assert_lnurl_error(&app.callback("satoshi", query).await, reason);
    }
    assert_eq!(app.invoices().await.len(), stored, "nothing was stored");

    // Prices older than RAYO_PRICE_MAX_AGE (10 min) are never used: amounts in a currency are
    // refused, amounts in sats are not.
    clock.advance(11 * 60);
    assert_lnurl_error(
        &app.callback("satoshi", "amount=500.USD").await,
        "no price for USD newer than 600 s",
    );
    assert!(app.callback("satoshi", "amount=21000").await["pr"].is_string());
    let pay_request = app.get_json("/.well-known/lnurlp/satoshi").await;
    assert_eq!(
        pay_request["currencies"],
        json!([]),
        "stale currencies are not offered"
    );
}

#[tokio::test]
async fn apps_can_name_an_amount_in_a_currency_and_the_rate_travels_with_the_invoice() {
    let prices = market();
    let clock = Arc::new(ShiftedClock::default());
    let app = app_with_currencies(&prices, clock.clone()).await;
    let receiver = crate::support::receiver::Receiver::start();
    app.add_user("shop", json!({"webhook_url": receiver.url}))
        .await;
    let key = app.api_key("shop").await;

    let (status, created) = app
        .create_invoice(
            &key,
            json!({"amount": {"currency": "USD", "value": "5.00"}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let invoice = &created;
    assert_eq!(invoice["amount_msat"], 4_995_005);
    assert_eq!(invoice["fiat"]["value"], "5.00");
    assert_eq!(invoice["fiat"]["rate"], "100100");
    let hash = invoice["payment_hash"].as_str().unwrap().to_owned();

    // The webhook of its payment carries it too.
    app.settle(&hash).await;
    let arrived = app
        .eventually(10, || async { !receiver.received().is_empty() })
        .await;
    assert!(arrived);
    let body: Value = serde_json::from_str(&receiver.received()[0].body).unwrap();
    assert_eq!(body["data"]["invoice"]["fiat"]["currency"], "USD", "{body}");

    let stored = app.invoices().await.len();
    for (amount, problem) in [
        (json!({"currency": "USD", "value": 5}), "not a number"),
        (
            json!({"currency": "USD", "value": "5.001"}),
            "more than 2 digits",
        ),
        (
            json!({"currency": "CLP", "value": "1000.5"}),
            "more than 0 digits",
        ),
        (json!({"currency": "USD", "value": "0"}), "more than zero"),
        (
            json!({"currency": "USD", "value": "-1"}),
            "not a decimal number",
        ),
        (
            json!({"currency": "USD", "value": "1e3"}),
            "not a decimal number",
        ),
        (json!({"currency": "XYZ", "value": "1"}), "not offered"),
        (
            json!({"currency": "USD", "value": "99999999999999.99"}),
            "more than all bitcoin",
        ),
    ] {
        let (status, answer) = app.create_invoice(&key, json!({"amount": amount})).await;
        assert_eq!(status, 422, "{amount}: {answer}");
        assert!(answer.to_string().contains(problem), "{amount}: {answer}");
    }
    let (status, answer) = app
        .create_invoice(
            &key,
            json!({"amount": {"currency": "USD", "value": "1"}, "amount_msat": 1000}),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(app.invoices().await.len(), stored, "nothing was stored");

    clock.advance(11 * 60);
    let (status, answer) = app
        .create_invoice(
            &key,
            json!({"amount": {"currency": "USD", "value": "5.00"}}),
        )
        .await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer.to_string().contains("amounts in msat still work"),
        "{answer}"
    );
    let (status, _) = app
        .create_invoice(&key, json!({"amount_msat": 21000}))
        .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn a_shop_priced_in_pesos_is_payable_between_its_peso_limits_at_the_current_rate() {
    let prices = market();
    let app = app_refreshing_every(
        &prices,
        Arc::new(ShiftedClock::default()),
        Duration::from_secs(1),
    )
    .await;
    let shop = app
        .add_user(
            "shop",
            json!({"currency": "CLP", "fiat_min": "1000", "fiat_max": "500000"}),
        )
        .await;
    assert_eq!(
        (
            shop["currency"].clone(),
            shop["fiat_min"].clone(),
            shop["fiat_max"].clone()
        ),
        (json!("CLP"), json!("1000"), json!("500000"))
    );
    let pay_request = app.get_json("/.well-known/lnurlp/shop").await;
    // 1000 CLP and 500000 CLP at 90300000 CLP/BTC, rounded up as the callback converts them.
    assert_eq!(pay_request["minSendable"], 1_107_420);
    assert_eq!(pay_request["maxSendable"], 553_709_857);
    assert_eq!(
        pay_request["currencies"][0]["code"], "CLP",
        "the shop's own currency first"
    );
    assert_eq!(pay_request["currencies"][0]["minSendable"], 1000);
    assert_eq!(pay_request["currencies"][0]["maxSendable"], 500_000);

    assert!(app.callback("shop", "amount=1000.CLP").await["pr"].is_string());

    // The pay page asks for pesos, says what they are worth in sats, and records the amount.
    let page = app.get("/@shop").await.text().await.unwrap();
    assert!(
        page.contains(r#"name="fiat" min="1000" max="500000" step="1""#),
        "{page}"
    );
    assert!(page.contains("1 CLP ≈ 1.108 sats"), "{page}");
    let paid = app.pay_form("shop", &[("fiat", "2500")]).await;
    let hash = paid.url().path().trim_start_matches("/pay/").to_owned();
    assert_eq!(paid.status(), 200);
    let invoice = app.invoice(&hash).await;
    assert_eq!(invoice["fiat"]["value"], "2500");
    assert_eq!(invoice["amount_msat"], 2_768_550);
    let refused = app.pay_form("shop", &[("fiat", "10.5")]).await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("at most 0 decimals"));
    assert_lnurl_error(&app.callback("shop", "amount=900.CLP").await, "too small");
    assert_lnurl_error(
        &app.callback("shop", "amount=600000.CLP").await,
        "too large",
    );
    assert_lnurl_error(&app.callback("shop", "amount=1000000").await, "too small");

    // The rate moves: so does the range in sats.
    prices.set("buda", "CLP", "45000000");
    prices.set("coinbase", "CLP", "45150000");
    prices.set("yadio", "CLP", "45250000");
    // 1000 CLP at 45150000 CLP/BTC: 2214839.4 msat, rounded up.
    let moved = app
        .eventually(10, || async {
            app.get_json("/.well-known/lnurlp/shop").await["minSendable"] == 2_214_840
        })
        .await;
    assert!(moved, "the range follows the rate");

    for (settings, problem) in [
        (json!({"currency": "EUR"}), "not offered"),
        (json!({"currency": "CLP", "fiat_min": "10.5"}), "decimals"),
        (
            json!({"currency": "CLP", "fiat_min": "0"}),
            "more than zero",
        ),
        (
            json!({"currency": "CLP", "fiat_min": "5000", "fiat_max": "100"}),
            "at most fiat_max",
        ),
        (json!({"fiat_min": "100"}), "need a currency"),
    ] {
        let answer = app
            .admin(
                reqwest::Method::POST,
                "/users",
                Some(json!({"name": "other", "settings": settings})),
            )
            .await;
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap();
        assert_eq!(status, 422, "{settings}: {body}");
        assert!(body.to_string().contains(problem), "{settings}: {body}");
    }
}

#[tokio::test]
async fn a_browser_pays_a_shop_in_its_currency() {
    let Some(tools) = crate::pages::browser_tools() else {
        return;
    };
    let prices = market();
    let app = app_with_currencies(&prices, Arc::new(ShiftedClock::default())).await;
    app.add_user(
        "shop",
        json!({"currency": "CLP", "fiat_min": "1000", "fiat_max": "500000"}),
    )
    .await;
    let seen = crate::pages::browse(tools, &app, Some("shop")).await;
    assert_eq!(seen["currencyLabel"], "Amount (CLP)");
    assert!(
        seen["satEquivalent"]
            .as_str()
            .unwrap()
            .starts_with("1 CLP ≈ 1.108 sats"),
        "{seen}"
    );
    // 2500 CLP at 90300000 CLP/BTC, rounded up.
    let invoice = app
        .invoice(seen["currencyCheckoutHash"].as_str().unwrap())
        .await;
    assert_eq!(invoice["amount_msat"], 2_768_550);
    assert_eq!(invoice["fiat"]["value"], "2500");
    assert_eq!(seen["consoleErrors"], json!([]));
}

#[tokio::test]
async fn a_shop_priced_in_pesos_keeps_its_limits_while_prices_are_down_then_waits_for_a_price() {
    let prices = market();
    let clock = Arc::new(ShiftedClock::default());
    let app = app_with_currencies(&prices, clock.clone()).await;
    app.add_user(
        "shop",
        json!({"currency": "CLP", "fiat_min": "1000", "fiat_max": "500000"}),
    )
    .await;
    for source in ["buda", "kraken", "coinbase", "bitstamp", "yadio"] {
        prices.misbehave(source, Misbehaviour::ServerError);
    }

    // Every quote is stale: the last good rate still holds the limits set in pesos.
    clock.advance(11 * 60);
    let pay_request = app.get_json("/.well-known/lnurlp/shop").await;
    assert_eq!(pay_request["minSendable"], 1_107_420, "{pay_request}");
    assert_lnurl_error(&app.callback("shop", "amount=1000").await, "too small");
    assert!(app.callback("shop", "amount=1107420").await["pr"].is_string());

    // An hour after that rate was true, the limits cannot be enforced: no payment is taken,
    // with a reason a payer understands, and the payRequest still answers.
    clock.advance(50 * 60);
    let pay_request = app.get_json("/.well-known/lnurlp/shop").await;
    assert_eq!(pay_request["tag"], "payRequest");
    let stored = app.invoices().await.len();
    for amount in ["1000", "1107420", "553709857"] {
        assert_lnurl_error(
            &app.callback("shop", &format!("amount={amount}")).await,
            "This address is priced in CLP, and no CLP price can be had now",
        );
    }
    let page = app.pay_form("shop", &[("amount", "2000")]).await;
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("no CLP price can be had now"));
    assert_eq!(app.invoices().await.len(), stored, "nothing was made");
    let shown: Value = app
        .admin(reqwest::Method::GET, "/users/shop", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        shown["not_payable"]
            .as_str()
            .is_some_and(|why| why.contains("no CLP price can be had now")),
        "{shown}"
    );
    // Users without limits in a currency are paid in sats as before.
    assert!(app.callback("satoshi", "amount=1000").await["pr"].is_string());
}
