//! The people behind the addresses: joining by invite, passkeys and LNURL-auth in a real
//! browser (tests/browser/accounts.mjs, with a virtual authenticator and an independent
//! LNURL-auth wallet), and every attack the issue names, tried against the routes.

use serde_json::{json, Value};

use crate::pages::browser_tools;
use crate::support::{spawn_app_with, TestApp};

/// Serves on `localhost` (a passkey's relying party must be a domain name).
pub(crate) fn on_localhost(s: &mut rayo::config::Settings) {
    let local = s.public_url.base().replace("127.0.0.1", "localhost");
    s.public_url = rayo::config::PublicUrl::parse(&local).unwrap();
}

pub(crate) fn local_base(app: &TestApp) -> String {
    app.address.replace("127.0.0.1", "localhost")
}

/// Runs the browser journey (`mode`: "join" stops after joining); what it saw.
async fn journey(app: &TestApp, mode: Option<&str>) -> Value {
    let tools = browser_tools().expect("browser tools");
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let mut command = std::process::Command::new("node");
    command
        .current_dir(&tools)
        .arg("accounts.mjs")
        .arg(local_base(app))
        .arg(&app.admin_token)
        .arg(artifacts);
    command.args(mode);
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

#[tokio::test]
async fn a_person_joins_by_invite_and_runs_their_address_from_the_browser() {
    if browser_tools().is_none() {
        return;
    }
    let app = spawn_app_with(None, on_localhost).await;
    let seen = journey(&app, None).await;
    eprintln!("{}", serde_json::to_string_pretty(&seen).unwrap());

    assert_eq!(
        seen["steps"].as_array().unwrap().len(),
        10,
        "every step ran"
    );
    // A wallet connection's QR code, read from the camera into the wallet form.
    assert_eq!(seen["scannedConnection"], true);
    assert_eq!(seen["cameraStopped"], true);
    // Two browsers, two sessions; one ends the other, whose cookie then opens nothing.
    assert_eq!(seen["sessionsListed"], 2);
    assert_eq!(seen["sessionsAfterEnding"], 1);
    assert_eq!(seen["endedSessionLandsOn"], "/login");
    assert_eq!(
        seen["address"],
        format!("alice@{}", local_base(&app).trim_start_matches("http://"))
    );
    assert_eq!(seen["passkeysAfterJoin"], 1);
    // The payRequest shows the new description at once, as text.
    let metadata: Value = serde_json::from_str(seen["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(
        metadata[0],
        json!(["text/plain", "Tips for Alice <b>& friends</b>"])
    );
    // The payment arrived live, with its comment shown as text, and no reload.
    let row = seen["liveRow"].as_str().unwrap();
    assert!(row.contains("21") && row.contains("paid"), "{row}");
    assert!(row.contains("for <script>coffee</script>"), "{row}");
    assert_eq!(seen["reloadsWhileWaiting"], 0);
    // Passkeys: a second added, the first removed, the second signs in.
    assert_eq!(seen["passkeysAfterAdding"], 2);
    assert_eq!(seen["passkeysAfterRemoving"], 1);
    assert_eq!(seen["firstStillListed"], 0);
    assert_eq!(seen["credentialsOnSecondDevice"], 1);
    // LNURL-auth with an independent signer: linked, signs in, and each k1 works once.
    assert_eq!(seen["linkAnswer"], json!({"status": "OK"}));
    assert_eq!(seen["walletsAfterLinking"], 1);
    assert_eq!(seen["replayedLink"]["status"], "ERROR");
    assert_eq!(
        seen["forgedK1"]["status"], "ERROR",
        "a signature over another k1"
    );
    assert_eq!(
        seen["strangerWallet"]["status"], "ERROR",
        "a wallet linked to nobody"
    );
    assert_eq!(seen["loginAnswer"], json!({"status": "OK"}));
    assert_eq!(seen["signedInByWallet"], seen["address"]);
    assert_eq!(seen["replayedLogin"]["status"], "ERROR", "a replayed k1");
    // Every page: no axe-core violations, no console errors, no sideways scrolling at 360 px.
    for (page, violations) in seen["axe"].as_object().unwrap() {
        assert_eq!(violations, &json!([]), "axe on {page}");
        assert_eq!(seen[format!("{page}Overflows")], false, "{page} at 360 px");
    }
    assert_eq!(seen["consoleErrors"], json!([]));
    assert_eq!(
        seen["firstFocus"], "Sign out",
        "the keyboard reaches the page's first control"
    );
}

/// A new invite's token, made through the admin API with `body`.
pub(crate) async fn invite_token(app: &TestApp, body: Value) -> String {
    let created: Value = app
        .client
        .post(format!("{}/admin/v1/invites", app.address))
        .bearer_auth(&app.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

/// A person who joined in the browser, as HTTP sees them: their session cookie, and their
/// account page.
pub(crate) struct Person {
    pub(crate) cookie: String,
    invite_url: String,
}

pub(crate) async fn join(app: &TestApp, name: &str) -> Person {
    join_by(app, name, "join").await
}

/// Joins as `name` by invite (`how`: "join") or by open sign-up ("open").
async fn join_by(app: &TestApp, name: &str, how: &str) -> Person {
    let tools = browser_tools().expect("browser tools");
    let mut command = std::process::Command::new("node");
    command
        .current_dir(&tools)
        .args(["accounts.mjs", &local_base(app), &app.admin_token])
        .arg(std::env::temp_dir())
        .args([how, name]);
    let output = tokio::task::spawn_blocking(move || command.output().expect("node runs"))
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    let cookie = seen["sessionCookie"]["value"].as_str().unwrap().to_owned();
    assert_ne!(
        cookie, "planted-by-an-attacker",
        "sign-in makes a new session id"
    );
    Person {
        cookie,
        invite_url: seen["inviteUrl"].as_str().unwrap().to_owned(),
    }
}

pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A GET from a browser holding `cookie` (`name=value`); redirects are not followed.
pub(crate) async fn get_as(cookie: &str, url: String) -> reqwest::Response {
    no_redirects()
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// A form posted from a browser holding `cookie`, from this site's own page unless `headers`
/// say otherwise.
pub(crate) async fn post_as(
    cookie: &str,
    url: String,
    form: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = no_redirects().post(url).header("cookie", cookie).form(form);
    if headers.is_empty() {
        request = request.header("sec-fetch-site", "same-origin");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

impl Person {
    async fn get(&self, base: &str, path: &str) -> reqwest::Response {
        get_as(
            &format!("rayo_session={}", self.cookie),
            format!("{base}{path}"),
        )
        .await
    }

    async fn page(&self, base: &str) -> String {
        let page = self.get(base, "/account").await;
        assert_eq!(page.status(), 200);
        page.text().await.unwrap()
    }

    /// Posts a form from this person's browser on this site (unless `headers` say otherwise).
    async fn post(
        &self,
        base: &str,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let cookie = format!("rayo_session={}", self.cookie);
        post_as(&cookie, format!("{base}{path}"), form, headers).await
    }
}

/// The CSRF token an account page's forms carry.
pub(crate) fn csrf_of(page: &str) -> String {
    between(page, "name=\"csrf\" value=\"", "\"").to_owned()
}

/// The first match of `before(...)"` in `page`.
pub(crate) fn between<'a>(page: &'a str, before: &str, after: &str) -> &'a str {
    let start = page
        .find(before)
        .unwrap_or_else(|| panic!("{before} in the page"))
        + before.len();
    let end = start + page[start..].find(after).unwrap();
    &page[start..end]
}

#[tokio::test]
async fn one_person_can_neither_see_nor_change_anothers_account() {
    if browser_tools().is_none() {
        return;
    }
    let app = spawn_app_with(None, on_localhost).await;
    let base = local_base(&app);
    let alice = join(&app, "alice").await;
    let bob = join(&app, "bob").await;
    let alice_page = alice.page(&base).await;
    let bob_page = bob.page(&base).await;
    let csrf = csrf_of(&alice_page);
    let bob_passkey = between(&bob_page, "data-passkey=\"", "\"").to_owned();

    // Nobody removes their own last way in.
    let alice_passkey = between(&alice_page, "data-passkey=\"", "\"").to_owned();
    let last = alice
        .post(
            &base,
            &format!("/account/passkeys/{alice_passkey}/remove"),
            &[("csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(last.status(), 422);
    assert!(last
        .text()
        .await
        .unwrap()
        .contains("your only way to sign in"));
    assert!(alice
        .page(&base)
        .await
        .contains(&format!("data-passkey=\"{alice_passkey}\"")));
    assert!(alice_page.contains("alice@") && !alice_page.contains("bob@"));

    // Bob's passkey, a session and an API key of his, tried with Alice's session.
    let key: Value = app
        .client
        .post(format!("{}/admin/v1/users/bob/api-keys", app.address))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bob_key = key["id"].as_str().unwrap();
    for path in [
        format!("/account/passkeys/{bob_passkey}/remove"),
        format!("/account/passkeys/{bob_passkey}/rename"),
        format!("/account/api-keys/{bob_key}/revoke"),
        "/account/sessions/0123456789abcdef/end".to_owned(),
        format!("/account/wallets/{}/remove", "02".repeat(33)),
    ] {
        let tried = alice
            .post(&base, &path, &[("csrf", &csrf), ("label", "mine now")], &[])
            .await;
        assert_eq!(tried.status(), 404, "{path}");
    }
    let bob_after = bob.page(&base).await;
    assert!(bob_after.contains(&format!("data-passkey=\"{bob_passkey}\"")));
    assert!(bob_after.contains(bob_key), "Bob's key is still active");
    // Bob's cookie opens Bob's page only; Alice's CSV is Alice's.
    let csv = alice
        .get(&base, "/account/payments.csv")
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("payment_hash,"));
    assert!(bob_after.contains("bob@") && !bob_after.contains("alice@"));
}

#[tokio::test]
async fn forms_from_other_sites_or_without_the_token_change_nothing() {
    if browser_tools().is_none() {
        return;
    }
    let app = spawn_app_with(None, on_localhost).await;
    let base = local_base(&app);
    let alice = join(&app, "alice").await;
    let page = alice.page(&base).await;
    let csrf = csrf_of(&page);
    let profile = |csrf: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("description", "Hijacked".to_owned()),
            ("min_sats", "1".to_owned()),
            ("max_sats", "1000".to_owned()),
        ]
    };
    for (fields, headers) in [
        (profile(&csrf), vec![("sec-fetch-site", "cross-site")]),
        (profile(&csrf), vec![("sec-fetch-site", "same-site")]),
        (profile(""), vec![]),
        (profile("forged"), vec![]),
    ] {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let refused = alice
            .post(&base, "/account/profile", &pairs, &headers)
            .await;
        assert_eq!(refused.status(), 403, "{headers:?}");
    }
    let pay = app
        .get("/.well-known/lnurlp/alice")
        .await
        .text()
        .await
        .unwrap();
    assert!(!pay.contains("Hijacked"), "nothing changed");
    // The same form, from the page, with the token: saved.
    let owned = profile(&csrf);
    let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        alice
            .post(&base, "/account/profile", &pairs, &[])
            .await
            .status(),
        303
    );
    let pay = app
        .get("/.well-known/lnurlp/alice")
        .await
        .text()
        .await
        .unwrap();
    assert!(pay.contains("Hijacked"));

    // Bad values are refused with a clear error, and change nothing.
    let mut bad = profile(&csrf);
    bad[2].1 = "lots".into();
    let pairs: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = alice.post(&base, "/account/profile", &pairs, &[]).await;
    assert_eq!(refused.status(), 422);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("a whole number of sats"));

    // Ceremonies are JSON from this site: another site's script is refused.
    let cross = no_redirects()
        .post(format!("{base}/login/passkey/start"))
        .header("origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
}

#[tokio::test]
async fn hostile_text_is_escaped_and_personal_pages_are_private() {
    if browser_tools().is_none() {
        return;
    }
    let app = spawn_app_with(None, on_localhost).await;
    let base = local_base(&app);
    let alice = join(&app, "alice").await;
    app.client
        .patch(format!("{}/admin/v1/users/alice", app.address))
        .bearer_auth(&app.admin_token)
        .json(&json!({"description": "<script>alert(1)</script>", "long_description": "\"><img src=x onerror=alert(2)>"}))
        .send()
        .await
        .unwrap();
    let page = alice.get(&base, "/account").await;
    let headers = page.headers().clone();
    let body = page.text().await.unwrap();
    assert!(!body.contains("<script>alert(1)") && !body.contains("<img src=x"));
    assert!(body.contains("&#60;script&#62;alert(1)") || body.contains("&lt;script&gt;alert(1)"));
    for (name, want) in [
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(headers[name], want, "{name}");
    }
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"));
    for path in ["/login", "/join/whatever"] {
        let page = app.get(path).await;
        assert_eq!(page.headers()["cache-control"], "no-store", "{path}");
    }
    let login = app.get("/login").await;
    let set_cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
}

#[tokio::test]
async fn after_sign_out_the_old_cookie_opens_nothing() {
    if browser_tools().is_none() {
        return;
    }
    let app = spawn_app_with(None, on_localhost).await;
    let base = local_base(&app);
    let alice = join(&app, "alice").await;
    let page = alice.page(&base).await;
    let csrf = csrf_of(&page);
    let out = alice.post(&base, "/logout", &[("csrf", &csrf)], &[]).await;
    assert_eq!(out.status(), 303);
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("rayo_session=;"));
    for path in ["/account", "/account/payments.csv"] {
        let after = alice.get(&base, path).await;
        assert_eq!(after.status(), 303, "{path}");
        assert_eq!(after.headers()["location"], "/login");
    }
    let form = alice
        .post(
            &base,
            "/account/sessions/end-others",
            &[("csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(form.status(), 303);
    assert_eq!(form.headers()["location"], "/login");
}

#[tokio::test]
async fn invites_are_refused_when_used_revoked_expired_or_unknown() {
    if browser_tools().is_none() {
        return;
    }
    let clock = std::sync::Arc::new(crate::support::ShiftedClock::default());
    let app = crate::support::spawn_app_in(
        tempfile::tempdir().unwrap(),
        None,
        Some(clock.clone()),
        on_localhost,
    )
    .await;
    let alice = join(&app, "alice").await;
    let token = alice.invite_url.rsplit('/').next().unwrap().to_owned();
    let admin = |body: Value| {
        let client = app.client.clone();
        let url = format!("{}/admin/v1/invites", app.address);
        let token = app.admin_token.clone();
        async move {
            let answer = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                answer.status().as_u16(),
                answer.json::<Value>().await.unwrap(),
            )
        }
    };
    let used = app.get(&format!("/join/{token}")).await;
    assert_eq!(used.status(), 422);
    assert!(used.text().await.unwrap().contains("has been used"));

    let (status, revoked) = admin(json!({"name": "carol"})).await;
    assert_eq!(status, 201);
    let revoked_token = revoked["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let id = revoked["id"].as_str().unwrap();
    let gone = app
        .client
        .delete(format!("{}/admin/v1/invites/{id}", app.address))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 200);
    let refused = app.get(&format!("/join/{revoked_token}")).await;
    assert!(refused.text().await.unwrap().contains("was revoked"));

    let (_, expiring) = admin(json!({"expires_in": 60})).await;
    let expiring_token = expiring["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.get(&format!("/join/{expiring_token}")).await.status(),
        200
    );
    clock.advance(61);
    let expired = app.get(&format!("/join/{expiring_token}")).await;
    assert!(expired.text().await.unwrap().contains("has expired"));

    let unknown = app.get("/join/not-a-token").await;
    assert!(unknown.text().await.unwrap().contains("does not exist"));
    // Starting a join with a used invite is refused too, whatever the page was.
    let start = no_redirects()
        .post(format!("{}/join/start", local_base(&app)))
        .json(&json!({"token": token, "name": "mallory"}))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 422);
    // Bad invites are refused at the admin API with reasons.
    for body in [
        json!({"name": "admin"}),
        json!({"for": "nobody"}),
        json!({"uses": 0}),
        json!({"name": "alice"}),
        json!({"colour": "red"}),
    ] {
        let (status, _) = admin(body.clone()).await;
        assert!(
            status == 400 || status == 404 || status == 422,
            "{body}: {status}"
        );
    }
    let listed: Value = app
        .client
        .get(format!("{}/admin/v1/invites", app.address))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"used")
            && statuses.contains(&"revoked")
            && statuses.contains(&"expired"),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_flood_of_sign_in_attempts_is_cut_off() {
    let app = spawn_app_with(None, on_localhost).await;
    let base = local_base(&app);
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let answer = no_redirects()
            .post(format!("{base}/login/passkey/start"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        statuses.push(answer.status().as_u16());
    }
    assert_eq!(statuses[0], 200);
    assert!(statuses.contains(&429), "{statuses:?}");
    // Wallet callbacks with bad signatures change nothing and say why.
    let bad = app
        .get(&format!(
            "/auth/lnurl?tag=login&k1={}&sig=00&key=02{}",
            "00".repeat(32),
            "11".repeat(32)
        ))
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(bad["status"], "ERROR");
}

#[tokio::test]
async fn a_session_started_on_one_instance_works_on_another() {
    let Some(database) = rayo::store::postgres::testing::database() else {
        return;
    };
    if browser_tools().is_none() {
        return;
    }
    let on_database = |s: &mut rayo::config::Settings| {
        on_localhost(s);
        s.database_url = Some(rayo::domain::Secret::new(database.clone()));
        s.demo_user = false;
    };
    let a = spawn_app_with(None, on_database).await;
    let b = spawn_app_with(None, on_database).await;
    let alice = join(&a, "alice").await;
    let page = alice.page(&local_base(&b)).await;
    assert!(page.contains("alice@"), "instance b knows the session");
    let csrf = csrf_of(&page);

    // A profile saved on b shows in the payRequest a serves.
    let saved = alice
        .post(
            &local_base(&b),
            "/account/profile",
            &[
                ("csrf", &csrf),
                ("description", "Saved on the other instance"),
                ("min_sats", "1"),
                ("max_sats", "1000"),
            ],
            &[],
        )
        .await;
    assert_eq!(saved.status(), 303);
    let seen_on_a = a
        .eventually(10, || async {
            a.get("/.well-known/lnurlp/alice")
                .await
                .text()
                .await
                .unwrap()
                .contains("Saved on the other instance")
        })
        .await;
    assert!(seen_on_a, "a forgot its cached profile when told");

    // Signing out on b ends it on a too.
    alice
        .post(&local_base(&b), "/logout", &[("csrf", &csrf)], &[])
        .await;
    assert_eq!(alice.get(&local_base(&a), "/account").await.status(), 303);
}

#[tokio::test]
async fn removing_a_user_forgets_their_account_so_the_name_opens_nothing_for_them_later() {
    if browser_tools().is_none() {
        return;
    }
    let app = spawn_app_with(None, on_localhost).await;
    let base = local_base(&app);
    let alice = join(&app, "alice").await;
    assert_eq!(alice.get(&base, "/account").await.status(), 200);
    let removed = app
        .client
        .delete(format!("{}/admin/v1/users/alice", app.address))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    // Someone else gets the name: the old session (and passkey) open nothing of theirs.
    app.add_user("alice", json!({})).await;
    let after = alice.get(&base, "/account").await;
    assert_eq!(after.status(), 303);
    assert_eq!(after.headers()["location"], "/login");
}

#[tokio::test]
async fn a_person_tries_their_webhook_and_redelivers_an_event_from_the_page() {
    if browser_tools().is_none() {
        return;
    }
    let receiver = crate::support::receiver::Receiver::start();
    let app = spawn_app_with(None, on_localhost).await;
    let base = local_base(&app);
    let alice = join(&app, "alice").await;
    let bob = join(&app, "bob").await;
    let page = alice.page(&base).await;
    let csrf = csrf_of(&page);
    assert!(!page.contains("Send a test delivery"), "no webhook yet");

    let saved = alice
        .post(
            &base,
            "/account/webhook",
            &[("csrf", &csrf), ("webhook_url", &receiver.url)],
            &[],
        )
        .await;
    assert_eq!(saved.status(), 303);
    // A new secret, shown once.
    let rotated = alice
        .post(&base, "/account/webhook/rotate", &[("csrf", &csrf)], &[])
        .await
        .text()
        .await
        .unwrap();
    let secret = between(&rotated, "<code id=\"secret\">", "<").to_owned();
    assert!(secret.starts_with("whsec_"));
    assert!(
        !alice.page(&base).await.contains(&secret),
        "never shown again"
    );

    // A test delivery arrives, signed with that secret, and the log shows it delivered.
    let test = alice
        .post(&base, "/account/webhook/test", &[("csrf", &csrf)], &[])
        .await;
    assert_eq!(test.status(), 303);
    assert!(
        app.eventually(10, || async { !receiver.received().is_empty() })
            .await
    );
    let delivery = receiver.received()[0].clone();
    let body: Value = serde_json::from_str(&delivery.body).unwrap();
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["data"]["user"], "alice");
    assert!(crate::support::receiver::documented_verifier_accepts(
        &secret,
        &delivery.signature,
        &delivery.body
    ));
    let delivered = app
        .eventually(10, || async {
            alice
                .page(&base)
                .await
                .contains("<span class=\"state\">delivered</span>")
        })
        .await;
    assert!(delivered, "the log shows the delivery");

    // Redelivered on request; another person's event is not theirs to redeliver.
    let id = delivery.event_id.clone();
    let bob_page = bob.page(&base).await;
    let bob_csrf = csrf_of(&bob_page);
    let stolen = bob
        .post(
            &base,
            &format!("/account/deliveries/{id}/redeliver"),
            &[("csrf", &bob_csrf)],
            &[],
        )
        .await;
    assert_eq!(stolen.status(), 404);
    let again = alice
        .post(
            &base,
            &format!("/account/deliveries/{id}/redeliver"),
            &[("csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(again.status(), 303);
    assert!(
        app.eventually(10, || async { receiver.received().len() == 2 })
            .await
    );
    assert!(
        !bob_page.contains(&id),
        "Bob's log shows none of Alice's events"
    );
}

/// A multipart/form-data body, as a browser's file form sends it.
pub(crate) fn multipart(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----rayo-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, filename, data) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(file) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn a_picture_must_be_a_small_png_or_jpeg() {
    if browser_tools().is_none() {
        return;
    }
    use base64::Engine;
    let app = spawn_app_with(None, on_localhost).await;
    let base = local_base(&app);
    let alice = join(&app, "alice").await;
    let page = alice.page(&base).await;
    let csrf = csrf_of(&page);
    let upload = |fields: Vec<(&'static str, Option<&'static str>, Vec<u8>)>| {
        let cookie = alice.cookie.clone();
        let base = base.clone();
        async move {
            let borrowed: Vec<(&str, Option<&str>, &[u8])> = fields
                .iter()
                .map(|(n, f, d)| (*n, *f, d.as_slice()))
                .collect();
            let (content_type, body) = multipart(&borrowed);
            no_redirects()
                .post(format!("{base}/account/picture"))
                .header("cookie", format!("rayo_session={cookie}"))
                .header("sec-fetch-site", "same-origin")
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let metadata = || async {
        app.get("/.well-known/lnurlp/alice")
            .await
            .json::<Value>()
            .await
            .unwrap()["metadata"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // A 1×1 PNG.
    let png = base64::engine::general_purpose::STANDARD
        .decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
        .unwrap();
    let token = csrf.clone().into_bytes();

    // Not an image, an image of another type, too large, or without the token: refused,
    // and nothing changes.
    let text = upload(vec![
        ("csrf", None, token.clone()),
        ("picture", Some("a.png"), b"<svg onload=alert(1)>".to_vec()),
    ])
    .await;
    assert_eq!(text.status(), 422);
    assert!(text
        .text()
        .await
        .unwrap()
        .contains("PNG or JPEG file of at most 64 KiB"));
    let gif = upload(vec![
        ("csrf", None, token.clone()),
        ("picture", Some("a.gif"), b"GIF89a....".to_vec()),
    ])
    .await;
    assert_eq!(gif.status(), 422);
    let mut huge = png.clone();
    huge.resize(70 * 1024, 0);
    let too_large = upload(vec![
        ("csrf", None, token.clone()),
        ("picture", Some("big.png"), huge),
    ])
    .await;
    assert_eq!(too_large.status(), 413);
    let forged = upload(vec![
        ("csrf", None, b"forged".to_vec()),
        ("picture", Some("a.png"), png.clone()),
    ])
    .await;
    assert_eq!(forged.status(), 403);
    assert!(!metadata().await.contains("image/png"), "no picture yet");

    // A small PNG: in the payRequest at once, and on the page.
    let saved = upload(vec![
        ("csrf", None, token.clone()),
        ("picture", Some("me.png"), png.clone()),
    ])
    .await;
    assert_eq!(saved.status(), 303);
    assert!(metadata().await.contains("image/png;base64"));
    assert!(alice
        .page(&base)
        .await
        .contains("id=\"picture\" src=\"data:image/png;base64,"));
    // And removed.
    let removed = upload(vec![("csrf", None, token), ("remove", None, b"1".to_vec())]).await;
    assert_eq!(removed.status(), 303);
    assert!(!metadata().await.contains("image/png"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_connects_their_own_wallet_after_it_is_tried_and_warned_about() {
    use crate::support::nwc::{FakeNwcWallet, NostrRelay, WalletSetup};
    if browser_tools().is_none() {
        return;
    }
    let Some(relay) = NostrRelay::start() else {
        return;
    };
    let Some(spender) = FakeNwcWallet::start(
        &relay,
        WalletSetup {
            methods: "make_invoice lookup_invoice get_info pay_invoice",
            ..WalletSetup::default()
        },
    ) else {
        return;
    };
    let Some(no_lookup) = FakeNwcWallet::start(
        &relay,
        WalletSetup {
            methods: "make_invoice get_info",
            ..WalletSetup::default()
        },
    ) else {
        return;
    };
    let app = spawn_app_with(None, |s| {
        on_localhost(s);
        s.nostr_allow_private_relays = true;
    })
    .await;
    let base = local_base(&app);
    let alice = join(&app, "alice").await;
    let page = alice.page(&base).await;
    let csrf = csrf_of(&page);
    assert!(page.contains("id=\"wallet-operator\""));

    // Not a connection, and a wallet that cannot look invoices up: refused, nothing saved.
    let garbage = alice
        .post(
            &base,
            "/account/wallet",
            &[("csrf", &csrf), ("nwc", "https://example.com")],
            &[],
        )
        .await;
    assert_eq!(garbage.status(), 422);
    assert!(garbage.text().await.unwrap().contains("nwc:"));
    let lacking = alice
        .post(
            &base,
            "/account/wallet",
            &[("csrf", &csrf), ("nwc", &no_lookup.uri)],
            &[],
        )
        .await;
    assert_eq!(lacking.status(), 422);
    let said = lacking.text().await.unwrap();
    assert!(said.contains("does not allow lookup_invoice"), "{said}");
    assert!(
        alice.page(&base).await.contains("id=\"wallet-operator\""),
        "not saved"
    );

    // A working one that can spend: tried, connected, warned about; its secret never shown.
    let secret = spender.uri.rsplit("secret=").next().unwrap().to_owned();
    let connected = alice
        .post(
            &base,
            "/account/wallet",
            &[("csrf", &csrf), ("nwc", &spender.uri)],
            &[],
        )
        .await;
    assert_eq!(connected.status(), 200);
    let report = connected.text().await.unwrap();
    assert!(report.contains("Your wallet is connected"), "{report}");
    assert!(report.contains("this connection can spend (pay_invoice)"));
    assert!(
        report.contains("test invoice"),
        "the 1-sat test invoice was checked"
    );
    assert!(!report.contains(&secret));
    let after = alice.page(&base).await;
    assert!(after.contains("id=\"wallet-own\"") && !after.contains(&secret));

    // Payments now go to that wallet; and back to the server's on request.
    let pay = app
        .get("/.well-known/lnurlp/alice")
        .await
        .json::<Value>()
        .await
        .unwrap();
    let invoice: Value = reqwest::get(format!("{}?amount=5000", pay["callback"].as_str().unwrap()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(invoice["pr"].is_string(), "{invoice}");
    assert!(
        spender.invoices_made() >= 2,
        "the test invoice and the payer's"
    );
    let back = alice
        .post(&base, "/account/wallet/disconnect", &[("csrf", &csrf)], &[])
        .await;
    assert_eq!(back.status(), 303);
    assert!(alice.page(&base).await.contains("id=\"wallet-operator\""));
}

#[tokio::test]
async fn where_sign_up_is_open_anyone_claims_a_free_name_within_limits() {
    if browser_tools().is_none() {
        return;
    }
    let app = spawn_app_with(None, |s| {
        on_localhost(s);
        s.signup = rayo::config::Signup::Open;
        s.reserved_names = vec!["shop".into()];
    })
    .await;
    let base = local_base(&app);
    let carol = join_by(&app, "carol", "open").await;
    assert!(carol.page(&base).await.contains("carol@"));
    assert!(app
        .get("/login")
        .await
        .text()
        .await
        .unwrap()
        .contains("href=\"/join\""));

    // Reserved and taken names are refused with the reason (malformed ones: `names` unit
    // tests); then the limit of five sign-up starts per client and hour, Carol's included.
    let start = |name: &'static str| {
        let base = base.clone();
        async move {
            let answer = no_redirects()
                .post(format!("{base}/join/start"))
                .json(&json!({"name": name}))
                .send()
                .await
                .unwrap();
            (
                answer.status().as_u16(),
                answer.json::<Value>().await.unwrap(),
            )
        }
    };
    for (name, reason) in [
        ("_", "reserved"),
        ("admin", "reserved"),
        ("shop", "reserved"),
        ("carol", "taken"),
        ("satoshi", "taken"),
        ("a b", "may only contain"),
    ] {
        let (status, body) = start(name).await;
        assert!(status == 422 || status == 429, "{name}: {status}");
        if status == 422 {
            assert!(
                body["error"].as_str().unwrap().contains(reason),
                "{name}: {body}"
            );
        }
    }
    let (status, _) = start("dave").await;
    assert_eq!(status, 429, "a few sign-ups an hour per client");
}

#[tokio::test]
async fn where_joining_is_closed_even_an_invite_opens_nothing() {
    let app = spawn_app_with(None, |s| {
        on_localhost(s);
        s.signup = rayo::config::Signup::Closed;
    })
    .await;
    let invite: Value = app
        .client
        .post(format!("{}/admin/v1/invites", app.address))
        .bearer_auth(&app.admin_token)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = invite["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let page = app
        .get(&format!("/join/{token}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Joining is turned off"));
    assert_eq!(app.get("/join").await.status(), 404);
    let start = no_redirects()
        .post(format!("{}/join/start", local_base(&app)))
        .json(&json!({"token": token, "name": "eve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 422);
}

/// The independent LNURL-auth wallet (tests/nostr-tools/lnurl-auth.mjs): scans `code`, signs
/// with the key LUD-05 derives from `seed` for this domain, and says what the server answered.
pub(crate) async fn wallet_scans(seed: &str, code: &str) -> Value {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nostr-tools");
    let mut command = std::process::Command::new("node");
    command
        .current_dir(dir)
        .args(["lnurl-auth.mjs", seed, code]);
    let output = tokio::task::spawn_blocking(move || command.output().expect("node runs"))
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<Value>(&output.stdout).unwrap()["answer"].clone()
}

/// The value of cookie `name` that `answer` sets.
pub(crate) fn set_cookie(answer: &reqwest::Response, name: &str) -> Option<String> {
    answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.strip_prefix(&format!("{name}="))
                .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
        })
}

/// The join form's wallet button, pressed with `token` and `name`: the code shown for a wallet
/// to scan, and the cookie that lets this browser collect the outcome.
pub(crate) async fn wallet_join_code(base: &str, token: &str, name: &str) -> (String, String) {
    let shown = no_redirects()
        .post(format!("{base}/join/wallet"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("token", token), ("name", name)])
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), 200);
    let waiting = set_cookie(&shown, "rayo_k1").expect("the browser's cookie");
    let page = shown.text().await.unwrap();
    let code = between(&page, "id=\"lnurl-auth-qr\" href=\"", "\"").to_owned();
    (waiting, code)
}

#[tokio::test]
async fn a_person_joins_and_signs_in_with_a_lightning_wallet_without_javascript() {
    if browser_tools().is_none() {
        return;
    }
    let app = spawn_app_with(None, on_localhost).await;
    let base = local_base(&app);
    let seed = "1f1e1d1c1b1a19181716151413121110";

    // The join form's wallet button: a code to scan, and a cookie for this browser.
    let token = invite_token(&app, json!({})).await;
    let (waiting, code) = wallet_join_code(&base, &token, "Walt").await;
    assert!(code.starts_with("lightning:LNURL1"));

    // Before the wallet signs, "continue" says not yet; after, it signs this browser in.
    let continue_ = |cookie: String| {
        let base = base.clone();
        async move {
            no_redirects()
                .post(format!("{base}/login/lnurl"))
                .header("sec-fetch-site", "same-origin")
                .header("cookie", format!("rayo_k1={cookie}"))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(continue_(waiting.clone()).await.status(), 202);
    assert_eq!(wallet_scans(seed, &code).await, json!({"status": "OK"}));
    let signed_in = continue_(waiting.clone()).await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], "/account");
    let walt = Person {
        cookie: set_cookie(&signed_in, "rayo_session").expect("a session"),
        invite_url: String::new(),
    };
    let account = walt.page(&base).await;
    assert!(
        account.contains("walt@") && account.contains("Wallet 1"),
        "joined with the wallet"
    );
    assert!(app
        .get("/.well-known/lnurlp/walt")
        .await
        .status()
        .is_success());
    // The code is spent: this browser cannot collect it twice, nor the wallet sign it again.
    assert_eq!(continue_(waiting).await.status(), 303, "back to /login");
    assert_eq!(wallet_scans(seed, &code).await["status"], "ERROR");

    // Later, the same wallet signs in from the login page, without a script.
    let login = no_redirects()
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap();
    let waiting = set_cookie(&login, "rayo_k1").unwrap();
    let page = login.text().await.unwrap();
    let code = between(&page, "id=\"lnurl-auth-qr\" href=\"", "\"").to_owned();
    assert_eq!(wallet_scans(seed, &code).await, json!({"status": "OK"}));
    let again = continue_(waiting).await;
    assert_eq!(again.status(), 303);
    assert!(set_cookie(&again, "rayo_session").is_some());

    // The same wallet cannot make a second account.
    let second = invite_token(&app, json!({})).await;
    let (_, code) = wallet_join_code(&base, &second, "walt2").await;
    let refused = wallet_scans(seed, &code).await;
    assert_eq!(refused["status"], "ERROR");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("already signs in"),
        "{refused}"
    );
    let walt2 = app
        .client
        .get(format!("{}/admin/v1/users/walt2", app.address))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(walt2.status(), 404, "no user was made");
    // And its invite was not used up.
    assert_eq!(app.get(&format!("/join/{second}")).await.status(), 200);
}

#[tokio::test]
async fn an_invite_for_an_existing_address_hands_it_over_and_ends_the_old_sessions() {
    if browser_tools().is_none() {
        return;
    }
    let app = spawn_app_with(None, on_localhost).await;
    let base = local_base(&app);
    let alice = join(&app, "alice").await;

    // The new owner opens the hand-over invite and joins with their wallet.
    let token = invite_token(&app, json!({"for": "alice"})).await;
    let page = app
        .get(&format!("/join/{token}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Take over your address") && page.contains("alice@"));
    let (waiting, code) = wallet_join_code(&base, &token, "ignored").await;
    assert_eq!(
        wallet_scans("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf", &code).await,
        json!({"status": "OK"})
    );
    let signed_in = no_redirects()
        .post(format!("{base}/login/lnurl"))
        .header("sec-fetch-site", "same-origin")
        .header("cookie", format!("rayo_k1={waiting}"))
        .send()
        .await
        .unwrap();
    let heir = Person {
        cookie: set_cookie(&signed_in, "rayo_session").expect("a session"),
        invite_url: String::new(),
    };
    let account = heir.page(&base).await;
    assert!(account.contains("alice@") && account.contains("Wallet 1"));
    assert!(
        account.contains("data-passkey="),
        "the old passkey is still listed, for the new owner to remove"
    );
    // Every session from before the hand-over ended.
    assert_eq!(alice.get(&base, "/account").await.status(), 303);

    // An invite naming a name that was taken since is refused before any ceremony.
    let late = invite_token(&app, json!({"name": "bob"})).await;
    app.add_user("bob", json!({})).await;
    let refused = no_redirects()
        .post(format!("{base}/join/start"))
        .json(&json!({"token": late, "name": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("is taken"));
}

#[tokio::test]
async fn live_payment_streams_are_capped_per_person() {
    if browser_tools().is_none() {
        return;
    }
    let app = spawn_app_with(None, |s| {
        on_localhost(s);
        s.max_followers_per_client = 3;
    })
    .await;
    let base = local_base(&app);
    let alice = join(&app, "alice").await;
    // The joining browser's own stream ends with the browser (noticed at a keep-alive).
    let quiet = app
        .eventually(20, || async {
            app.metrics().await.contains("rayo_live_followers 0")
        })
        .await;
    assert!(quiet);
    let mut open = Vec::new();
    for _ in 0..3 {
        let stream = alice.get(&base, "/account/payments/live").await;
        assert_eq!(stream.status(), 200);
        assert_eq!(stream.headers()["content-type"], "text/event-stream");
        open.push(stream);
    }
    assert_eq!(
        alice.get(&base, "/account/payments/live").await.status(),
        429
    );
    // A stream that ends gives its place back.
    drop(open.pop());
    let freed = app
        .eventually(20, || async {
            alice.get(&base, "/account/payments/live").await.status() == 200
        })
        .await;
    assert!(freed);
    // Without a session there is no stream at all.
    let stranger = no_redirects()
        .get(format!("{base}/account/payments/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 401);
}
