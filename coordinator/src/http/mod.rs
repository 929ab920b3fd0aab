//! The coordinator's HTTP side: `/metrics` (Prometheus), the live fleet page (`/`) and its
//! JSON API (`/api/fleet`, `/api/tasks/<id>`, `/api/tasks/<id>/explain`), on the small GET-only server of
//! [`proofrack_common::http`].
//!
//! The page's static files hold no data; every `/api/` route needs
//! `Authorization: Bearer <token>` with the token from `[http] token_file`, compared in
//! constant time, else 401. Without a token file the API answers 403: it is never open.
//! `/metrics` needs no token; it listens on loopback unless `[http] listen` says otherwise.
//!
//! # Layout
//! - [`config`]: the `[http]` section and the token file.
//! - [`metrics`]: the exposition.
//! - `fleet_view`: the page's JSON.
//! - `assets/`: the page (HTML, JS, CSS), embedded in the binary.

mod config;
mod fleet_view;
mod limit_metrics;
pub(crate) mod metrics;
mod trust_metrics;

pub use config::HttpConfig;
use config::{load_token, TokenError};
pub use fleet_view::fleet_view;

use crate::handle::CoreView;
use proofrack_common::http::{self, secret_matches, Request, Response};
use proofrack_common::TaskId;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

const PAGE_HTML: &str = include_str!("assets/fleet.html");
const PAGE_JS: &str = include_str!("assets/fleet.js");
const PAGE_CSS: &str = include_str!("assets/fleet.css");
/// The page loads only its own script and style, and talks only to its own origin.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "cannot listen for HTTP on {addr}: {source}; change [http] listen or set enabled = false"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// A running HTTP server; stop it with [`HttpServer::shutdown`].
pub struct HttpServer {
    pub local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts the server `config` describes, or nothing when it is disabled.
pub async fn start_from_config(
    config: &HttpConfig,
    view: Arc<dyn CoreView>,
) -> Result<Option<HttpServer>, HttpError> {
    if !config.enabled {
        return Ok(None);
    }
    let token = config.token_path().map(load_token).transpose()?;
    start(config.listen, token, view).await.map(Some)
}

/// Binds `listen` and serves. `token`: the fleet API's bearer token (`None`: API disabled).
pub async fn start(
    listen: SocketAddr,
    token: Option<String>,
    view: Arc<dyn CoreView>,
) -> Result<HttpServer, HttpError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| HttpError::Bind {
            addr: listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| HttpError::Bind {
        addr: listen,
        source,
    })?;
    let (stop, stop_rx) = watch::channel(false);
    let handler: Arc<dyn Fn(&Request) -> Response + Send + Sync> =
        Arc::new(move |req: &Request| route(req, &*view, token.as_deref()));
    let task = tokio::spawn(http::serve(listener, handler, stop_rx));
    tracing::info!(%local_addr, "HTTP: /metrics, fleet page at /");
    Ok(HttpServer {
        local_addr,
        stop,
        task,
    })
}

fn route(req: &Request, view: &dyn CoreView, token: Option<&str>) -> Response {
    match req.path.as_str() {
        "/metrics" => Response::new(
            200,
            proofrack_common::metrics::CONTENT_TYPE,
            metrics::render(view),
        ),
        "/healthz" => Response::text(200, "ok\n"),
        "/" | "/fleet" => page(PAGE_HTML, "text/html; charset=utf-8"),
        "/fleet.js" => page(PAGE_JS, "text/javascript; charset=utf-8"),
        "/fleet.css" => page(PAGE_CSS, "text/css; charset=utf-8"),
        path if path.starts_with("/api/") => match authorize(req, token) {
            Err(refusal) => refusal,
            Ok(()) => api(path, view),
        },
        _ => Response::text(404, "not found; try /metrics or / (the fleet page)\n"),
    }
}

fn page(body: &'static str, content_type: &'static str) -> Response {
    Response::new(200, content_type, body)
        .with_header("Content-Security-Policy", PAGE_CSP)
        .with_header("X-Frame-Options", "DENY")
        .with_header("Referrer-Policy", "no-referrer")
}

fn authorize(req: &Request, token: Option<&str>) -> Result<(), Response> {
    let Some(expected) = token else {
        return Err(Response::text(
            403,
            "the fleet API is disabled: set [http] token_file in coordinator.toml\n",
        ));
    };
    match req.bearer_token() {
        Some(presented) if secret_matches(presented, expected) => Ok(()),
        _ => Err(Response::text(
            401,
            "a valid token is required: send Authorization: Bearer <token from [http] token_file>\n",
        )
        .with_header("WWW-Authenticate", "Bearer realm=\"proofrack\"")),
    }
}

fn api(path: &str, view: &dyn CoreView) -> Response {
    if path == "/api/fleet" {
        return json(&fleet_view::fleet_view(view));
    }
    if let Some(id) = path.strip_prefix("/api/tasks/") {
        let (id, explain) = match id.strip_suffix("/explain") {
            Some(id) => (id, true),
            None => (id, false),
        };
        let Ok(task) = id.parse::<TaskId>() else {
            return Response::text(400, format!("{id:?} is not a task id\n"));
        };
        return match view.read(|core, _| core.task(task)) {
            Some(view) if explain => {
                let explanation = crate::tasks::explain(&view);
                json(&serde_json::json!({
                    "text": explanation.to_string(),
                    "explanation": explanation,
                }))
            }
            Some(view) => json(&view),
            None => Response::text(
                404,
                format!("task {task} is not known (or was forgotten)\n"),
            ),
        };
    }
    Response::text(
        404,
        "unknown API route; try /api/fleet or /api/tasks/<id>\n",
    )
}

fn json(value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => Response::json(body),
        Err(e) => Response::text(500, format!("serialising the view: {e}\n")),
    }
}
