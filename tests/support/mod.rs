//! Shared by every integration test: a real server on a real port with its own sled store,
//! a wallet-side checker, and a backend double.

#![allow(dead_code)]

pub mod backend_double;
pub mod binary;
pub mod dns;
pub mod fake_buda;
pub mod fake_cln;
pub mod fake_dns_hosts;
pub mod fake_lnd;
pub mod fake_node;
pub mod fake_phoenixd;
pub mod fake_prices;
pub mod lnbits;
pub mod nginx;
pub mod notify;
pub mod nwc;
pub mod ports;
pub mod receiver;
pub mod relay;
pub mod wallet;

use std::net::TcpListener;
use std::sync::Arc;

use rayo::backends::AnyBackend;
use rayo::config::{PublicUrl, Settings};
use rayo::startup::{Application, Overrides};
use serde_json::Value;
use tempfile::TempDir;

pub struct TestApp {
    /// `http://127.0.0.1:<port>`, also the public URL.
    pub address: String,
    pub client: reqwest::Client,
    pub admin_token: String,
    /// Where the admin API (and the console) answers: the admin address, else `address`.
    pub admin: String,
    pub data_dir: TempDir,
    /// Where the BIP-353 DNS server answers, when the settings start one.
    pub dns: Option<std::net::SocketAddr>,
    server: actix_web::dev::ServerHandle,
    running: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(None, |_| {}).await
}

/// Starts rayo on port 0 in a fresh data directory, with `backend` instead of the dev backend
/// if given, and `tweak` applied to the settings.
pub async fn spawn_app_with(
    backend: Option<AnyBackend>,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temporary directory");
    spawn_app_in(data_dir, backend, None, tweak).await
}

/// A clock that runs with real time, shifted forward on demand.
#[derive(Default)]
pub struct ShiftedClock {
    offset_secs: std::sync::atomic::AtomicU64,
}

impl ShiftedClock {
    pub fn advance(&self, seconds: u64) {
        self.offset_secs
            .fetch_add(seconds, std::sync::atomic::Ordering::SeqCst);
    }
}

impl rayo::clock::Clock for ShiftedClock {
    fn now(&self) -> std::time::SystemTime {
        std::time::SystemTime::now()
            + std::time::Duration::from_secs(
                self.offset_secs.load(std::sync::atomic::Ordering::SeqCst),
            )
    }
}

/// Starts rayo on an existing data directory (a restart after `TestApp::stop`).
pub async fn spawn_app_in(
    data_dir: TempDir,
    backend: Option<AnyBackend>,
    clock: Option<Arc<dyn rayo::clock::Clock>>,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    if std::env::var_os("RAYO_TEST_LOG").is_some() {
        rayo::telemetry::init(rayo::config::LogFormat::Pretty, "info,rayo=debug");
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let port = listener.local_addr().unwrap().port();
    let address = format!("http://127.0.0.1:{port}");
    let mut settings = Settings::defaults();
    settings.bind = listener.local_addr().unwrap();
    settings.public_url = PublicUrl::parse(&address).unwrap();
    settings.data_dir = data_dir.path().to_path_buf();
    settings.workers = Some(1);
    // Webhook receivers in tests listen on loopback; the tests of the public-only rule say so.
    settings.webhook_allow_private = rayo::net::PrivateWebhooks::All;
    tweak(&mut settings);
    // The previous run's store lock may outlive it by a moment (sled's flusher thread).
    let mut attempts = 0;
    let app = loop {
        match Application::build_on(
            settings.clone(),
            listener.try_clone().unwrap(),
            Overrides {
                backend: backend.clone(),
                clock: clock.clone(),
                random: None,
            },
        )
        .await
        {
            Err(rayo::startup::StartupError::Open(rayo::services::OpenError::Store(
                rayo::store::StoreError::Locked(_),
            ))) if attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => break other.expect("application starts"),
        }
    };
    let admin_token = app.admin_token().expose().to_owned();
    let admin = app.admin_url().expect("the admin URL file");
    let server = app.handle();
    let dns = app.dns_address();
    let running = tokio::spawn(app.run_until_stopped());
    TestApp {
        dns,
        address,
        client: reqwest::Client::new(),
        admin_token,
        admin,
        data_dir,
        server,
        running,
    }
}

impl TestApp {
    /// Stops the server as SIGTERM would (in-flight requests finish, the store flushes) and
    /// hands back its data directory.
    pub async fn stop(self) -> TempDir {
        self.server.stop(true).await;
        let _ = self.running.await;
        self.data_dir
    }

    /// Polls `check` every 50 ms until it holds or `seconds` pass; returns whether it held.
    pub async fn eventually<F, Fut>(&self, seconds: u64, mut check: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        poll_until(seconds, || {
            let checked = check();
            async move { checked.await.then_some(()) }
        })
        .await
        .is_some()
    }

    /// What `/metrics` says now.
    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.text().await.unwrap()
    }

    /// The invoice as the admin API shows it.
    pub async fn invoice(&self, payment_hash: &str) -> Value {
        let answer = self
            .admin(
                reqwest::Method::GET,
                &format!("/invoices/{payment_hash}"),
                None,
            )
            .await;
        assert_eq!(answer.status(), 200, "invoice {payment_hash}");
        answer.json().await.unwrap()
    }

    /// Waits up to `seconds` for the invoice to reach `status`.
    pub async fn wait_for_status(&self, payment_hash: &str, status: &str, seconds: u64) -> Value {
        let reached = poll_until(seconds, || async {
            let invoice = self.invoice(payment_hash).await;
            (invoice["status"] == status).then_some(invoice)
        })
        .await;
        reached.unwrap_or_else(|| {
            panic!("invoice {payment_hash} did not become {status} within {seconds} s")
        })
    }

    pub fn domain(&self) -> &str {
        self.address.trim_start_matches("http://")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
    }

    /// Sends `path` byte for byte (HTTP clients normalise `..` away) and returns the status
    /// and the JSON body.
    /// Submits `name`'s pay form, as a browser on the pay page does (following the redirect
    /// to the checkout page).
    pub async fn pay_form(&self, name: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}/@{name}/pay", self.address))
            .header("Sec-Fetch-Site", "same-origin")
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    pub async fn raw_get(&self, path: &str) -> (u16, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.domain())
            .await
            .expect("connect");
        let request = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.domain());
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let text = String::from_utf8_lossy(&answer);
        let status = text
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let answer = self.get(path).await;
        assert_eq!(answer.status(), 200, "{path}");
        answer.json().await.expect("JSON body")
    }

    /// Calls the callback and returns its JSON, asserting the LNURL convention of HTTP 200.
    pub async fn callback(&self, name: &str, query: &str) -> Value {
        self.get_json(&format!("/lnurlp/{name}/callback?{query}"))
            .await
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, format!("{}/admin/v1{path}", self.address))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("admin request")
    }

    pub async fn add_user(&self, name: &str, settings: Value) -> Value {
        let answer = self
            .admin(
                reqwest::Method::POST,
                "/users",
                Some(serde_json::json!({"name": name, "settings": settings})),
            )
            .await;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        assert_eq!(status, 201, "creating {name}: {body}");
        body
    }

    /// A new API key for `user`, through the admin API.
    pub async fn api_key(&self, user: &str) -> String {
        let answer = self
            .admin(
                reqwest::Method::POST,
                &format!("/users/{user}/api-keys"),
                None,
            )
            .await;
        assert_eq!(answer.status(), 201);
        let created: Value = answer.json().await.unwrap();
        created["key"].as_str().unwrap().to_owned()
    }

    /// `POST /api/v1/invoices` with `key`: the status and the answer.
    pub async fn create_invoice(&self, key: &str, body: Value) -> (u16, Value) {
        let answer = self
            .client
            .post(format!("{}/api/v1/invoices", self.address))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    pub async fn invoices(&self) -> Vec<Value> {
        let answer = self
            .admin(reqwest::Method::GET, "/invoices?limit=1000", None)
            .await;
        assert_eq!(answer.status(), 200);
        answer.json().await.unwrap()
    }

    pub async fn settle(&self, payment_hash: &str) -> reqwest::Response {
        self.admin(
            reqwest::Method::POST,
            &format!("/dev/settle/{payment_hash}"),
            None,
        )
        .await
    }
}

/// Asks `check` every 50 ms, for up to `seconds`, until it has an answer.
pub async fn poll_until<T, F, Fut>(seconds: u64, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(answer) = check().await {
            return Some(answer);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Asks `check` every 50 ms, for up to `seconds`, until it holds; for threads that may block
/// (starting and stopping child processes). Returns whether it held.
pub fn wait_until(seconds: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !check() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    true
}

/// A test that needs an outside program this machine lacks says why and skips, except under
/// `CI`, where `.ci/run` installs everything and a missing program is a failure.
pub fn skip_unless_ci(why: &str) {
    assert!(std::env::var_os("CI").is_none(), "under CI: {why}");
    eprintln!("skipping: {why}");
}

/// GETs an absolute URL (a callback or verify URL rayo handed out) and decodes its JSON.
pub async fn get_json_url(client: &reqwest::Client, url: &str) -> Value {
    client
        .get(url)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON body")
}

/// Asserts an LNURL error whose reason mentions `needle` (case-insensitive).
pub fn assert_lnurl_error(body: &Value, needle: &str) {
    assert_eq!(
        body["status"], "ERROR",
        "expected an LNURL error, got {body}"
    );
    let reason = body["reason"].as_str().expect("reason is a string");
    assert!(
        reason.to_lowercase().contains(&needle.to_lowercase()),
        "reason {reason:?} should mention {needle:?}"
    );
}
