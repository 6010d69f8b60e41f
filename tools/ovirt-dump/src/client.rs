//! The engine's REST API over HTTP: SSO login and logout, GETs with bounded concurrency, retries
//! with backoff, one re-login on 401, and errors that name the URL. Credentials never reach a log.

use backon::{ExponentialBuilder, Retryable};
use common::{Error, ExitCode, Result};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, Semaphore};
use tracing::{debug, warn};

/// How to reach the engine.
pub struct Settings {
    /// The API URL, `https://engine/ovirt-engine/api`, without a trailing slash.
    pub api_url: String,
    pub user: String,
    pub password: String,
    /// PEM bundle of the CA(s) to trust instead of the system's.
    pub ca_pem: Option<Vec<u8>>,
    pub insecure: bool,
    pub timeout: Duration,
    pub retries: usize,
    pub concurrency: usize,
}

pub struct Engine {
    http: reqwest::Client,
    api_url: String,
    /// `scheme://host[:port]`, where SSO lives.
    origin: String,
    user: String,
    password: String,
    retries: usize,
    timeout: Duration,
    token: Mutex<Token>,
    permits: Semaphore,
    requests: AtomicU64,
}

#[derive(Default)]
struct Token {
    value: Option<String>,
    /// Bumped at every login, so that concurrent 401s lead to one re-login, not one each.
    generation: u64,
}

/// What went wrong with one HTTP exchange, before it becomes a user-facing error.
#[derive(Debug)]
enum Failure {
    Status(StatusCode, String),
    Transport(reqwest::Error),
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Status(status, _) => status.is_server_error(),
            Failure::Transport(err) => {
                tls_problem(err).is_none() && !err.is_builder() && !err.is_redirect()
            }
        }
    }
}

impl Engine {
    pub fn new(settings: Settings) -> Result<Self> {
        let url = url::Url::parse(&settings.api_url)
            .map_err(|e| Error::usage(format!("{}: not a valid URL: {e}", settings.api_url)))?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(Error::usage(format!(
                "{}: expected an http(s) URL of the engine's API",
                settings.api_url
            )));
        }
        let origin = url.origin().ascii_serialization();

        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert("Version", HeaderValue::from_static("4"));
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("ovirt-dump/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(30)))
            .pool_max_idle_per_host(settings.concurrency.max(1));
        if let Some(pem) = &settings.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                Error::config(format!("CA file: not a PEM certificate bundle: {e}"))
            })?;
            if certs.is_empty() {
                return Err(Error::config("CA file: no certificate in it"));
            }
            builder = builder.tls_certs_only(certs);
        }
        if settings.insecure {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(|e| {
            Error::new(
                ExitCode::Software,
                format!("cannot set up the HTTP client: {e}"),
            )
        })?;
        Ok(Engine {
            http,
            api_url: settings.api_url,
            origin,
            user: settings.user,
            password: settings.password,
            retries: settings.retries,
            timeout: settings.timeout,
            token: Mutex::new(Token::default()),
            permits: Semaphore::new(settings.concurrency.max(1)),
            requests: AtomicU64::new(0),
        })
    }

    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// HTTP requests sent so far (retries included).
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.retries)
    }

    /// Gets a token from the engine's SSO (password grant).
    pub async fn login(&self) -> Result<()> {
        let mut token = self.token.lock().await;
        self.login_locked(&mut token).await
    }

    async fn login_locked(&self, token: &mut Token) -> Result<()> {
        let token_url = format!("{}/ovirt-engine/sso/oauth/token", self.origin);
        let form = [
            ("grant_type", "password"),
            ("scope", "ovirt-app-api"),
            ("username", self.user.as_str()),
            ("password", self.password.as_str()),
        ];
        let exchange = || async {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let response = self
                .http
                .post(&token_url)
                .form(&form)
                .send()
                .await
                .map_err(Failure::Transport)?;
            let status = response.status();
            // Only the URL and status of auth calls are logged: their bodies carry secrets.
            debug!("POST {token_url} -> {}", status.as_u16());
            let body = response.text().await.map_err(Failure::Transport)?;
            if status.is_server_error() {
                return Err(Failure::Status(status, String::new()));
            }
            Ok((status, body))
        };
        let (status, body) = exchange
            .retry(self.backoff())
            .when(Failure::retryable)
            .notify(|failure, delay| retry_note(&token_url, failure, delay))
            .await
            .map_err(|failure| self.login_error(failure))?;

        let parsed: Option<Value> = serde_json::from_str(&body).ok();
        if status == StatusCode::OK {
            let access = parsed
                .as_ref()
                .and_then(|v| v.get("access_token"))
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    Error::protocol(format!(
                        "{}: login failed: the SSO answer has no access token",
                        self.api_url
                    ))
                })?;
            token.value = Some(access.to_string());
            token.generation += 1;
            return Ok(());
        }
        // SSO errors are HTTP 400 with {"error_code", "error"} (scope ovirt-app-api) or
        // {"error", "error_description"} (other scopes).
        let code = parsed.as_ref().and_then(|v| {
            if v.get("error_description").is_some() {
                v.get("error").and_then(Value::as_str)
            } else {
                v.get("error_code").and_then(Value::as_str)
            }
        });
        let prefix = format!("{}: login failed", self.api_url);
        Err(match code {
            Some("access_denied") => Error::no_perm(format!(
                "{prefix}: bad user or password (HTTP {} access_denied)",
                status.as_u16()
            )),
            Some(code) => Error::no_perm(format!(
                "{prefix}: the engine refused the login (HTTP {} {code})",
                status.as_u16()
            )),
            None if status == StatusCode::NOT_FOUND => Error::unavailable(format!(
                "{prefix}: no SSO service at {token_url} (HTTP 404)"
            )),
            None => Error::protocol(format!(
                "{prefix}: unexpected answer from {token_url} (HTTP {})",
                status.as_u16()
            )),
        })
    }

    fn login_error(&self, failure: Failure) -> Error {
        match failure {
            Failure::Status(status, _) => Error::unavailable(format!(
                "{}: login failed: HTTP {} after {} attempts",
                self.api_url,
                status_text(status),
                self.retries + 1
            )),
            Failure::Transport(err) => transport_error(&self.api_url, &err, self.timeout),
        }
    }

    /// Revokes the token (best effort: a failed logout only warns).
    pub async fn logout(&self) {
        let token = self.token.lock().await.value.take();
        let Some(token) = token else { return };
        let logout_url = format!("{}/ovirt-engine/services/sso-logout", self.origin);
        self.requests.fetch_add(1, Ordering::Relaxed);
        let form = [("scope", "ovirt-app-api"), ("token", token.as_str())];
        match self.http.post(&logout_url).form(&form).send().await {
            Ok(response) => debug!("POST {logout_url} -> {}", response.status().as_u16()),
            Err(err) => warn!(
                "{logout_url}: logout failed: {}",
                describe_transport(&err, self.timeout)
            ),
        }
    }

    /// GETs `path` (relative to the API URL, with its query) as JSON.
    /// `Ok(None)` when the engine answers 404 (an optional collection it does not have).
    pub async fn get_optional(&self, path: &str) -> Result<Option<Value>> {
        let url = format!("{}{}", self.api_url, path);
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::new(ExitCode::Software, "semaphore closed"))?;
        // One login of our own per request; a newer token from a concurrent re-login is simply
        // tried (a few times at most, for tokens that live shorter than a request).
        let mut relogged = false;
        let mut unauthorized = 0;
        loop {
            let (bearer, generation) = {
                let token = self.token.lock().await;
                (token.value.clone().unwrap_or_default(), token.generation)
            };
            let exchange = || async {
                self.requests.fetch_add(1, Ordering::Relaxed);
                let response = self
                    .http
                    .get(&url)
                    .header(AUTHORIZATION, format!("Bearer {bearer}"))
                    .send()
                    .await
                    .map_err(Failure::Transport)?;
                let status = response.status();
                debug!("GET {url} -> {}", status.as_u16());
                let body = response.bytes().await.map_err(Failure::Transport)?;
                if status.is_server_error() {
                    return Err(Failure::Status(status, fault_text(&body)));
                }
                Ok((status, body))
            };
            let (status, body) = exchange
                .retry(self.backoff())
                .when(Failure::retryable)
                .notify(|failure, delay| retry_note(&url, failure, delay))
                .await
                .map_err(|failure| match failure {
                    Failure::Status(status, fault) => Error::unavailable(format!(
                        "{url}: HTTP {}{} after {} attempts",
                        status_text(status),
                        fault,
                        self.retries + 1
                    )),
                    Failure::Transport(err) => transport_error(&url, &err, self.timeout),
                })?;
            match status {
                StatusCode::UNAUTHORIZED if unauthorized < 3 => {
                    unauthorized += 1;
                    let mut token = self.token.lock().await;
                    if token.generation != generation {
                        continue; // someone logged in again meanwhile: use that token
                    }
                    if relogged {
                        return Err(Error::no_perm(format!(
                            "{url}: HTTP 401 Unauthorized, even after logging in again"
                        )));
                    }
                    // The token expired (or was revoked): log in again, once.
                    relogged = true;
                    debug!("{url}: HTTP 401, logging in again");
                    self.login_locked(&mut token).await?;
                    continue;
                }
                StatusCode::UNAUTHORIZED => {
                    return Err(Error::no_perm(format!(
                        "{url}: HTTP 401 Unauthorized, even after logging in again"
                    )));
                }
                StatusCode::FORBIDDEN => {
                    return Err(Error::no_perm(format!(
                        "{url}: HTTP 403 Forbidden{}",
                        fault_text(&body)
                    )));
                }
                StatusCode::NOT_FOUND => return Ok(None),
                status if !status.is_success() => {
                    return Err(Error::protocol(format!(
                        "{url}: HTTP {}{}",
                        status_text(status),
                        fault_text(&body)
                    )));
                }
                _ => {}
            }
            let value: Value = serde_json::from_slice(&body).map_err(|e| {
                Error::protocol(format!(
                    "{url}: malformed response: not JSON ({})",
                    first_line(&e.to_string())
                ))
            })?;
            if !value.is_object() {
                return Err(Error::protocol(format!(
                    "{url}: malformed response: expected a JSON object"
                )));
            }
            return Ok(Some(value));
        }
    }

    /// GETs `path` as JSON; a 404 is an error.
    pub async fn get(&self, path: &str) -> Result<Value> {
        match self.get_optional(path).await? {
            Some(value) => Ok(value),
            // A URL without /ovirt-engine/api reaches the engine's web server, which answers
            // 404 to every API path: say which URL was most likely meant.
            None => Err(Error::unavailable(format!(
                "{}{}: HTTP 404 Not Found{}",
                self.api_url,
                path,
                common::cli::api_path_hint(&self.api_url).unwrap_or_default()
            ))),
        }
    }
}

fn retry_note(url: &str, failure: &Failure, delay: Duration) {
    let cause = match failure {
        Failure::Status(status, _) => format!("HTTP {}", status.as_u16()),
        Failure::Transport(err) => describe_transport(err, Duration::ZERO),
    };
    debug!("{url}: {cause}; retrying in {} ms", delay.as_millis());
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// The engine's fault `{"reason", "detail"}`, as ` (reason: detail)`, when the body is one.
fn fault_text(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let reason = value.get("reason").and_then(Value::as_str).unwrap_or("");
    let detail = value.get("detail").and_then(Value::as_str).unwrap_or("");
    let text = match (reason.is_empty(), detail.is_empty()) {
        (true, true) => return String::new(),
        (false, true) => reason.to_string(),
        (true, false) => detail.to_string(),
        (false, false) => format!("{reason}: {detail}"),
    };
    let text: String = text.chars().take(200).collect();
    format!(" ({})", text.trim())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// A TLS certificate problem somewhere in the error's causes, described.
fn tls_problem(err: &reqwest::Error) -> Option<String> {
    causes(err).into_iter().find_map(|cause| {
        cause
            .downcast_ref::<rustls::Error>()
            .map(ToString::to_string)
    })
}

/// The error and its causes, outermost first. io::Error hides its payload from `source()` (it
/// skips to the payload's source), so its payload is visited explicitly.
fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(err);
    while let Some(current) = next {
        out.push(current);
        next = match current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(payload) => Some(payload as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    out
}

/// The innermost useful cause of a transport error, on one line.
fn describe_transport(err: &reqwest::Error, timeout: Duration) -> String {
    if err.is_timeout() {
        return if timeout.is_zero() {
            "timed out".into()
        } else {
            format!(
                "timed out after {} s (see --timeout)",
                timeout.as_secs_f64()
            )
        };
    }
    let causes: Vec<String> = causes(err).iter().map(ToString::to_string).collect();
    // The last cause is the most specific ("Connection refused (os error 111)").
    let cause = causes.last().cloned().unwrap_or_else(|| err.to_string());
    let cause = strip_url(&cause);
    if err.is_connect() {
        format!("cannot connect: {cause}")
    } else {
        format!("connection failed: {cause}")
    }
}

/// reqwest puts the URL in its messages; ours already start with it.
fn strip_url(text: &str) -> String {
    match text.find(" for url (") {
        Some(pos) => text[..pos].to_string(),
        None => text.to_string(),
    }
}

fn transport_error(url: &str, err: &reqwest::Error, timeout: Duration) -> Error {
    if let Some(problem) = tls_problem(err) {
        return Error::no_perm(format!(
            "{url}: TLS certificate verification failed ({problem}); pass the engine's CA certificate with --ca-file"
        ));
    }
    Error::unavailable(format!("{url}: {}", describe_transport(err, timeout)))
}
