//! The operator console: an operator's journey in a real browser (tests/browser/console.mjs,
//! with a virtual authenticator), bootstrapped and checked with the real CLI, and every attack
//! the issue names, tried against the routes.

use serde_json::Value;

use crate::accounts::{
    between, get_as, join, local_base, multipart, no_redirects, on_localhost, post_as,
};
use crate::pages::browser_tools;
use crate::support::binary::rayo_binary;
use crate::support::fake_prices::FakePrices;
use crate::support::receiver::Receiver;
use crate::support::{spawn_app_with, TestApp};

/// Public and admin addresses apart, both on `localhost` (passkeys need a domain name);
/// webhooks given up after a few seconds, so a dead letter comes soon.
fn with_console(s: &mut rayo::config::Settings) {
    on_localhost(s);
    s.admin_bind = Some("127.0.0.1:0".parse().unwrap());
    s.webhook_window = std::time::Duration::from_secs(3);
    s.webhook_first_retry = std::time::Duration::from_secs(1);
}

/// Where operators open the console: the admin address, by name.
fn console_base(app: &TestApp) -> String {
    app.admin.replace("127.0.0.1", "localhost")
}

/// The real CLI, on `data_dir` (it finds the running server and its token there).
async fn cli_in(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(rayo_binary());
    command
        .env_remove("RAYO_ADMIN_TOKEN")
        .env_remove("RAYO_ADMIN_URL")
        .env_remove("RAYO_DATABASE_URL")
        .env("RAYO_DATA_DIR", data_dir)
        .env("RAYO_LOG", "warn")
        .current_dir(data_dir)
        .args(args);
    tokio::task::spawn_blocking(move || command.output().expect("rayo runs"))
        .await
        .unwrap()
}

async fn cli_json(data_dir: &std::path::Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let output = cli_in(data_dir, &all).await;
    assert!(
        output.status.success(),
        "rayo {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Runs the console journey; what the browser saw.
async fn journey(app: &TestApp, invite: &str, receiver: &Receiver, mode: Option<&str>) -> Value {
    let tools = browser_tools().expect("browser tools");
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let mut command = std::process::Command::new("node");
    command
        .current_dir(&tools)
        .arg("console.mjs")
        .arg(console_base(app))
        .arg(local_base(app))
        .arg(&app.admin_token)
        .arg(&artifacts)
        .arg(invite)
        .arg(receiver.base())
        .args(mode);
    let output = tokio::task::spawn_blocking(move || command.output().expect("node runs"))
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the browser run failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// An operator's browser, as HTTP sees it: their console cookie and a form token.
struct Operator {
    cookie: String,
    csrf: String,
}

impl Operator {
    fn cookie(&self) -> String {
        format!("rayo_console={}", self.cookie)
    }

    async fn get(&self, base: &str, path: &str) -> reqwest::Response {
        get_as(&self.cookie(), format!("{base}{path}")).await
    }

    async fn page(&self, base: &str, path: &str) -> String {
        let answer = self.get(base, path).await;
        assert_eq!(answer.status(), 200, "{path}");
        answer.text().await.unwrap()
    }

    /// A form posted from the console's own page (unless `headers` say otherwise).
    async fn post(
        &self,
        base: &str,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        post_as(&self.cookie(), format!("{base}{path}"), form, headers).await
    }
}

/// USD from four fake sources, one of them far off the others.
fn priced_in_dollars(s: &mut rayo::config::Settings, prices: &FakePrices) {
    s.currencies = vec![rayo::prices::Currency::find("USD").unwrap()];
    s.price_sources = prices
        .sources()
        .split(',')
        .map(|entry| {
            let (name, url) = entry.split_once('=').unwrap();
            let mut source = rayo::prices::Ticker::public()
                .into_iter()
                .find(|p| p.name() == name)
                .unwrap();
            source.base = url.parse().unwrap();
            source
        })
        .collect();
}

#[tokio::test]
async fn an_operator_runs_the_server_from_the_console() {
    if browser_tools().is_none() {
        return;
    }
    let prices = FakePrices::start();
    for (source, price) in [
        ("kraken", "100000"),
        ("coinbase", "100200"),
        ("yadio", "100100"),
        ("bitstamp", "130000"),
    ] {
        prices.set(source, "USD", price);
    }
    let app = spawn_app_with(None, |s| {
        with_console(s);
        priced_in_dollars(s, &prices);
    })
    .await;
    let receiver = Receiver::start();
    receiver.set_down(true);
    receiver.set_hostile(true);
    let console = console_base(&app);

    // 1. The first operator: `rayo operator invite` prints a one-time URL on the console.
    let invite = cli_json(app.data_dir.path(), &["operator", "invite"]).await;
    let invite_url = invite["url"].as_str().unwrap().to_owned();
    assert!(
        invite_url.starts_with(&format!("{console}/admin/join/")),
        "{invite_url}"
    );
    let seen = journey(&app, &invite_url, &receiver, None).await;
    eprintln!("{}", serde_json::to_string_pretty(&seen).unwrap());
    assert_eq!(seen["steps"].as_array().unwrap().len(), 8, "every step ran");

    // The invite worked once.
    assert_eq!(seen["reusedInvitePage"], 404);
    assert_eq!(seen["reusedInviteStart"]["status"], 422);
    // 2-3. Carol was added and paid; the overview moved without a reload.
    assert_eq!(seen["paidTodayBefore"], "0");
    assert_eq!(seen["paidTodayAfter"], "1");
    assert_eq!(seen["satsTodayAfter"], "21");
    assert_eq!(seen["reloadedWhileWaiting"], false);
    assert!(
        seen["paidBarAfter"].as_f64().unwrap() > seen["paidBarBefore"].as_f64().unwrap(),
        "the chart's paid bar for today grew"
    );
    assert!(
        seen["chartSummary"].as_str().unwrap().contains("1 paid"),
        "the chart's text alternative says so too"
    );
    // 4. The failed webhook was a dead letter, its receiver's words shown as text, and
    // delivered once redelivered.
    assert_eq!(seen["deadLetters"], 1);
    assert_eq!(
        seen["deadOutcome"],
        "HTTP 503 Service Unavailable: <script>alert('receiver')</script> is down"
    );
    assert_eq!(
        seen["injected"], 0,
        "no markup from users or receivers runs"
    );
    assert_eq!(seen["redeliveredState"], "delivered");
    assert_eq!(
        receiver.received().len(),
        2,
        "both payments' events, in the end"
    );
    // The invoice, found by user and status, with its payer, comment and event.
    assert_eq!(seen["invoiceRows"], 1);
    let row = seen["invoiceRowText"].as_str().unwrap();
    assert!(
        row.contains("<b>Mallory</b>") && row.contains("<script>alert(1)</script> thanks"),
        "{row}"
    );
    assert_eq!(seen["invoiceEvents"], 1);
    // The invoice list took the second payment live.
    assert_eq!(seen["liveInvoiceRows"], 2);
    assert_eq!(seen["invoicesReloaded"], false);
    // Signed out and in again with the passkey: a new session id.
    assert_eq!(seen["afterSignOut"], "/admin/login");
    assert_eq!(seen["newSessionAtSignIn"], true);
    // 5. The dry run counted and removed nothing.
    assert!(
        seen["dryRun"]
            .as_str()
            .unwrap()
            .starts_with("A prune now would remove"),
        "{}",
        seen["dryRun"]
    );
    assert_eq!(seen["backendVerdict"], "Usable.");
    // The prices as `rayo prices` shows them: the median of the sources in the band.
    let prices_page = seen["pricesText"].as_str().unwrap();
    assert!(prices_page.contains("USD: 100100"), "{prices_page}");
    assert!(
        prices_page.contains("bitstamp: 130000")
            && prices_page.contains("from the median: not used"),
        "{prices_page}"
    );
    assert!(seen["operatorInvite"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{console}/admin/join/")));
    assert_eq!(seen["signedInLoginGoesTo"], "/admin/");

    // Every page: no axe-core violations, no console errors, no sideways scrolling at 360 px.
    for (page, violations) in seen["axe"].as_object().unwrap() {
        assert_eq!(violations, &serde_json::json!([]), "axe on {page}");
        assert_eq!(seen[format!("{page}Overflows")], false, "{page} at 360 px");
    }
    assert_eq!(seen["consoleErrors"], serde_json::json!([]));
    assert_eq!(seen["firstFocus"], "Skip to content");

    // 6. The backup restores with the CLI into a new data directory.
    let restored = tempfile::tempdir().unwrap();
    let file = seen["backupFile"].as_str().unwrap();
    let output = cli_in(restored.path(), &["restore", file]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let users = cli_json(restored.path(), &["user", "list"]).await;
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "carol"),
        "{users}"
    );
    let invoices = cli_json(restored.path(), &["invoice", "list", "--user", "carol"]).await;
    assert_eq!(invoices[0]["status"], "paid");

    // The audit log of the journey, as the console and `rayo audit` show it.
    let audit = cli_json(app.data_dir.path(), &["audit", "--limit", "100"]).await;
    eprintln!(
        "rayo audit:\n{}",
        serde_json::to_string_pretty(&audit).unwrap()
    );
    let lines: Vec<String> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} | {}",
                e["who"].as_str().unwrap(),
                e["what"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "admin token | operator.invite",
        "ana | operator.join ana (invited by admin token)",
        "ana | user.add carol",
        "ana | user.update carol",
        "admin token | dev.settle",
        "ana | webhook.redeliver",
        "ana | prune.dry_run",
        "ana | backup.download",
        "ana | backend.check",
        "ana | operator.invite",
        "ana | sign out",
        "ana | sign in",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(expected)),
            "{expected} in {lines:#?}"
        );
    }
    assert!(audit[0]["from"].as_str().unwrap().starts_with("127.0.0.1"));
    // The console showed the same log (as it was before signing out and in again).
    let shown = seen["audit"].as_array().unwrap();
    assert!(shown.len() >= 10, "{shown:?}");
    for row in shown {
        let line = format!(
            "{} | {}",
            row[1].as_str().unwrap(),
            row[2].as_str().unwrap()
        );
        assert!(lines.contains(&line), "{line} in rayo audit");
    }

    // The attacks, with the operator's own cookie.
    let operator = Operator {
        cookie: seen["consoleCookie"]["value"].as_str().unwrap().to_owned(),
        csrf: seen["csrf"].as_str().unwrap().to_owned(),
    };
    console_attacks(&app, &operator, seen["hash"].as_str().unwrap(), &receiver).await;
}

/// What an operator's session can and cannot do, and how hostile text is shown.
async fn console_attacks(app: &TestApp, operator: &Operator, paid_hash: &str, receiver: &Receiver) {
    let console = console_base(app);
    let public = local_base(app);
    // An operator session does not work on the public address: the console is not there.
    assert_eq!(operator.get(&public, "/admin/").await.status(), 404);
    assert_eq!(operator.get(&console, "/admin/").await.status(), 200);

    // Forms from other sites, or without the token, change nothing.
    let add = |name: &'static str| {
        [
            ("csrf", operator.csrf.as_str()),
            ("name", name),
            ("description", "d"),
        ]
    };
    for headers in [
        &[("sec-fetch-site", "cross-site")][..],
        &[("origin", "https://evil.example")][..],
    ] {
        let refused = operator
            .post(&console, "/admin/users", &add("mallory"), headers)
            .await;
        assert_eq!(refused.status(), 403, "{headers:?}");
    }
    let tokenless = operator
        .post(
            &console,
            "/admin/users",
            &[("csrf", "guess"), ("name", "mallory"), ("description", "d")],
            &[],
        )
        .await;
    assert_eq!(tokenless.status(), 403);
    assert_eq!(
        operator
            .get(&console, "/admin/users/mallory")
            .await
            .status(),
        404,
        "nobody was added"
    );

    // Hostile text from users, payers and receivers is text in every table and chart.
    for path in [
        "/admin/",
        "/admin/users",
        "/admin/users/carol",
        "/admin/invoices?user=carol",
        "/admin/deliveries",
    ] {
        let page = operator.page(&console, path).await;
        for raw in ["<img src=x", "<script>alert", "<b>Mallory"] {
            assert!(!page.contains(raw), "{raw} raw on {path}");
        }
    }
    let users = operator.page(&console, "/admin/users").await;
    let at = users
        .find("tips</td>")
        .expect("carol's description in the list");
    assert!(
        users[..at].ends_with("Carol&#39;s &#60;img src=x onerror=alert(1)&#62; "),
        "{}",
        &users[at.saturating_sub(80)..at]
    );
    // The receiver's words are in the first payment's delivery log.
    let invoice = operator
        .page(&console, &format!("/admin/invoices/{paid_hash}"))
        .await;
    assert!(!invoice.contains("<script>alert"));
    assert!(invoice.contains("&#60;script&#62;alert(&#39;receiver&#39;)&#60;/script&#62; is down"));
    let event = between(&invoice, "<a href=\"/admin/deliveries/", "\"");
    let log = operator
        .page(&console, &format!("/admin/deliveries/{event}"))
        .await;
    assert!(!log.contains("<script>alert"));
    assert!(log.contains("&#60;script&#62;alert(&#39;receiver&#39;)&#60;/script&#62; is down"));

    // A picture, as `--image` sets it: a small PNG is taken, anything else refused.
    let upload = |data: &'static [u8]| {
        let (content_type, body) = multipart(&[
            ("csrf", None, operator.csrf.as_bytes()),
            ("picture", Some("p.png"), data),
        ]);
        no_redirects()
            .post(format!("{console}/admin/users/carol/picture"))
            .header("cookie", format!("rayo_console={}", operator.cookie))
            .header("sec-fetch-site", "same-origin")
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_eq!(
        upload(b"<svg onload=alert(1)>").await.unwrap().status(),
        422
    );
    let png: &'static [u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52, 0,
        0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0x0d, 0x49, 0x44,
        0x41, 0x54, 0x78, 0xda, 0x63, 0xfc, 0xcf, 0xc0, 0x50, 0x0f, 0, 0x03, 0x86, 0x01, 0x80,
        0x5a, 0x34, 0x7d, 0x6b, 0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    assert_eq!(upload(png).await.unwrap().status(), 303);
    let pay = app
        .get("/.well-known/lnurlp/carol")
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert!(pay["metadata"]
        .as_str()
        .unwrap()
        .contains("image/png;base64"));

    // Invoices as CSV: whose, and text a spreadsheet would run defused.
    let csv = operator
        .get(&console, "/admin/invoices.csv?user=carol&status=paid")
        .await;
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("user,payment_hash,status,"), "{csv}");
    assert_eq!(csv.lines().count(), 3, "a header and carol's two: {csv}");
    assert!(
        csv.contains("\"carol\",") && csv.contains("\"<script>alert(1)</script> thanks\""),
        "{csv}"
    );
    let bad = operator
        .get(&console, "/admin/invoices.csv?from=someday")
        .await;
    assert_eq!(bad.status(), 422);

    // Every dead letter at once: one more payment while the receiver is down, given up on,
    // then all redelivered (confirmed) once the receiver works.
    let receiver_base = receiver.base().to_owned();
    let http = reqwest::Client::new();
    http.post(format!("{receiver_base}/control/down"))
        .send()
        .await
        .unwrap();
    let answer: Value = app
        .get("/lnurlp/carol/callback?amount=3000")
        .await
        .json()
        .await
        .unwrap();
    let hash = answer["verify"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .nth(1)
        .unwrap()
        .to_owned();
    app.client
        .post(format!("{}/admin/v1/dev/settle/{hash}", app.admin))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    let dead = app
        .eventually(20, || async {
            operator
                .page(&console, "/admin/deliveries?state=dead")
                .await
                .contains("<td class=\"state\">dead</td>")
        })
        .await;
    assert!(dead, "the third payment's event was given up on");
    http.post(format!("{receiver_base}/control/up"))
        .send()
        .await
        .unwrap();
    let all = operator
        .post(
            &console,
            "/admin/deliveries/redeliver-dead",
            &[("csrf", operator.csrf.as_str()), ("confirm", "redeliver")],
            &[],
        )
        .await;
    assert_eq!(all.status(), 303);
    assert_eq!(
        all.headers()["location"],
        "/admin/deliveries?state=pending&done=redelivered-1"
    );
    let delivered = app
        .eventually(20, || async { receiver.received().len() == 3 })
        .await;
    assert!(delivered, "the dead letter reached the receiver");

    // Destructive actions need their confirmation typed, and are audited.
    let csrf = operator.csrf.as_str();
    let unconfirmed = operator
        .post(
            &console,
            "/admin/users/carol/remove",
            &[("csrf", csrf), ("confirm", "")],
            &[],
        )
        .await;
    assert_eq!(unconfirmed.status(), 422);
    assert_eq!(
        operator.get(&console, "/admin/users/carol").await.status(),
        200
    );
    for (path, form) in [
        (
            "/admin/maintenance/prune",
            &[("csrf", csrf), ("mode", "prune"), ("confirm", "yes")][..],
        ),
        (
            "/admin/deliveries/redeliver-dead",
            &[("csrf", csrf), ("confirm", "")][..],
        ),
    ] {
        assert_eq!(
            operator.post(&console, path, form, &[]).await.status(),
            422,
            "{path}"
        );
    }
    let removed = operator
        .post(
            &console,
            "/admin/users/carol/remove",
            &[("csrf", csrf), ("confirm", "carol")],
            &[],
        )
        .await;
    assert_eq!(removed.status(), 303);
    assert_eq!(
        operator.get(&console, "/admin/users/carol").await.status(),
        404
    );
    let pruned = operator
        .post(
            &console,
            "/admin/maintenance/prune",
            &[("csrf", csrf), ("mode", "prune"), ("confirm", "prune")],
            &[],
        )
        .await;
    assert_eq!(pruned.status(), 200);
    let log = operator.page(&console, "/admin/operators").await;
    let audit = between(&log, "<table id=\"audit\">", "</table>");
    assert!(audit.contains("user.remove carol"), "{audit}");
    assert!(
        audit.contains("webhook.redeliver_dead (1 events)"),
        "{audit}"
    );
    assert!(audit.contains("<td>prune ("), "{audit}");

    // Signing out ends the session: the cookie opens nothing after.
    let out = operator
        .post(&console, "/admin/logout", &[("csrf", csrf)], &[])
        .await;
    assert_eq!(out.status(), 303);
    let after = operator.get(&console, "/admin/").await;
    assert_eq!(after.status(), 303);
    assert_eq!(after.headers()["location"], "/admin/login");
}

#[tokio::test]
async fn the_console_is_only_on_the_admin_address_and_never_opened_by_the_token() {
    let app = spawn_app_with(None, with_console).await;
    let console = console_base(&app);
    let public = local_base(&app);
    let http = no_redirects();

    // On the public address the console does not exist, signed in or not.
    for path in [
        "/admin/",
        "/admin/login",
        "/admin/users",
        "/admin/join/abc",
        "/admin/live",
        "/admin/backup",
    ] {
        let answer = http.get(format!("{public}{path}")).send().await.unwrap();
        assert_eq!(answer.status(), 404, "{path}");
    }
    let posted = http
        .post(format!("{public}/admin/users"))
        .form(&[("name", "x"), ("description", "d")])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 404);

    // On the admin address: the sign-in page, personal and unframeable.
    let login = http
        .get(format!("{console}/admin/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    assert_eq!(login.headers()["cache-control"], "no-store");
    let csp = login.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(
        !login.text().await.unwrap().contains("<script>"),
        "no inline script"
    );

    // Everything else sends the unsigned to sign in, and the admin token opens nothing.
    for token in [None, Some(app.admin_token.as_str())] {
        for path in [
            "/admin/",
            "/admin/users",
            "/admin/invoices",
            "/admin/backup",
            "/admin/operators",
        ] {
            let mut request = http.get(format!("{console}{path}"));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let answer = request.send().await.unwrap();
            assert_eq!(answer.status(), 303, "{path} with {token:?}");
            assert_eq!(answer.headers()["location"], "/admin/login");
        }
        let mut post = http
            .post(format!("{console}/admin/users"))
            .header("sec-fetch-site", "same-origin")
            .form(&[("csrf", "x"), ("name", "eve"), ("description", "d")]);
        if let Some(token) = token {
            post = post.bearer_auth(token);
        }
        assert_eq!(post.send().await.unwrap().status(), 303);
    }
    let eve = app
        .client
        .get(format!("{}/admin/v1/users/eve", app.admin))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(eve.status(), 404, "nobody was added");

    // An invite that is not one shows a page that says so.
    let unknown = http
        .get(format!("{console}/admin/join/not-a-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert!(unknown.text().await.unwrap().contains("cannot be used"));
}

#[tokio::test]
async fn a_persons_session_never_opens_the_console() {
    if browser_tools().is_none() {
        return;
    }
    // Without an admin address the console is on the public address, beside the account
    // pages: a person's session, in either cookie, still opens nothing there.
    let app = spawn_app_with(None, on_localhost).await;
    let base = local_base(&app);
    let dave = join(&app, "dave").await;
    let http = no_redirects();
    for cookie in [
        format!("rayo_session={}", dave.cookie),
        format!("rayo_console={}", dave.cookie),
    ] {
        for path in ["/admin/", "/admin/users", "/admin/live"] {
            let answer = http
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 303, "{path} with {cookie}");
        }
    }
    // While their account page opens as ever.
    let account = http
        .get(format!("{base}/account"))
        .header("cookie", format!("rayo_session={}", dave.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(account.status(), 200);
    // And the login page of the console is where it should be.
    let login = http
        .get(format!("{base}/admin/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
}
