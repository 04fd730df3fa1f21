//! What notifications reach, for the tests: a real SMTP server (PyPI `aiosmtpd`, in the
//! virtualenv `.ci/run` makes), and in-process fakes of ntfy and the Telegram Bot API that
//! speak their documented HTTP APIs.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

fn smtp_venv() -> Option<PathBuf> {
    let dir = std::env::var_os("RAYO_TEST_SMTP_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-smtp"));
    dir.join("bin").join("aiosmtpd").exists().then_some(dir)
}

/// aiosmtpd on a real port, with STARTTLS (a certificate from a CA of the test's) and AUTH
/// (user `rayo`, password `s3cret`, only over TLS).
pub struct SmtpServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The CA that signed the server's certificate, PEM: what rayo must trust.
    pub ca_pem: String,
    child: Child,
}

impl SmtpServer {
    pub fn start() -> Option<Self> {
        let Some(venv) = smtp_venv() else {
            super::skip_unless_ci("aiosmtpd is not installed: run .ci/run once, or set RAYO_TEST_SMTP_VENV to a virtualenv with aiosmtpd");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let (ca_pem, cert_pem, key_pem) = certificate_for("localhost");
        std::fs::write(dir.path().join("cert.pem"), cert_pem).unwrap();
        std::fs::write(dir.path().join("key.pem"), key_pem).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let child = Command::new(venv.join("bin").join("python"))
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .arg(dir.path().join("cert.pem"))
            .arg(dir.path().join("key.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            super::wait_until(30, || std::net::TcpStream::connect(("127.0.0.1", port))
                .is_ok()),
            "the SMTP server did not start"
        );
        Some(Self {
            port,
            dir,
            ca_pem,
            child,
        })
    }

    /// ok, refuse, drop or stall: what the server does with the next messages.
    pub fn set_mode(&self, mode: &str) {
        std::fs::write(self.dir.path().join("mode"), mode).unwrap();
    }

    /// Messages received, in order.
    pub fn received(&self) -> Vec<Value> {
        let mut found: Vec<(usize, Value)> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| {
                let path = e.ok()?.path();
                let n: usize = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()?;
                Some((n, serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?))
            })
            .collect();
        found.sort_by_key(|(n, _)| *n);
        found.into_iter().map(|(_, v)| v).collect()
    }

    pub fn ca_file(&self) -> PathBuf {
        let path = self.dir.path().join("ca.pem");
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA, and a certificate it signed for `host`: (CA PEM, certificate PEM, key PEM).
fn certificate_for(host: &str) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "rayo test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec![host.to_owned()]).unwrap();
    let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// One request a fake received.
#[derive(Debug, Clone)]
pub struct Heard {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

/// ntfy's JSON publishing (`POST /` with `{"topic", "message", "title", "tags", "priority",
/// "click"}`), answering as ntfy does: the message with an id. `fail` makes it answer 500.
#[derive(Clone)]
pub struct FakeNtfy {
    pub base: String,
    heard: Arc<Mutex<Vec<Heard>>>,
    fail: Arc<Mutex<bool>>,
}

impl FakeNtfy {
    pub fn start() -> Self {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let fail = Arc::new(Mutex::new(false));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (h, f) = (heard.clone(), fail.clone());
        let server = HttpServer::new(move || {
            let (h, f) = (h.clone(), f.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (h, f) = (h.clone(), f.clone());
                async move {
                    if *f.lock().unwrap() {
                        return HttpResponse::InternalServerError().json(json!({"code": 50001, "http": 500, "error": "ntfy is having a bad day"}));
                    }
                    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    if req.method() != actix_web::http::Method::POST || req.path() != "/" || !parsed["topic"].is_string() {
                        return HttpResponse::BadRequest().json(json!({"code": 40001, "http": 400, "error": "invalid request"}));
                    }
                    h.lock().unwrap().push(Heard {
                        path: req.path().to_owned(),
                        authorization: req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned),
                        body: parsed.clone(),
                    });
                    HttpResponse::Ok().json(json!({"id": "hwQ2YpKdmg", "time": 1700000000, "event": "message", "topic": parsed["topic"], "message": parsed["message"]}))
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self { base, heard, fail }
    }

    pub fn heard(&self) -> Vec<Heard> {
        self.heard.lock().unwrap().clone()
    }

    pub fn set_failing(&self, failing: bool) {
        *self.fail.lock().unwrap() = failing;
    }
}

/// The Telegram Bot API's methods rayo calls (`getMe`, `getUpdates` with long polling,
/// `sendMessage`), answering `{"ok": …}` as Telegram does, for the bot token `TOKEN`.
pub struct FakeTelegram {
    pub base: String,
    state: Arc<TelegramState>,
}

pub const TELEGRAM_TOKEN: &str = "123456:TEST-token";

#[derive(Default)]
struct TelegramState {
    updates: Mutex<Vec<Value>>,
    next_id: Mutex<i64>,
    sent: Mutex<Vec<Value>>,
    /// Answer the next sendMessage with 429 and this retry_after.
    throttle_next: Mutex<Option<u64>>,
    arrived: tokio::sync::Notify,
}

impl FakeTelegram {
    pub fn start() -> Self {
        let state = Arc::new(TelegramState::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared = state.clone();
        let server = HttpServer::new(move || {
            let state = shared.clone();
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let state = state.clone();
                async move { telegram_answer(&state, req.path(), &body).await }
            }))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self { base, state }
    }

    /// A person writes `text` in chat `chat`.
    pub fn say(&self, chat: i64, text: &str) {
        let mut id = self.state.next_id.lock().unwrap();
        *id += 1;
        self.state.updates.lock().unwrap().push(json!({
            "update_id": 1000 + *id,
            "message": {"message_id": *id, "date": 1700000000, "chat": {"id": chat, "type": "private"}, "text": text}
        }));
        self.state.arrived.notify_waiters();
    }

    /// What the bot sent: `{"chat_id", "text"}` each.
    pub fn sent(&self) -> Vec<Value> {
        self.state.sent.lock().unwrap().clone()
    }

    pub fn throttle_next(&self, retry_after: u64) {
        *self.state.throttle_next.lock().unwrap() = Some(retry_after);
    }
}

async fn telegram_answer(state: &TelegramState, path: &str, body: &[u8]) -> HttpResponse {
    // The test's own control: a person writes in a chat (for the browser journey).
    if path == "/control/say" {
        let said: Value = serde_json::from_slice(body).unwrap_or(json!({}));
        let mut id = state.next_id.lock().unwrap();
        *id += 1;
        state.updates.lock().unwrap().push(json!({
            "update_id": 1000 + *id,
            "message": {"message_id": *id, "date": 1700000000, "chat": {"id": said["chat"], "type": "private"}, "text": said["text"]}
        }));
        state.arrived.notify_waiters();
        return HttpResponse::Ok().finish();
    }
    let Some(method) = path.strip_prefix(&format!("/bot{TELEGRAM_TOKEN}/")) else {
        return HttpResponse::Unauthorized()
            .json(json!({"ok": false, "error_code": 401, "description": "Unauthorized"}));
    };
    let args: Value = serde_json::from_slice(body).unwrap_or(json!({}));
    match method {
        "getMe" => HttpResponse::Ok().json(json!({"ok": true, "result": {"id": 123456, "is_bot": true, "first_name": "rayo", "username": "rayo_test_bot"}})),
        "getUpdates" => {
            let offset = args["offset"].as_i64().unwrap_or(0);
            let pending = |state: &TelegramState| -> Vec<Value> {
                let mut updates = state.updates.lock().unwrap();
                // Confirmed by asking from a later offset, as Telegram does.
                updates.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
                updates.clone()
            };
            let mut found = pending(state);
            if found.is_empty() {
                // A long poll: wait for a message, at most a second here.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), state.arrived.notified()).await;
                found = pending(state);
            }
            HttpResponse::Ok().json(json!({"ok": true, "result": found}))
        }
        "sendMessage" => {
            if let Some(wait) = state.throttle_next.lock().unwrap().take() {
                return HttpResponse::TooManyRequests().json(json!({"ok": false, "error_code": 429, "description": format!("Too Many Requests: retry after {wait}"), "parameters": {"retry_after": wait}}));
            }
            if !args["chat_id"].is_i64() || !args["text"].is_string() {
                return HttpResponse::BadRequest().json(json!({"ok": false, "error_code": 400, "description": "Bad Request: message text is empty"}));
            }
            state.sent.lock().unwrap().push(args.clone());
            HttpResponse::Ok().json(json!({"ok": true, "result": {"message_id": 1, "date": 1700000000, "chat": {"id": args["chat_id"]}, "text": args["text"]}}))
        }
        _ => HttpResponse::NotFound().json(json!({"ok": false, "error_code": 404, "description": "Not Found"})),
    }
}
