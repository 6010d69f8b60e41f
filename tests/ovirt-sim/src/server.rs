//! The HTTP side: SSO, authentication, the API under /ovirt-engine/api (search, max, follow,
//! all_content, JSON or XML), injected faults and the /sim admin endpoints.

use crate::index::Index;
use crate::objects::{self, API, BuildOpts, Ent, Followed};
use crate::tree::{self, Node, Obj, RenderOpts};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Faults, set from the command line and changed at runtime with POST /sim/faults.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Faults {
    /// Added to every request under /ovirt-engine.
    pub latency_ms: u64,
    /// Share of requests answered 500 or 503 with a fault body.
    pub fail_rate: f64,
    /// Share of requests whose connection is closed without an answer.
    pub drop_rate: f64,
    /// Share of requests delayed by `slow_ms` more.
    pub slow_rate: f64,
    pub slow_ms: u64,
    /// Share of answers cut in half (an invalid document).
    pub malformed_rate: f64,
    /// Requests whose path contains this are always answered with a truncated body.
    pub malformed_path: Option<String>,
    /// Requests whose path contains this always fail with 500.
    pub fail_path: Option<String>,
    /// Added to the API summary's VM total: as if VMs were created (or, negative, removed) while a
    /// client read the list.
    pub vm_total_skew: i64,
}

pub struct Config {
    pub legacy_numbers: bool,
    pub token_ttl: Option<Duration>,
    pub faults: Faults,
    pub seed: u64,
}

#[derive(Default)]
struct Counts {
    total: u64,
    by_path: BTreeMap<String, u64>,
    /// API requests answered 401 (no, unknown or expired credentials).
    unauthorized: u64,
}

pub struct AppState {
    ix: Index,
    render: RenderOpts,
    token_ttl: Option<Duration>,
    /// Each token's expiry (the `exp` it was given, wall-clock ms), if it expires: one clock
    /// for what the client is told and what the server enforces.
    tokens: Mutex<HashMap<String, Option<i64>>>,
    counts: Mutex<Counts>,
    faults: Mutex<Faults>,
    rng: Mutex<ChaCha8Rng>,
}

/// The panic message that means "close this connection without answering"; the panic hook
/// installed by `run` keeps it off stderr.
pub const DROP_MARK: &str = "ovirt-sim: dropping the connection (injected fault)";

pub fn state(ix: Index, config: Config) -> Arc<AppState> {
    let offset = ix
        .world
        .engine
        .utc_offset
        .as_deref()
        .and_then(tree::parse_offset)
        .unwrap_or(jiff::tz::Offset::UTC);
    Arc::new(AppState {
        render: RenderOpts {
            legacy_numbers: config.legacy_numbers,
            offset,
        },
        ix,
        token_ttl: config.token_ttl,
        tokens: Mutex::new(HashMap::new()),
        counts: Mutex::new(Counts::default()),
        faults: Mutex::new(config.faults),
        rng: Mutex::new(ChaCha8Rng::seed_from_u64(config.seed)),
    })
}

pub fn router(state: Arc<AppState>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn handle(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path == "/sim" || path.starts_with("/sim/") {
        return admin(&st, req).await;
    }
    {
        let mut c = st.counts.lock().unwrap();
        c.total += 1;
        *c.by_path.entry(path.clone()).or_insert(0) += 1;
    }
    let faults = st.faults.lock().unwrap().clone();
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    let (drop, fail, slow, malformed, status_503) = {
        let mut rng = st.rng.lock().unwrap();
        (
            rng.random_bool(faults.drop_rate.clamp(0.0, 1.0)),
            rng.random_bool(faults.fail_rate.clamp(0.0, 1.0)),
            rng.random_bool(faults.slow_rate.clamp(0.0, 1.0)),
            rng.random_bool(faults.malformed_rate.clamp(0.0, 1.0)),
            rng.random_bool(0.5),
        )
    };
    if drop {
        // Unwinding the connection task closes the socket with no answer at all.
        std::panic::panic_any(DROP_MARK);
    }
    let json = wants_json(req.headers());
    let fail = fail
        || faults
            .fail_path
            .as_deref()
            .is_some_and(|p| path.contains(p));
    if fail {
        let status = if status_503 {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        return fault(
            &st,
            json,
            status,
            "Operation Failed",
            "[Internal Engine Error] (injected by ovirt-sim)",
        );
    }
    if slow && faults.slow_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.slow_ms)).await;
    }
    let response = route(&st, req, &path, json).await;
    let malformed = malformed
        || faults
            .malformed_path
            .as_deref()
            .is_some_and(|p| path.contains(p));
    if malformed {
        truncate(response).await
    } else {
        response
    }
}

async fn truncate(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let cut = bytes.slice(0..bytes.len() / 2);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(cut.len()));
    Response::from_parts(parts, Body::from(cut))
}

fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    match (
        accept.find("application/json"),
        accept.find("application/xml"),
    ) {
        (Some(j), Some(x)) => j < x,
        (Some(_), None) => true,
        _ => false,
    }
}

fn respond(status: StatusCode, content_type: &str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap(),
    );
    r
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    respond(status, "application/json", value.to_string())
}

fn render(st: &AppState, json: bool, root_name: &str, obj: &Obj, status: StatusCode) -> Response {
    if json {
        respond(status, "application/json", tree::to_json(obj, &st.render))
    } else {
        respond(
            status,
            "application/xml;charset=UTF-8",
            tree::to_xml(root_name, obj, &st.render),
        )
    }
}

fn fault(st: &AppState, json: bool, status: StatusCode, reason: &str, detail: &str) -> Response {
    let mut o = Obj::new();
    o.s("reason", reason).s("detail", detail);
    render(st, json, "fault", &o, status)
}

fn not_found() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

async fn route(st: &AppState, req: Request, path: &str, json: bool) -> Response {
    let method = req.method().clone();
    match (method.clone(), path) {
        (Method::POST, "/ovirt-engine/sso/oauth/token") => sso_token(st, req).await,
        (Method::POST, "/ovirt-engine/services/sso-logout") => sso_logout(st, req).await,
        (Method::GET | Method::HEAD, p)
            if p == API
                || p.starts_with("/ovirt-engine/api/")
                || p.starts_with("/ovirt-engine/api;") =>
        {
            api(st, &req, json)
        }
        (_, p) if p.starts_with("/ovirt-engine/api") => fault(
            st,
            json,
            StatusCode::METHOD_NOT_ALLOWED,
            "Operation Failed",
            "ovirt-sim serves reads only",
        ),
        _ => not_found(),
    }
}

fn form(body: &Bytes) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn sso_error(scope: &str, code: &str, message: &str) -> Response {
    // The engine's two error shapes: ovirt-app-api clients get error_code/error.
    let body = if scope == "ovirt-app-api" {
        serde_json::json!({"error_code": code, "error": message})
    } else {
        serde_json::json!({"error": code, "error_description": message})
    };
    json_response(StatusCode::BAD_REQUEST, &body)
}

async fn sso_token(st: &AppState, req: Request) -> Response {
    let accept_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let f = form(&body);
    let scope = f.get("scope").map(String::as_str).unwrap_or("");
    if !accept_json {
        return sso_error(
            scope,
            "invalid_request",
            "Missing parameter: 'Accept Header'",
        );
    }
    match f.get("grant_type").map(String::as_str) {
        Some("password") => {}
        Some(_) => {
            return sso_error(
                scope,
                "unsupported_grant_type",
                "The provided authorization grant is not supported.",
            );
        }
        None => return sso_error(scope, "invalid_request", "Missing parameter: 'grant_type'"),
    }
    if scope.is_empty() {
        return sso_error(scope, "invalid_request", "Missing parameter: 'scope'");
    }
    let user = f.get("username").cloned().unwrap_or_default();
    let password = f.get("password").cloned().unwrap_or_default();
    if !st
        .ix
        .world
        .engine
        .credentials
        .iter()
        .any(|c| c.user == user && c.password == password)
    {
        return sso_error(
            scope,
            "access_denied",
            &format!("Cannot authenticate user '{user}': The username or password is incorrect.."),
        );
    }
    let mut raw = [0u8; 48];
    st.rng.lock().unwrap().fill_bytes(&mut raw);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let (expires, exp) = match st.token_ttl {
        Some(ttl) => {
            let exp = now_ms() + ttl.as_millis() as i64;
            (Some(exp), exp.to_string())
        }
        None => (None, i64::MAX.to_string()),
    };
    st.tokens.lock().unwrap().insert(token.clone(), expires);
    json_response(
        StatusCode::OK,
        &serde_json::json!({"access_token": token, "scope": scope, "exp": exp, "token_type": "bearer"}),
    )
}

async fn sso_logout(st: &AppState, req: Request) -> Response {
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let f = form(&body);
    if let Some(t) = f.get("token") {
        st.tokens.lock().unwrap().remove(t);
    }
    json_response(StatusCode::OK, &serde_json::json!({}))
}

fn authenticated(st: &AppState, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    if let Some(token) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
    {
        let tokens = st.tokens.lock().unwrap();
        return match tokens.get(token.trim()) {
            Some(None) => true,
            Some(Some(expires)) => now_ms() < *expires,
            None => false,
        };
    }
    if let Some(b64) = value.strip_prefix("Basic ") {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
            return false;
        };
        let raw = String::from_utf8_lossy(&raw);
        let Some((user, password)) = raw.split_once(':') else {
            return false;
        };
        return st
            .ix
            .world
            .engine
            .credentials
            .iter()
            .any(|c| c.user == user && c.password == password);
    }
    false
}

fn unauthorized() -> Response {
    let mut r = respond(
        StatusCode::UNAUTHORIZED,
        "text/html;charset=UTF-8",
        "<html><head><title>Error</title></head><body>Unauthorized</body></html>",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"RESTAPI\""),
    );
    r
}

/// Query, header and matrix parameters of one API request.
#[derive(Default)]
struct Params {
    search: Option<String>,
    max: Option<usize>,
    follow: Vec<String>,
    all_content: bool,
    case_sensitive: bool,
}

fn api(st: &AppState, req: &Request, json: bool) -> Response {
    let headers = req.headers();
    if !authenticated(st, headers) {
        st.counts.lock().unwrap().unauthorized += 1;
        return unauthorized();
    }
    if let Some(v) = headers.get("version").and_then(|v| v.to_str().ok())
        && v.trim() != "4"
    {
        return fault(
            st,
            json,
            StatusCode::BAD_REQUEST,
            "Bad Request",
            &format!("Version \"{v}\" is not supported"),
        );
    }
    let (segments, matrix) = match path_segments(st, req, json) {
        Ok(parsed) => parsed,
        Err(response) => return *response,
    };
    let p = match params(st, req, json, &matrix) {
        Ok(p) => p,
        Err(response) => return *response,
    };
    let ix = &st.ix;
    if segments.is_empty() {
        return render(
            st,
            json,
            "api",
            &objects::api_root(ix, now_ms(), st.faults.lock().unwrap().vm_total_skew),
            StatusCode::OK,
        );
    }
    // Walk the path: collection, id, link, id, ...
    let Some(current) = objects::root_collection(ix, &segments[0]) else {
        return not_found();
    };
    let Some((current, element, at_root)) = walk(ix, &segments, current) else {
        return not_found();
    };
    answer(st, json, current, element, at_root, &p)
}

/// The path under the API, decoded: its segments (a leading `v4` dropped, any other version
/// refused) and its matrix parameters.
type PathParts = (Vec<String>, Vec<(String, String)>);

fn path_segments(st: &AppState, req: &Request, json: bool) -> Result<PathParts, Box<Response>> {
    let rest = req.uri().path().strip_prefix(API).unwrap_or("");
    let mut segments: Vec<String> = Vec::new();
    let mut matrix: Vec<(String, String)> = Vec::new();
    for raw in rest.split('/') {
        let mut pieces = raw.split(';');
        let name = pieces.next().unwrap_or("");
        for m in pieces {
            let (k, v) = m.split_once('=').unwrap_or((m, ""));
            matrix.push((k.to_string(), v.to_string()));
        }
        if !name.is_empty() {
            segments.push(percent_decode(name));
        }
    }
    if let Some(first) = segments.first()
        && first.len() > 1
        && first.starts_with('v')
        && first[1..].chars().all(|c| c.is_ascii_digit())
    {
        if first != "v4" {
            return Err(Box::new(fault(
                st,
                json,
                StatusCode::BAD_REQUEST,
                "Bad Request",
                &format!("Version \"{}\" is not supported", &first[1..]),
            )));
        }
        segments.remove(0);
    }
    Ok((segments, matrix))
}

/// The query's and the matrix's parameters, and the `All-Content` header.
fn params(
    st: &AppState,
    req: &Request,
    json: bool,
    matrix: &[(String, String)],
) -> Result<Params, Box<Response>> {
    let mut p = Params::default();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    for (k, v) in query.iter().chain(matrix.iter()) {
        match k.as_str() {
            "search" => p.search = Some(v.clone()),
            "max" => match v.trim().parse::<i64>() {
                Ok(n) if n >= 0 => p.max = Some(n as usize),
                Ok(_) => {}
                Err(_) => {
                    return Err(Box::new(fault(
                        st,
                        json,
                        StatusCode::BAD_REQUEST,
                        "Invalid value",
                        &format!("Value \"{v}\" of parameter \"max\" isn't a valid integer"),
                    )));
                }
            },
            "follow" => p.follow.extend(
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
            ),
            "all_content" => p.all_content = v.eq_ignore_ascii_case("true"),
            "case_sensitive" => p.case_sensitive = v.eq_ignore_ascii_case("true"),
            _ => {}
        }
    }
    if req
        .headers()
        .get("all-content")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        p.all_content = true;
    }
    Ok(p)
}

/// Follows the path's ids and links from its root collection: where it leads, the element
/// name of what it names there, and whether it stayed at the root collection. None: no such
/// object or link.
fn walk(
    ix: &Index,
    segments: &[String],
    mut current: Followed,
) -> Option<(Followed, &'static str, bool)> {
    let mut element = "";
    let mut at_root = true;
    let mut i = 1;
    while i < segments.len() {
        let id = &segments[i];
        let ent = match &current {
            Followed::Many {
                singular, items, ..
            } => {
                element = *singular;
                let found = if at_root {
                    root_lookup(ix, &segments[0], id)
                } else {
                    None
                };
                match found.or_else(|| items.iter().find(|e| objects::id_of(ix, e) == *id).copied())
                {
                    Some(e) if items.contains(&e) || at_root => e,
                    _ => return None,
                }
            }
            Followed::One(_) => return None,
        };
        at_root = false;
        current = Followed::One(ent);
        if let Some(link) = segments.get(i + 1) {
            let (member, _) = objects::link_members(&ent)
                .iter()
                .find(|(m, _)| objects::rel(m) == *link)?;
            match objects::follow(ix, &ent, member) {
                Some(f @ Followed::Many { .. }) => current = f,
                _ => return None,
            }
        }
        i += 2;
    }
    Some((current, element, at_root))
}

/// The object or collection the path leads to, with `follow` and, at the root, `search`.
fn answer(
    st: &AppState,
    json: bool,
    current: Followed,
    element: &str,
    at_root: bool,
    p: &Params,
) -> Response {
    let ix = &st.ix;
    let build_opts = BuildOpts {
        all_content: p.all_content,
    };
    let follow_paths: Vec<Vec<&str>> = p.follow.iter().map(|f| f.split('.').collect()).collect();
    match current {
        Followed::One(ent) => {
            let mut obj = objects::build(ix, &ent, build_opts);
            if let Err(m) = apply_follow(ix, &ent, &mut obj, &follow_paths, build_opts) {
                return fault(st, json, StatusCode::BAD_REQUEST, "Bad Request", &m);
            }
            render(st, json, element, &obj, StatusCode::OK)
        }
        Followed::Many {
            plural,
            singular,
            mut items,
        } => {
            if at_root && let Some(search) = &p.search {
                match apply_search(ix, &mut items, search, p.max, p.case_sensitive) {
                    Ok(()) => {}
                    Err(detail) => {
                        return fault(
                            st,
                            json,
                            StatusCode::BAD_REQUEST,
                            "Operation Failed",
                            &detail,
                        );
                    }
                }
            }
            if let Some(max) = p.max {
                items.truncate(max);
            }
            let mut nodes = Vec::with_capacity(items.len());
            for ent in &items {
                let mut obj = objects::build(ix, ent, build_opts);
                if let Err(m) = apply_follow(ix, ent, &mut obj, &follow_paths, build_opts) {
                    return fault(st, json, StatusCode::BAD_REQUEST, "Bad Request", &m);
                }
                nodes.push(Node::Obj(obj));
            }
            render(
                st,
                json,
                plural,
                &tree::collection(singular, nodes),
                StatusCode::OK,
            )
        }
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

fn root_lookup(ix: &Index, collection: &str, id: &str) -> Option<Ent> {
    let map = match collection {
        "vms" => &ix.vm,
        "disks" => &ix.disk,
        "clusters" => &ix.cluster,
        "datacenters" => &ix.dc,
        "hosts" => &ix.host,
        "networks" => &ix.network,
        "vnicprofiles" => &ix.profile,
        "storagedomains" => &ix.sd,
        "users" => &ix.user,
        "groups" => &ix.group,
        "tags" => &ix.tag,
        "roles" => return ix.role_by_id.get(id).map(|r| Ent::Role(*r)),
        "networkfilters" => {
            return ix.network_filter.get(id).map(|f| Ent::NetworkFilter(*f));
        }
        _ => return None,
    };
    let i = *map.get(id)?;
    Some(match collection {
        "vms" => Ent::Vm(i),
        "disks" => Ent::Disk(i),
        "clusters" => Ent::Cluster(i),
        "datacenters" => Ent::DataCenter(i),
        "hosts" => Ent::Host(i),
        "networks" => Ent::Network(i),
        "vnicprofiles" => Ent::VnicProfile(i),
        "storagedomains" => Ent::StorageDomain(i),
        "users" => Ent::User(i),
        "groups" => Ent::Group(i),
        _ => Ent::Tag(i),
    })
}

/// Refs that `follow` can replace with the whole object.
const REF_MEMBERS: &[&str] = &[
    "cluster",
    "host",
    "template",
    "original_template",
    "disk",
    "vm",
    "vnic_profile",
    "role",
    "user",
    "group",
    "network",
    "network_filter",
    "data_center",
    "tag",
    "storage_domains",
    "data_centers",
];

fn apply_follow(
    ix: &Index,
    ent: &Ent,
    obj: &mut Obj,
    paths: &[Vec<&str>],
    opts: BuildOpts,
) -> Result<(), String> {
    // Group by first segment, keeping the order of first appearance.
    let mut groups: Vec<(&str, Vec<Vec<&str>>)> = Vec::new();
    for path in paths {
        let Some((first, rest)) = path.split_first() else {
            continue;
        };
        let rest: Vec<&str> = rest.to_vec();
        match groups.iter_mut().find(|(f, _)| f == first) {
            Some((_, rests)) => {
                if !rest.is_empty() {
                    rests.push(rest)
                }
            }
            None => groups.push((first, if rest.is_empty() { vec![] } else { vec![rest] })),
        }
    }
    for (member, rests) in groups {
        let known_ref = REF_MEMBERS.iter().find(|m| **m == member);
        let is_link = objects::link_members(ent).iter().any(|(m, _)| *m == member);
        match objects::follow(ix, ent, member) {
            Some(Followed::Many {
                plural,
                singular,
                items,
            }) => {
                let mut nodes = Vec::with_capacity(items.len());
                for e in &items {
                    let mut o = objects::build(ix, e, opts);
                    apply_follow(ix, e, &mut o, &rests, opts)?;
                    nodes.push(Node::Obj(o));
                }
                obj.set(plural, Node::Obj(tree::collection(singular, nodes)));
            }
            Some(Followed::One(e)) => {
                let mut o = objects::build(ix, &e, opts);
                apply_follow(ix, &e, &mut o, &rests, opts)?;
                if let Some(name) = known_ref {
                    obj.set(name, Node::Obj(o));
                }
            }
            None if known_ref.is_some() || is_link => {}
            None => {
                return Err(format!(
                    "Can't follow link '{member}': no such link or attribute"
                ));
            }
        }
    }
    Ok(())
}

/// A parsed search: criteria joined by `and`, `sortby FIELD [asc|desc]`, `page N`.
fn apply_search(
    ix: &Index,
    items: &mut Vec<Ent>,
    search: &str,
    max: Option<usize>,
    case_sensitive: bool,
) -> Result<(), String> {
    let bad = || format!("[Cannot search: the search query \"{search}\" is invalid.]");
    // `name = x` and `name=x` are the same criterion.
    let mut normalized = search.trim().to_string();
    while normalized.contains(" =") || normalized.contains("= ") {
        normalized = normalized.replace(" =", "=").replace("= ", "=");
    }
    let tokens: Vec<String> = normalized.split_whitespace().map(str::to_string).collect();
    let mut criteria: Vec<(String, bool, String)> = Vec::new();
    let mut sort: Option<(String, bool)> = None;
    let mut page: Option<usize> = None;
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        let lower = t.to_ascii_lowercase();
        if lower == "and" {
            i += 1;
            continue;
        }
        if lower == "sortby" {
            let field = tokens.get(i + 1).ok_or_else(bad)?.to_ascii_lowercase();
            let mut desc = false;
            i += 2;
            if let Some(dir) = tokens.get(i).map(|d| d.to_ascii_lowercase())
                && (dir == "asc" || dir == "desc")
            {
                desc = dir == "desc";
                i += 1;
            }
            sort = Some((field, desc));
            continue;
        }
        if lower == "page" {
            let n = match tokens.get(i + 1) {
                Some(n) => n.parse::<usize>().map_err(|_| bad())?,
                None => 1,
            };
            page = Some(n.max(1));
            i += 2;
            continue;
        }
        if let Some((field, value)) = t.split_once("!=") {
            criteria.push((
                field.to_ascii_lowercase(),
                false,
                value.trim_matches('"').to_string(),
            ));
        } else if let Some((field, value)) = t.split_once('=') {
            criteria.push((
                field.to_ascii_lowercase(),
                true,
                value.trim_matches('"').to_string(),
            ));
        } else {
            return Err(bad());
        }
        i += 1;
    }
    for (field, _, _) in &criteria {
        if !matches!(
            field.as_str(),
            "name" | "status" | "cluster" | "datacenter" | "host"
        ) {
            return Err(format!(
                "[Cannot search: unknown field \"{field}\" in \"{search}\".]"
            ));
        }
    }
    if let Some((field, _)) = &sort
        && !matches!(field.as_str(), "name" | "status")
    {
        return Err(format!("[Cannot search: cannot sort by \"{field}\".]"));
    }
    items.retain(|e| {
        criteria.iter().all(|(field, eq, pattern)| {
            let value = field_value(ix, e, field);
            value.is_some_and(|v| glob(pattern, v, case_sensitive)) == *eq
        })
    });
    if let Some((field, desc)) = sort {
        items.sort_by(|a, b| {
            let va = field_value(ix, a, &field).unwrap_or("").to_lowercase();
            let vb = field_value(ix, b, &field).unwrap_or("").to_lowercase();
            if desc { vb.cmp(&va) } else { va.cmp(&vb) }
        });
    }
    if let Some(page) = page {
        let size = max.unwrap_or(usize::MAX);
        let skip = (page - 1).saturating_mul(size);
        if skip >= items.len() {
            items.clear();
        } else {
            items.drain(..skip);
        }
    }
    Ok(())
}

fn field_value<'a>(ix: &'a Index, e: &Ent, field: &str) -> Option<&'a str> {
    let w = &ix.world;
    match (field, e) {
        ("name", _) => Some(objects::name_of(ix, e)),
        ("status", _) => objects::status_of(ix, e),
        ("cluster", Ent::Vm(v)) => Some(&w.clusters[ix.cluster[&w.vms[*v].cluster]].name),
        ("cluster", Ent::Host(h)) => Some(&w.clusters[ix.cluster[&w.hosts[*h].cluster]].name),
        ("datacenter", Ent::Vm(v)) => Some(&w.data_centers[ix.vm_dc(*v)].name),
        ("datacenter", Ent::Cluster(c)) => Some(&w.data_centers[ix.cluster_dc[*c]].name),
        ("host", Ent::Vm(v)) => w.vms[*v]
            .host
            .as_ref()
            .and_then(|h| ix.host.get(h))
            .map(|h| w.hosts[*h].name.as_str()),
        _ => None,
    }
}

/// The engine's wildcard: `*` matches any run of characters.
pub fn glob(pattern: &str, value: &str, case_sensitive: bool) -> bool {
    let (p, v) = if case_sensitive {
        (pattern.to_string(), value.to_string())
    } else {
        (pattern.to_lowercase(), value.to_lowercase())
    };
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == v;
    }
    let mut rest = v.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    true
}

async fn admin(st: &AppState, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    match (method, path.as_str()) {
        (Method::GET, "/sim/requests") => {
            let c = st.counts.lock().unwrap();
            json_response(
                StatusCode::OK,
                &serde_json::json!({
                    "total": c.total,
                    "by_path": c.by_path,
                    "unauthorized": c.unauthorized,
                }),
            )
        }
        (Method::POST, "/sim/reset") => {
            *st.counts.lock().unwrap() = Counts::default();
            json_response(StatusCode::OK, &serde_json::json!({}))
        }
        (Method::GET, "/sim/faults") => {
            let f = st.faults.lock().unwrap().clone();
            json_response(StatusCode::OK, &serde_json::to_value(f).unwrap_or_default())
        }
        (Method::POST, "/sim/faults") => {
            let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            match serde_json::from_slice::<Faults>(&body) {
                Ok(f) => {
                    *st.faults.lock().unwrap() = f.clone();
                    json_response(StatusCode::OK, &serde_json::to_value(f).unwrap_or_default())
                }
                Err(e) => json_response(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({"error": e.to_string()}),
                ),
            }
        }
        _ => not_found(),
    }
}
