//! The pages, as a payer's browser sees them: headless Chromium (tests/browser/pages.mjs)
//! scans the QR codes, asks for an invoice, and watches the checkout page turn to paid.

use serde_json::{json, Value};

use crate::support::{spawn_app, spawn_app_with, TestApp};

pub(crate) fn browser_tools() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if dir.join("node_modules/playwright-core").exists() && std::path::Path::new(&chromium).exists()
    {
        return Some(dir);
    }
    let why = "the browser test needs Debian's chromium and `npm ci --prefix tests/browser` (.ci/run installs both)";
    crate::support::skip_unless_ci(why);
    None
}

/// Runs `tests/browser/pages.mjs` against `app` (and the pay page of `priced`, a user priced in
/// a currency, if given); what the browser saw. Screenshots go to `target/test-artifacts/`.
pub(crate) async fn browse(
    tools: std::path::PathBuf,
    app: &TestApp,
    priced: Option<&str>,
) -> Value {
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let mut command = std::process::Command::new("node");
    command
        .current_dir(&tools)
        .arg("pages.mjs")
        .arg(&app.address)
        .arg(&app.admin_token)
        .arg(artifacts);
    command.args(priced);
    let output = tokio::task::spawn_blocking(move || command.output().expect("node runs"))
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the browser run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn a_browser_scans_the_pay_page_gets_an_invoice_and_sees_it_paid() {
    let Some(tools) = browser_tools() else {
        return;
    };
    let app = spawn_app().await;
    let seen = browse(tools, &app, None).await;

    // The pay page's QR is the user's LNURL, uppercase, as a lightning: URI.
    let lnurl = seen["payPageQr"]
        .as_str()
        .unwrap()
        .strip_prefix("LIGHTNING:")
        .unwrap();
    let (hrp, url) = bech32::decode(lnurl).unwrap();
    assert_eq!(hrp.to_lowercase(), "lnurl");
    assert_eq!(
        String::from_utf8(url).unwrap(),
        format!("{}/.well-known/lnurlp/satoshi", app.address)
    );
    assert_eq!(lnurl, lnurl.to_uppercase());
    assert_eq!(seen["payPageLink"], format!("lightning:{lnurl}"));
    assert_eq!(seen["payPageAddress"], format!("satoshi@{}", app.domain()));

    // The form made a real invoice through the callback, with the comment.
    let hash = seen["checkoutHash"].as_str().unwrap();
    let invoice = app.invoice(hash).await;
    assert_eq!(invoice["amount_msat"], 21_000);
    assert_eq!(invoice["comment"], "from the browser");
    let bolt11 = invoice["bolt11"].as_str().unwrap();
    assert_eq!(
        seen["checkoutQr"],
        format!("LIGHTNING:{}", bolt11.to_uppercase())
    );
    assert_eq!(seen["checkoutAmount"], "21 sats");
    assert_eq!(seen["paidVisibleBefore"], false);
    assert_eq!(seen["paidVisibleAfter"], true);
    assert!(seen["countdown"].as_str().unwrap().contains(':'));

    // The app's checkout page: text shown as text, the QR is its invoice, and a way back.
    assert!(
        seen["appDescription"]
            .as_str()
            .unwrap()
            .contains("Order <b>#7</b>"),
        "{}",
        seen["appDescription"]
    );
    assert_eq!(
        seen["appQr"],
        format!(
            "LIGHTNING:{}",
            seen["appBolt11"].as_str().unwrap().to_uppercase()
        )
    );
    assert_eq!(seen["returnLinkBefore"], false, "no way back before paying");
    assert_eq!(seen["returnLink"], "https://shop.example/thanks?order=7");
    assert!(seen["noScriptQr"]
        .as_str()
        .unwrap()
        .starts_with("LIGHTNING:LNBCRT"));
    assert_eq!(seen["consoleErrors"], json!([]), "no CSP or script errors");
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    assert!(artifacts.join("paid.png").exists());
}

#[tokio::test]
async fn user_text_cannot_inject_markup_into_pages() {
    let app = spawn_app().await;
    app.add_user(
        "mallory",
        json!({
            "description": "<script>alert(1)</script>",
            "long_description": "\"><img src=x onerror=alert(2)>",
            "comment_allowed": 10
        }),
    )
    .await;
    let page = app.get("/@mallory").await.text().await.unwrap();
    assert!(!page.contains("<script>alert(1)</script>"));
    assert!(
        page.contains("&lt;script&gt;alert(1)") || page.contains("&#60;script&#62;alert(1)"),
        "shown as text"
    );
    assert!(!page.contains("<img src=x"));
    let short = app.get("/mallory").await;
    assert_eq!(short.status(), 200, "the short address works for users");
}

#[tokio::test]
async fn pages_refuse_what_does_not_exist_and_never_shadow_endpoints() {
    let app = spawn_app_with(None, |s| s.list_users = true).await;
    assert_eq!(app.get("/@nobody").await.status(), 404);
    assert_eq!(app.get("/nobody").await.status(), 404);
    assert_eq!(
        app.get(&format!("/pay/{}", "ab".repeat(32))).await.status(),
        404
    );
    assert_eq!(app.get("/pay/zzz").await.status(), 404);
    assert_eq!(app.get("/healthz").await.status(), 200);
    let landing = app.get("/").await.text().await.unwrap();
    assert!(landing.contains("satoshi@"), "users listed when enabled");
    let bad = app.pay_form("satoshi", &[("amount", "-5")]).await;
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("whole satoshis"));
    let too_much = app.pay_form("satoshi", &[("amount", "999999999999")]).await;
    assert_eq!(too_much.status(), 422);
    assert!(app.invoices().await.is_empty());

    let quiet = spawn_app().await;
    assert!(!quiet
        .get("/")
        .await
        .text()
        .await
        .unwrap()
        .contains("satoshi@"));
}

#[tokio::test]
async fn only_the_pay_form_from_the_pay_page_makes_an_invoice() {
    let app = spawn_app().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // A link, a prefetch or a crawler GETs the form's address: it sees the pay page.
    let link = app.get("/@satoshi/pay?amount=1000").await;
    assert_eq!(link.status(), 200);
    assert!(app.invoices().await.is_empty(), "a GET makes no invoice");

    // A page on another site that submits the form for its visitor is refused.
    let post_from = |headers: &[(&str, &str)]| {
        let mut request = no_redirects
            .post(format!("{}/@satoshi/pay", app.address))
            .form(&[("amount", "1000")]);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    for headers in [
        &[("Sec-Fetch-Site", "cross-site")][..],
        &[("Sec-Fetch-Site", "same-site")],
        &[("Origin", "https://evil.example")],
        &[("Origin", "null")],
    ] {
        let refused = post_from(headers).await.unwrap();
        assert_eq!(refused.status(), 403, "{headers:?}");
        assert!(refused
            .text()
            .await
            .unwrap()
            .contains("forms on other sites cannot make invoices"));
    }
    assert!(app.invoices().await.is_empty(), "nothing was made");

    // The pay page's own form: an invoice, and answers no cache keeps.
    let own_origin = app.address.clone();
    for headers in [
        &[("Sec-Fetch-Site", "same-origin")][..],
        &[("Origin", own_origin.as_str())],
    ] {
        let made = post_from(headers).await.unwrap();
        assert_eq!(made.status(), 303, "{headers:?}");
        assert_eq!(made.headers()["cache-control"], "no-store, private");
        let checkout = made.headers()["location"].to_str().unwrap().to_owned();
        let page = app.get(&checkout).await;
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["cache-control"], "no-store, private");
    }
    assert_eq!(app.invoices().await.len(), 2);
    let refused = app.pay_form("satoshi", &[("amount", "-1")]).await;
    assert_eq!(refused.headers()["cache-control"], "no-store, private");
}
