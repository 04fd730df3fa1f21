//! In-process deSEC and Cloudflare DNS APIs, speaking their documented JSON: deSEC's RRsets
//! (`/domains/<domain>/rrsets/`, `Token` auth, bulk PATCH, TTL at least 3600) and Cloudflare's
//! DNS records (`/zones/<id>/dns_records`, `Bearer` auth, `{success, errors, result,
//! result_info}`, paged). Each can fail its next requests (503), refuse the token (401/403),
//! or hang, and a test can change what it holds behind rayo's back (drift).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

#[derive(Default)]
struct Misbehaviour {
    /// The next this many requests answer 503.
    failing: u32,
    /// The next this many requests hang for 5 s first.
    hanging: u32,
    refusing: bool,
    requests: u32,
}

impl Misbehaviour {
    /// What to do with the next request: `Some(answer)` short-circuits it.
    async fn apply(state: &Mutex<Misbehaviour>, refused: HttpResponse) -> Option<HttpResponse> {
        let (hang, fail, refuse) = {
            let mut m = state.lock().unwrap();
            m.requests += 1;
            let hang = m.hanging > 0;
            m.hanging = m.hanging.saturating_sub(1);
            let fail = !hang && m.failing > 0;
            if fail {
                m.failing -= 1;
            }
            (hang, fail, m.refusing)
        };
        if hang {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        if refuse {
            return Some(refused);
        }
        fail.then(|| HttpResponse::ServiceUnavailable().body("upstream overloaded"))
    }
}

fn serve<F>(configure: F) -> String
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || App::new().configure(configure.clone()))
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}")
}

/// Splits a zone-file TXT record (`"a" "b"`) into its strings; `None` if it is not one, or a
/// string is longer than 255 bytes (as both hosts refuse).
fn txt_strings(record: &str) -> Option<Vec<String>> {
    let mut strings = Vec::new();
    let mut rest = record.trim();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('"')?;
        let end = inner.find('"')?;
        let s = &inner[..end];
        if s.len() > 255 {
            return None;
        }
        strings.push(s.to_owned());
        rest = inner[end + 1..].trim_start();
    }
    (!strings.is_empty()).then_some(strings)
}

// deSEC

struct Desec {
    token: String,
    domain: String,
    /// TXT RRsets by subname: (ttl, records in zone-file form).
    rrsets: BTreeMap<String, (u32, Vec<String>)>,
}

#[derive(Clone)]
pub struct FakeDesec {
    pub url: String,
    state: Arc<Mutex<Desec>>,
    misbehaviour: Arc<Mutex<Misbehaviour>>,
}

impl FakeDesec {
    pub fn start(token: &str, domain: &str) -> Self {
        let state = Arc::new(Mutex::new(Desec {
            token: token.into(),
            domain: domain.into(),
            rrsets: BTreeMap::new(),
        }));
        let misbehaviour = Arc::new(Mutex::new(Misbehaviour::default()));
        let (s, m) = (state.clone(), misbehaviour.clone());
        let base = serve(move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(web::Data::new(s.clone()))
                .app_data(web::Data::new(m.clone()))
                .route(
                    "/api/v1/domains/{domain}/rrsets/",
                    web::get().to(desec_list),
                )
                .route(
                    "/api/v1/domains/{domain}/rrsets/",
                    web::patch().to(desec_patch),
                );
        });
        Self {
            url: format!("{base}/api/v1"),
            state,
            misbehaviour,
        }
    }

    /// Each TXT RRset: subname to its records, joined.
    pub fn records(&self) -> BTreeMap<String, Vec<String>> {
        let state = self.state.lock().unwrap();
        state
            .rrsets
            .iter()
            .map(|(sub, (_, records))| {
                let joined = records
                    .iter()
                    .map(|r| txt_strings(r).unwrap_or_default().concat())
                    .collect();
                (sub.clone(), joined)
            })
            .collect()
    }

    /// Sets an RRset behind rayo's back (`records` in zone-file form; none: removed).
    pub fn set(&self, subname: &str, records: &[&str]) {
        let mut state = self.state.lock().unwrap();
        if records.is_empty() {
            state.rrsets.remove(subname);
        } else {
            state.rrsets.insert(
                subname.into(),
                (3600, records.iter().map(|r| r.to_string()).collect()),
            );
        }
    }

    pub fn fail_next(&self, n: u32) {
        self.misbehaviour.lock().unwrap().failing = n;
    }

    pub fn hang_next(&self, n: u32) {
        self.misbehaviour.lock().unwrap().hanging = n;
    }

    pub fn refuse(&self, refusing: bool) {
        self.misbehaviour.lock().unwrap().refusing = refusing;
    }

    pub fn requests(&self) -> u32 {
        self.misbehaviour.lock().unwrap().requests
    }
}

type DesecState = web::Data<Arc<Mutex<Desec>>>;
type Misbehaving = web::Data<Arc<Mutex<Misbehaviour>>>;

fn desec_allowed(req: &HttpRequest, state: &Desec, domain: &str) -> Option<HttpResponse> {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Token "));
    if token != Some(state.token.as_str()) {
        return Some(HttpResponse::Unauthorized().json(json!({"detail": "Invalid token."})));
    }
    if domain != state.domain {
        return Some(HttpResponse::NotFound().json(json!({"detail": "Not found."})));
    }
    None
}

async fn desec_list(
    req: HttpRequest,
    domain: web::Path<String>,
    state: DesecState,
    misbehaviour: Misbehaving,
) -> HttpResponse {
    let refused = HttpResponse::Unauthorized().json(json!({"detail": "Invalid token."}));
    if let Some(answer) = Misbehaviour::apply(&misbehaviour, refused).await {
        return answer;
    }
    let state = state.lock().unwrap();
    if let Some(answer) = desec_allowed(&req, &state, &domain) {
        return answer;
    }
    let sets: Vec<Value> = state
        .rrsets
        .iter()
        .map(|(sub, (ttl, records))| {
            json!({"domain": state.domain, "subname": sub, "name": format!("{sub}.{}.", state.domain), "type": "TXT", "ttl": ttl, "records": records, "created": "2026-12-07T00:00:00Z", "touched": "2026-12-07T00:00:00Z"})
        })
        .collect();
    HttpResponse::Ok().json(sets)
}

async fn desec_patch(
    req: HttpRequest,
    domain: web::Path<String>,
    state: DesecState,
    misbehaviour: Misbehaving,
    body: web::Json<Vec<Value>>,
) -> HttpResponse {
    let refused = HttpResponse::Unauthorized().json(json!({"detail": "Invalid token."}));
    if let Some(answer) = Misbehaviour::apply(&misbehaviour, refused).await {
        return answer;
    }
    let mut state = state.lock().unwrap();
    if let Some(answer) = desec_allowed(&req, &state, &domain) {
        return answer;
    }
    // Checked whole before anything changes, as deSEC's bulk requests are atomic.
    for set in body.iter() {
        let records: Vec<&str> = set["records"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if set["type"] != "TXT" || set["subname"].as_str().is_none() {
            return HttpResponse::BadRequest().json(json!([{"type": ["This field is required."]}]));
        }
        if !records.is_empty() && set["ttl"].as_u64().unwrap_or(0) < 3600 {
            return HttpResponse::BadRequest()
                .json(json!([{"ttl": ["Ensure this value is greater than or equal to 3600."]}]));
        }
        if records.iter().any(|r| txt_strings(r).is_none()) {
            return HttpResponse::BadRequest().json(json!([{"records": ["Invalid TXT record."]}]));
        }
    }
    let mut changed = Vec::new();
    for set in body.iter() {
        let sub = set["subname"].as_str().unwrap().to_owned();
        let records: Vec<String> = set["records"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if records.is_empty() {
            state.rrsets.remove(&sub);
        } else {
            let ttl = set["ttl"].as_u64().unwrap() as u32;
            changed.push(json!({"subname": sub, "type": "TXT", "ttl": ttl, "records": records}));
            state.rrsets.insert(sub, (ttl, records));
        }
    }
    HttpResponse::Ok().json(changed)
}

// Cloudflare

struct Cloudflare {
    token: String,
    zone_id: String,
    /// Records by id: (type, name, content, ttl).
    records: BTreeMap<String, (String, String, String, u32)>,
    next_id: u32,
}

#[derive(Clone)]
pub struct FakeCloudflare {
    pub url: String,
    state: Arc<Mutex<Cloudflare>>,
    misbehaviour: Arc<Mutex<Misbehaviour>>,
}

/// Records per page, whatever the client asks: small, so listing takes several pages.
const PAGE: usize = 2;

impl FakeCloudflare {
    pub fn start(token: &str, zone_id: &str) -> Self {
        let state = Arc::new(Mutex::new(Cloudflare {
            token: token.into(),
            zone_id: zone_id.into(),
            records: BTreeMap::new(),
            next_id: 1,
        }));
        let misbehaviour = Arc::new(Mutex::new(Misbehaviour::default()));
        let (s, m) = (state.clone(), misbehaviour.clone());
        let base = serve(move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(web::Data::new(s.clone()))
                .app_data(web::Data::new(m.clone()))
                .route(
                    "/client/v4/zones/{zone}/dns_records",
                    web::get().to(cf_list),
                )
                .route(
                    "/client/v4/zones/{zone}/dns_records",
                    web::post().to(cf_create),
                )
                .route(
                    "/client/v4/zones/{zone}/dns_records/{id}",
                    web::put().to(cf_replace),
                )
                .route(
                    "/client/v4/zones/{zone}/dns_records/{id}",
                    web::delete().to(cf_delete),
                );
        });
        Self {
            url: format!("{base}/client/v4"),
            state,
            misbehaviour,
        }
    }

    /// Each TXT record: name to its strings joined.
    pub fn records(&self) -> Vec<(String, String)> {
        let state = self.state.lock().unwrap();
        let mut all: Vec<(String, String)> = state
            .records
            .values()
            .filter(|(kind, ..)| kind == "TXT")
            .map(|(_, name, content, _)| {
                (
                    name.clone(),
                    txt_strings(content)
                        .map(|s| s.concat())
                        .unwrap_or(content.clone()),
                )
            })
            .collect();
        all.sort();
        all
    }

    /// Adds a record behind rayo's back; returns its id.
    pub fn add(&self, kind: &str, name: &str, content: &str) -> String {
        let mut state = self.state.lock().unwrap();
        let id = format!("{:032x}", state.next_id);
        state.next_id += 1;
        state
            .records
            .insert(id.clone(), (kind.into(), name.into(), content.into(), 1));
        id
    }

    /// Changes or removes (`None`) the TXT record of `name` behind rayo's back.
    pub fn tamper(&self, name: &str, content: Option<&str>) {
        let mut state = self.state.lock().unwrap();
        let id = state
            .records
            .iter()
            .find(|(_, (kind, n, ..))| kind == "TXT" && n == name)
            .map(|(id, _)| id.clone())
            .expect("the record exists");
        match content {
            Some(content) => state.records.get_mut(&id).unwrap().2 = content.into(),
            None => {
                state.records.remove(&id);
            }
        }
    }

    pub fn fail_next(&self, n: u32) {
        self.misbehaviour.lock().unwrap().failing = n;
    }

    pub fn refuse(&self, refusing: bool) {
        self.misbehaviour.lock().unwrap().refusing = refusing;
    }
}

type CfState = web::Data<Arc<Mutex<Cloudflare>>>;

fn cf_error(status: u16, code: u32, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(
        json!({"success": false, "errors": [{"code": code, "message": message}], "messages": [], "result": null}),
    )
}

fn cf_refused() -> HttpResponse {
    cf_error(403, 10000, "Authentication error")
}

fn cf_allowed(req: &HttpRequest, state: &Cloudflare, zone: &str) -> Option<HttpResponse> {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if token != Some(state.token.as_str()) {
        return Some(cf_refused());
    }
    if zone != state.zone_id {
        return Some(cf_error(
            404,
            7003,
            "Could not route to /zones/..., perhaps your object identifier is invalid?",
        ));
    }
    None
}

fn cf_record(id: &str, r: &(String, String, String, u32)) -> Value {
    json!({"id": id, "type": r.0, "name": r.1, "content": r.2, "ttl": r.3, "proxied": false, "proxiable": false})
}

fn cf_ok(result: Value) -> HttpResponse {
    HttpResponse::Ok()
        .json(json!({"success": true, "errors": [], "messages": [], "result": result}))
}

async fn cf_list(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<BTreeMap<String, String>>,
    state: CfState,
    misbehaviour: Misbehaving,
) -> HttpResponse {
    if let Some(answer) = Misbehaviour::apply(&misbehaviour, cf_refused()).await {
        return answer;
    }
    let state = state.lock().unwrap();
    if let Some(answer) = cf_allowed(&req, &state, &path) {
        return answer;
    }
    let matching: Vec<Value> = state
        .records
        .iter()
        .filter(|(_, r)| query.get("type").is_none_or(|t| *t == r.0))
        .filter(|(_, r)| {
            query
                .get("name.endswith")
                .is_none_or(|end| r.1.ends_with(end.as_str()))
        })
        .map(|(id, r)| cf_record(id, r))
        .collect();
    let page: usize = query
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let total_pages = matching.len().div_ceil(PAGE).max(1);
    let result: Vec<Value> = matching
        .iter()
        .skip((page - 1) * PAGE)
        .take(PAGE)
        .cloned()
        .collect();
    HttpResponse::Ok().json(json!({
        "success": true, "errors": [], "messages": [], "result": result,
        "result_info": {"page": page, "per_page": PAGE, "count": result.len(), "total_count": matching.len(), "total_pages": total_pages}
    }))
}

/// A record to create or replace, as Cloudflare checks it: `Err` is the error to answer.
fn cf_checked(body: &Value) -> Result<(String, String, u32), (u32, &'static str)> {
    let invalid = (9005, "Content for TXT record is invalid.");
    let (Some("TXT"), Some(name), Some(content)) = (
        body["type"].as_str(),
        body["name"].as_str(),
        body["content"].as_str(),
    ) else {
        return Err(invalid);
    };
    if txt_strings(content).is_none() {
        return Err(invalid);
    }
    let ttl = body["ttl"].as_u64().unwrap_or(1) as u32;
    if ttl != 1 && !(30..=86400).contains(&ttl) {
        return Err((
            9021,
            "Invalid TTL. Must be between 30 and 86400 seconds, or 1 for Automatic.",
        ));
    }
    Ok((name.to_owned(), content.to_owned(), ttl))
}

async fn cf_create(
    req: HttpRequest,
    path: web::Path<String>,
    state: CfState,
    misbehaviour: Misbehaving,
    body: web::Json<Value>,
) -> HttpResponse {
    if let Some(answer) = Misbehaviour::apply(&misbehaviour, cf_refused()).await {
        return answer;
    }
    let mut state = state.lock().unwrap();
    if let Some(answer) = cf_allowed(&req, &state, &path) {
        return answer;
    }
    let (name, content, ttl) = match cf_checked(&body) {
        Ok(checked) => checked,
        Err((code, message)) => return cf_error(400, code, message),
    };
    let id = format!("{:032x}", state.next_id);
    state.next_id += 1;
    let record = ("TXT".to_owned(), name, content, ttl);
    let answer = cf_record(&id, &record);
    state.records.insert(id, record);
    cf_ok(answer)
}

async fn cf_replace(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: CfState,
    misbehaviour: Misbehaving,
    body: web::Json<Value>,
) -> HttpResponse {
    if let Some(answer) = Misbehaviour::apply(&misbehaviour, cf_refused()).await {
        return answer;
    }
    let (zone, id) = path.into_inner();
    let mut state = state.lock().unwrap();
    if let Some(answer) = cf_allowed(&req, &state, &zone) {
        return answer;
    }
    let (name, content, ttl) = match cf_checked(&body) {
        Ok(checked) => checked,
        Err((code, message)) => return cf_error(400, code, message),
    };
    let Some(record) = state.records.get_mut(&id) else {
        return cf_error(404, 81044, "Record does not exist.");
    };
    *record = ("TXT".to_owned(), name, content, ttl);
    let answer = cf_record(&id, record);
    cf_ok(answer)
}

async fn cf_delete(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: CfState,
    misbehaviour: Misbehaving,
) -> HttpResponse {
    if let Some(answer) = Misbehaviour::apply(&misbehaviour, cf_refused()).await {
        return answer;
    }
    let (zone, id) = path.into_inner();
    let mut state = state.lock().unwrap();
    if let Some(answer) = cf_allowed(&req, &state, &zone) {
        return answer;
    }
    match state.records.remove(&id) {
        Some(_) => cf_ok(json!({"id": id})),
        None => cf_error(404, 81044, "Record does not exist."),
    }
}
