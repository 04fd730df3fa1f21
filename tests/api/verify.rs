use serde_json::json;

use crate::support::wallet::{assert_preimage_matches, check_invoice};
use crate::support::{assert_lnurl_error, get_json_url, spawn_app};

#[tokio::test]
async fn verify_reports_pending_then_settled_with_the_preimage() {
    let app = spawn_app().await;
    let metadata = app.get_json("/.well-known/lnurlp/satoshi").await["metadata"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = app.callback("satoshi", "amount=21000").await;
    let pr = body["pr"].as_str().unwrap();
    let checked = check_invoice(pr, 21_000, &metadata);
    let verify = body["verify"].as_str().unwrap().to_owned();

    let pending = get_json_url(&app.client, &verify).await;
    assert_eq!(
        pending,
        json!({"status": "OK", "settled": false, "preimage": null, "pr": pr})
    );

    assert_eq!(app.settle(&checked.payment_hash).await.status(), 200);
    let settled = get_json_url(&app.client, &verify).await;
    assert_eq!(settled["settled"], true);
    assert_eq!(settled["pr"], pr);
    assert_eq!(
        settled.as_object().unwrap().len(),
        4,
        "LUD-21 fields only: {settled}"
    );
    assert_preimage_matches(settled["preimage"].as_str().unwrap(), &checked.payment_hash);
}

#[tokio::test]
async fn verify_needs_the_tag_not_just_the_public_payment_hash() {
    let app = spawn_app().await;
    let body = app.callback("satoshi", "amount=21000").await;
    let verify = body["verify"].as_str().unwrap();
    let (base, tag) = verify.rsplit_once('/').unwrap();
    let mut forged = tag.to_owned();
    forged.replace_range(0..1, if tag.starts_with('0') { "1" } else { "0" });
    for url in [
        format!("{base}/{forged}"),
        format!("{base}/"),
        format!("{base}/x"),
    ] {
        let answer = get_json_url(&app.client, &url).await;
        assert_lnurl_error(&answer, "not found");
    }
    // The tag is bound to the user in the path too.
    let other_user = verify.replace("/lnurlp/satoshi/", "/lnurlp/alice/");
    let answer = get_json_url(&app.client, &other_user).await;
    assert_lnurl_error(&answer, "not found");
}

#[tokio::test]
async fn verify_says_not_found_for_unknown_invoices() {
    let app = spawn_app().await;
    let answer = app
        .get_json(&format!(
            "/lnurlp/satoshi/verify/{}/{}",
            "ab".repeat(32),
            "00".repeat(16)
        ))
        .await;
    assert_eq!(answer, json!({"status": "ERROR", "reason": "Not found"}));
    assert_lnurl_error(
        &app.get_json("/lnurlp/satoshi/verify/nothex/00").await,
        "not found",
    );
}
