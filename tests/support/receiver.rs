//! A webhook receiver on a real port: records what arrives, and can be "down" (503).

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

#[derive(Debug, Clone)]
pub struct Received {
    pub event_id: String,
    pub signature: String,
    pub body: String,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    down: bool,
    hanging: bool,
    endless_error: bool,
    redirect_to: Option<String>,
    /// While down, the 503's body is markup (a page must show it as text).
    hostile: bool,
    attempts: u32,
}

pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .route("/hook", web::post().to(receive))
                // For a browser driving a test: `up`, `down` or `hostile` (down, with markup).
                .route("/control/{state}", web::post().to(control))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            state,
        }
    }

    /// While down, every delivery gets a 503 (and is not counted as received).
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Answers every delivery with a redirect to `url` (rayo must not follow it).
    pub fn redirect_to(&self, url: &str) {
        self.state.lock().unwrap().redirect_to = Some(url.to_owned());
    }

    /// While hanging, deliveries are accepted and never answered (for 60 s).
    pub fn set_hanging(&self, hanging: bool) {
        self.state.lock().unwrap().hanging = hanging;
    }

    /// Answers every delivery with a 500 whose body never ends.
    pub fn set_endless_error(&self, endless: bool) {
        self.state.lock().unwrap().endless_error = endless;
    }

    /// The receiver's base URL (without `/hook`), for `/control/…`.
    pub fn base(&self) -> &str {
        self.url.trim_end_matches("/hook")
    }

    /// While down, answers with markup in its 503 (see `set_down`).
    pub fn set_hostile(&self, hostile: bool) {
        self.state.lock().unwrap().hostile = hostile;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn attempts(&self) -> u32 {
        self.state.lock().unwrap().attempts
    }
}

async fn control(
    state_name: web::Path<String>,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let mut state = state.lock().unwrap();
    match state_name.as_str() {
        "up" => state.down = false,
        "down" => state.down = true,
        "hostile" => {
            state.down = true;
            state.hostile = true;
        }
        _ => return HttpResponse::NotFound().finish(),
    }
    HttpResponse::NoContent().finish()
}

async fn receive(
    req: HttpRequest,
    body: String,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let hanging = {
        let mut state = state.lock().unwrap();
        state.attempts += 1;
        state.hanging
    };
    if hanging {
        // Never answers: the caller's timeout is what ends it.
        return std::future::pending().await;
    }
    let mut state = state.lock().unwrap();
    if state.endless_error {
        let chunks = futures_util::stream::unfold((), |()| async {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Some((
                Ok::<_, actix_web::Error>(web::Bytes::from_static(b"error error error ")),
                (),
            ))
        });
        return HttpResponse::InternalServerError().streaming(chunks);
    }
    if let Some(url) = &state.redirect_to {
        return HttpResponse::TemporaryRedirect()
            .insert_header(("Location", url.clone()))
            .finish();
    }
    if state.down {
        if state.hostile {
            return HttpResponse::ServiceUnavailable()
                .body("<script>alert('receiver')</script> is down");
        }
        return HttpResponse::ServiceUnavailable().body("receiver is down");
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    state.received.push(Received {
        event_id: header("Rayo-Event-Id"),
        signature: header("Rayo-Signature"),
        body,
    });
    HttpResponse::Ok().finish()
}

/// Runs the receiver-side verification snippet from the webhooks documentation (Python) on a
/// delivery: true if
/// it accepts the signature.
pub fn documented_verifier_accepts(secret: &str, signature: &str, body: &str) -> bool {
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/5-payments-webhooks-and-the-invoice-api.md"
    ))
    .unwrap();
    let start = readme
        .find("```python\n# verify-rayo-webhook")
        .expect("the webhooks documentation has the verification snippet");
    let code = &readme[start + "```python\n".len()..];
    let code = &code[..code.find("```").unwrap()];
    let program = format!(
        "{code}\nimport sys\nsys.exit(0 if verify(sys.argv[1].encode(), sys.argv[2], sys.argv[3].encode()) else 1)\n"
    );
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg(program)
        .arg(secret)
        .arg(signature)
        .arg(body)
        .status()
        .expect("python3 runs");
    status.success()
}
