//! NWC for the tests: a real Nostr relay (PyPI `nostr-relay`, in the virtualenv `.ci/run` makes,
//! `.venv-relay` or `RAYO_TEST_NOSTR_RELAY_VENV`), and a fake wallet service written with npm
//! `nostr-tools` (`tests/nostr-tools/nwc-wallet.mjs`) that fronts a node in this process
//! minting real signed invoices. In CI a missing relay or nostr-tools fails the test; elsewhere
//! the test says why it did not run.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpResponse};
use lightning_invoice::Currency;
use serde_json::{json, Value};

use super::fake_node::{self, mint, Description, Faults};

fn relay_venv() -> Option<PathBuf> {
    let dir = std::env::var_os("RAYO_TEST_NOSTR_RELAY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-relay"));
    dir.join("bin").join("nostr-relay").exists().then_some(dir)
}

/// A real relay process on a port of its own, storing events in a temporary SQLite file.
pub struct NostrRelay {
    pub url: String,
    port: u16,
    venv: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl NostrRelay {
    pub fn start() -> Option<Self> {
        let Some(venv) = relay_venv() else {
            super::skip_unless_ci("nostr-relay is not installed: run .ci/run once, or set RAYO_TEST_NOSTR_RELAY_VENV to a virtualenv with nostr-relay==1.14");
            return None;
        };
        // The relay binds its own port (gunicorn takes an address): the OS picks a free one.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut relay = Self {
            url: format!("ws://127.0.0.1:{port}"),
            port,
            venv,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        relay.launch();
        Some(relay)
    }

    fn launch(&mut self) {
        let config = self.dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "storage:\n  sqlalchemy.url: sqlite+aiosqlite:///{}\ngunicorn:\n  bind: 127.0.0.1:{}\n  workers: 1\n",
                self.dir.path().join("relay.db").display(),
                self.port
            ),
        )
        .unwrap();
        let child = Command::new(self.venv.join("bin").join("nostr-relay"))
            .arg("-c")
            .arg(&config)
            .arg("serve")
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        assert!(
            super::wait_until(30, || std::net::TcpStream::connect((
                "127.0.0.1",
                self.port
            ))
            .is_ok()),
            "the relay did not start"
        );
    }

    /// Kills the relay: every connection to it drops.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // gunicorn's workers go with their master on SIGTERM; SIGKILL would leave them.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
        assert!(
            super::wait_until(10, || std::net::TcpStream::connect((
                "127.0.0.1",
                self.port
            ))
            .is_err()),
            "the relay did not stop"
        );
    }

    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for NostrRelay {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The node behind the wallet: mints real signed regtest invoices and knows which are paid.
#[derive(Clone, Default)]
struct Node {
    invoices: Arc<Mutex<HashMap<String, NodeInvoice>>>,
}

struct NodeInvoice {
    preimage: [u8; 32],
    amount_msat: u64,
    created_at: u64,
    expires_at: u64,
    settled_at: Option<u64>,
}

/// What the wallet does wrong, if anything (see `nwc-wallet.mjs`); the node's own faults
/// (`faults`) tamper with the invoices it mints.
pub struct FakeNwcWallet {
    /// The connection URI rayo is given.
    pub uri: String,
    pub faults: Faults,
    control: String,
    node: Node,
    child: Child,
}

fn nostr_tools() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nostr-tools");
    if dir.join("node_modules/nostr-tools").exists() && dir.join("node_modules/ws").exists() {
        Some(dir)
    } else {
        super::skip_unless_ci(
            "nostr-tools is not installed: run `npm ci --prefix tests/nostr-tools` (.ci/run does)",
        );
        None
    }
}

/// How a fake wallet is set up.
pub struct WalletSetup<'a> {
    /// "nip44" (offers NIP-44 v2 and NIP-04) or "nip04" (NIP-04 only).
    pub encryption: &'a str,
    pub methods: &'a str,
    /// Publishes its info event (kind 13194).
    pub info: bool,
}

impl Default for WalletSetup<'_> {
    fn default() -> Self {
        Self {
            encryption: "nip44",
            methods: "make_invoice lookup_invoice get_info",
            info: true,
        }
    }
}

impl FakeNwcWallet {
    pub fn start(relay: &NostrRelay, setup: WalletSetup<'_>) -> Option<Self> {
        let dir = nostr_tools()?;
        let node = Node::default();
        let faults = Faults::new();
        let (state, minting) = (node.clone(), faults.clone());
        let node_url = fake_node::serve(
            move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(web::Data::new((state.clone(), minting.clone())))
                    .route("/mint", web::post().to(mint_invoice))
                    .route("/lookup/{hash}", web::get().to(lookup));
            },
            Faults::new(),
            None,
        );
        let wallet_secret = hex::encode(rayo::clock::Random::bytes32(&rayo::clock::OsRandom));
        let client_secret = hex::encode(rayo::clock::Random::bytes32(&rayo::clock::OsRandom));
        let wallet_key = nostr::Keys::parse(&wallet_secret).unwrap().public_key();
        let mut child = Command::new("node")
            .arg("nwc-wallet.mjs")
            .current_dir(&dir)
            .env("RELAY", &relay.url)
            .env("WALLET_SECRET", &wallet_secret)
            .env("NODE_URL", &node_url)
            .env("ENCRYPTION", setup.encryption)
            .env("METHODS", setup.methods)
            .env("INFO", if setup.info { "publish" } else { "none" })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .trim()
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("the fake wallet did not start: {first:?}"));
        Some(Self {
            uri: format!(
                "nostr+walletconnect://{}?relay={}&secret={client_secret}",
                wallet_key.to_hex(),
                relay.url
            ),
            faults,
            control: format!("http://127.0.0.1:{port}"),
            node,
            child,
        })
    }

    async fn control(&self, path: &str, body: &str) -> String {
        let answer = reqwest::Client::new()
            .post(format!("{}{path}", self.control))
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let (status, text) = (answer.status(), answer.text().await.unwrap());
        assert_eq!(status, 200, "{text}");
        text
    }

    /// How many requests the wallet has read, in any mode.
    pub async fn requests_seen(&self) -> usize {
        self.control("/requests", "").await.parse().unwrap()
    }

    /// How the wallet answers from now on: normal, silent, wrong-signer, garbage,
    /// not-addressed, wrong-request, or error:<CODE>.
    pub async fn set_mode(&self, mode: &str) {
        self.control("/mode", mode).await;
    }

    /// The payer paid: the node knows, and the wallet sends `payment_received` if `notify`.
    pub async fn settle(&self, payment_hash: &str, notify: bool) {
        {
            let mut invoices = self.node.invoices.lock().unwrap();
            let invoice = invoices
                .get_mut(payment_hash)
                .expect("the wallet made this invoice");
            invoice.settled_at = Some(fake_node::now_secs());
        }
        if notify {
            self.control("/notify", payment_hash).await;
        }
    }

    pub fn invoices_made(&self) -> usize {
        self.node.invoices.lock().unwrap().len()
    }
}

impl Drop for FakeNwcWallet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type NodeState = web::Data<(Node, Faults)>;

async fn mint_invoice(state: NodeState, body: web::Json<Value>) -> HttpResponse {
    let (node, faults) = state.get_ref();
    let amount_msat = body["amount_msat"].as_u64().unwrap_or(0);
    let expiry = Duration::from_secs(body["expiry"].as_u64().unwrap_or(3600));
    let hash: Option<[u8; 32]> = body["description_hash"]
        .as_str()
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| b.try_into().ok());
    let memo = body["description"].as_str().unwrap_or("").to_owned();
    let description = match (faults.get(), hash) {
        // A wallet that ignores the description hash it was asked for.
        (fake_node::Fault::WrongDescription, Some(_)) => Description::Memo("ignored the hash"),
        (_, Some(hash)) => Description::Hash(hash),
        (_, None) => Description::Memo(&memo),
    };
    let tampered = Faults::new();
    if faults.get() == fake_node::Fault::WrongAmount {
        tampered.set(fake_node::Fault::WrongAmount);
    }
    let minted = mint(
        &tampered,
        Currency::Regtest,
        amount_msat,
        description,
        expiry,
    );
    let now = fake_node::now_secs();
    node.invoices.lock().unwrap().insert(
        minted.payment_hash.clone(),
        NodeInvoice {
            preimage: minted.preimage,
            amount_msat,
            created_at: now,
            expires_at: now + expiry.as_secs(),
            settled_at: None,
        },
    );
    HttpResponse::Ok().json(json!({"invoice": minted.bolt11, "payment_hash": minted.payment_hash}))
}

async fn lookup(state: NodeState, hash: web::Path<String>) -> HttpResponse {
    let invoices = state.0.invoices.lock().unwrap();
    let Some(invoice) = invoices.get(hash.as_str()) else {
        return HttpResponse::NotFound().finish();
    };
    let mut body = json!({
        "amount": invoice.amount_msat,
        "created_at": invoice.created_at,
        "expires_at": invoice.expires_at,
        "state": if invoice.settled_at.is_some() { "settled" } else { "pending" },
    });
    if let Some(at) = invoice.settled_at {
        body["settled_at"] = json!(at);
        body["preimage"] = json!(hex::encode(invoice.preimage));
    }
    HttpResponse::Ok().json(body)
}
