//! A real LNbits (FakeWallet) for the tests: started from the virtualenv `.ci/run` makes
//! (`.venv`, or `RAYO_TEST_LNBITS_VENV`), with a payee wallet rayo makes invoices for and a
//! funded payer wallet that pays them. In CI a missing LNbits fails the test; elsewhere the
//! test says why it did not run.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};
use tempfile::TempDir;

pub struct Lnbits {
    child: Option<Child>,
    pub url: String,
    pub payee_invoice_key: String,
    pub payer_admin_key: String,
    venv: PathBuf,
    data: TempDir,
    port: u16,
}

fn venv() -> Option<PathBuf> {
    let dir = std::env::var_os("RAYO_TEST_LNBITS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    dir.join("bin").join("lnbits").exists().then_some(dir)
}

/// Starts LNbits, or explains why it cannot (and fails if CI expects it).
pub async fn start() -> Option<Lnbits> {
    let Some(venv) = venv() else {
        let why = "LNbits is not installed: run .ci/run once, or set RAYO_TEST_LNBITS_VENV to a virtualenv with lnbits==1.6.2";
        super::skip_unless_ci(why);
        return None;
    };
    // The one port here not handed over as a socket: LNbits binds its own (its launcher
    // takes a host and a port, and restarts itself once). The OS picks a free one; if another
    // process took it in between, LNbits fails to start and the test says so.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut lnbits = Lnbits {
        child: None,
        url: format!("http://127.0.0.1:{port}"),
        payee_invoice_key: String::new(),
        payer_admin_key: String::new(),
        venv,
        data: tempfile::tempdir().unwrap(),
        port,
    };
    lnbits.launch(None).await;
    // Crediting a balance needs a super user, which LNbits only takes from its environment.
    let token = lnbits.post("/api/v1/auth/register", None, json!({"username": "rayotest", "password": "rayo-pass-1", "password_repeat": "rayo-pass-1"})).await["access_token"].as_str().unwrap().to_owned();
    let me = reqwest::Client::new()
        .get(format!("{}/api/v1/auth", lnbits.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let user_id = me.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    lnbits.stop();
    lnbits.launch(Some(&user_id)).await;
    let token = lnbits
        .post(
            "/api/v1/auth",
            None,
            json!({"username": "rayotest", "password": "rayo-pass-1"}),
        )
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let payee = lnbits
        .post("/api/v1/wallet", Some(&token), json!({"name": "payee"}))
        .await;
    let payer = lnbits
        .post("/api/v1/wallet", Some(&token), json!({"name": "payer"}))
        .await;
    let credited = reqwest::Client::new()
        .put(format!("{}/users/api/v1/balance", lnbits.url))
        .bearer_auth(&token)
        .json(&json!({"id": payer["id"], "amount": 1_000_000}))
        .send()
        .await
        .unwrap();
    assert!(
        credited.status().is_success(),
        "crediting the payer: {}",
        credited.text().await.unwrap()
    );
    lnbits.payee_invoice_key = payee["inkey"].as_str().unwrap().to_owned();
    lnbits.payer_admin_key = payer["adminkey"].as_str().unwrap().to_owned();
    Some(lnbits)
}

impl Lnbits {
    async fn launch(&mut self, super_user: Option<&str>) {
        let python = self.venv.join("bin").join("python");
        let site = Command::new(&python)
            .args([
                "-c",
                "import lnbits, os; print(os.path.dirname(os.path.dirname(lnbits.__file__)))",
            ])
            .output()
            .expect("the virtualenv's python runs");
        let site = String::from_utf8(site.stdout).unwrap().trim().to_owned();
        let log = std::fs::File::create(self.data.path().join("lnbits.log")).unwrap();
        let mut command = Command::new(self.venv.join("bin").join("lnbits"));
        command
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            // LNbits mounts its static files relative to the working directory.
            .current_dir(site)
            .env("LNBITS_BACKEND_WALLET_CLASS", "FakeWallet")
            .env("LNBITS_ADMIN_UI", "false")
            .env("LNBITS_DATA_FOLDER", self.data.path())
            .env("LNBITS_EXTENSIONS_DEFAULT_INSTALL", "")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(id) = super_user {
            command.env("SUPER_USER", id);
        }
        // LNbits serves from a multiprocessing child: give it a process group to stop as one.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        self.child = Some(command.spawn().expect("LNbits starts"));
        let client = reqwest::Client::new();
        let healthy = super::poll_until(90, || async {
            let answer = client
                .get(format!("{}/api/v1/health", self.url))
                .send()
                .await
                .ok()?;
            answer.status().is_success().then_some(())
        })
        .await;
        if healthy.is_some() {
            return;
        }
        let log = std::fs::read_to_string(self.data.path().join("lnbits.log")).unwrap_or_default();
        panic!("LNbits did not come up on port {}:\n{log}", self.port);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn post(&self, path: &str, bearer: Option<&str>, body: Value) -> Value {
        let mut request = reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        assert!(status.is_success(), "LNbits {path}: {status} {body}");
        body
    }

    /// Pays `bolt11` from the funded payer wallet (an internal, instant payment).
    pub async fn pay(&self, bolt11: &str) -> Value {
        let answer = reqwest::Client::new()
            .post(format!("{}/api/v1/payments", self.url))
            .header("X-Api-Key", &self.payer_admin_key)
            .json(&json!({"out": true, "bolt11": bolt11}))
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        assert!(status.is_success(), "paying from LNbits: {status} {body}");
        body
    }
}

impl Drop for Lnbits {
    fn drop(&mut self) {
        self.stop();
    }
}
