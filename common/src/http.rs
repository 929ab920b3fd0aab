//! A deliberately small HTTP/1.1 server for `/metrics` and the fleet page: GET and HEAD only,
//! one request per connection (`Connection: close`), no request bodies, the request head
//! bounded in size and time, a bounded number of connections.
//!
//! Why hand-written rather than hyper: the two services need a handful of GET routes read
//! by Prometheus and one browser page. A parser for a request line and headers is ~100
//! lines that can be read in full and is tested here; hyper + hyper-util + http-body would
//! add several crates and build time for features (keep-alive, bodies, HTTP/2, upgrades)
//! we would then have to turn off or guard.
//!
//! The handler is synchronous: every route answers from memory (a read of the coordinator's
//! core, a copy of the agent's counters).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// Largest request head (request line and headers) read; a browser's GET with cookies and
/// an authorization header is well under 4 KiB.
pub const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;
/// Most headers parsed in one request.
pub const MAX_HEADERS: usize = 64;
/// How long a client has to send its request head; a slow client cannot hold a slot longer.
pub const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long writing a response may take.
pub const RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; beyond this new ones wait in the accept backlog. A scraper
/// and a few browsers need a handful.
pub const MAX_CONNECTIONS: usize = 64;

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path without the query string, e.g. `/api/fleet`.
    pub path: String,
    /// The query string without `?` (empty when absent).
    pub query: String,
    headers: Vec<(String, String)>,
}

impl Request {
    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer_token(&self) -> Option<&str> {
        let v = self.header("authorization")?;
        let (scheme, token) = v.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
    }
}

/// A response; the server adds `Content-Length`, `Connection: close` and security headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::new(
            status,
            "text/plain; charset=utf-8",
            body.into().into_bytes(),
        )
    }

    pub fn json(body: impl Into<Vec<u8>>) -> Response {
        Response::new(200, "application/json", body)
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// Why a request head was refused (answered with the status, then the connection closes).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request head larger than {MAX_REQUEST_HEAD_BYTES} bytes")]
    TooLarge,
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("method {0} not allowed; this server answers GET and HEAD")]
    Method(String),
}

impl RequestError {
    fn status(&self) -> u16 {
        match self {
            RequestError::TooLarge => 431,
            RequestError::Malformed(_) => 400,
            RequestError::Method(_) => 405,
        }
    }
}

/// Parses a complete request head (up to and including the blank line).
pub fn parse_request_head(head: &[u8]) -> Result<Request, RequestError> {
    if head.len() > MAX_REQUEST_HEAD_BYTES {
        return Err(RequestError::TooLarge);
    }
    let text = std::str::from_utf8(head).map_err(|_| RequestError::Malformed("not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().ok_or(RequestError::Malformed("empty"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::Malformed("request line"));
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(RequestError::Malformed("HTTP version"));
    }
    if !target.starts_with('/') {
        return Err(RequestError::Malformed("request target must be a path"));
    }
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEADERS {
            return Err(RequestError::TooLarge);
        }
        let (k, v) = line
            .split_once(':')
            .ok_or(RequestError::Malformed("header line"))?;
        if k.is_empty() || k.contains(' ') {
            return Err(RequestError::Malformed("header name"));
        }
        headers.push((k.to_string(), v.trim().to_string()));
    }
    if !matches!(method, "GET" | "HEAD") {
        return Err(RequestError::Method(method.chars().take(16).collect()));
    }
    let request = Request {
        method: method.to_string(),
        path: String::new(),
        query: String::new(),
        headers,
    };
    let has_body = request
        .header("content-length")
        .is_some_and(|v| v.trim() != "0")
        || request.header("transfer-encoding").is_some();
    if has_body {
        return Err(RequestError::Malformed("GET with a body"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Request {
        path: path.to_string(),
        query: query.to_string(),
        ..request
    })
}

/// Serves `handler` on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    handler: Arc<dyn Fn(&Request) -> Response + Send + Sync>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
            _ = stop.changed() => return,
        };
        let (stream, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "HTTP accept failed");
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            serve_one(stream, peer, handler).await;
            drop(permit);
        });
    }
}

async fn serve_one(
    mut stream: TcpStream,
    peer: SocketAddr,
    handler: Arc<dyn Fn(&Request) -> Response + Send + Sync>,
) {
    let head = match tokio::time::timeout(REQUEST_HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(e)) => {
            let _ = write_response(
                &mut stream,
                &Response::text(e.status(), e.to_string()),
                false,
            )
            .await;
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "HTTP request head not received in time");
            return;
        }
    };
    let (response, head_only) = match parse_request_head(&head) {
        Ok(req) => (handler(&req), req.method == "HEAD"),
        Err(e) => (Response::text(e.status(), e.to_string()), false),
    };
    let _ = tokio::time::timeout(
        RESPONSE_WRITE_TIMEOUT,
        write_response(&mut stream, &response, head_only),
    )
    .await;
}

async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, RequestError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|_| RequestError::Malformed("connection error"))?;
        if n == 0 {
            return Err(RequestError::Malformed(
                "connection closed before the head ended",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end + 4);
            return Ok(buf);
        }
        if buf.len() > MAX_REQUEST_HEAD_BYTES {
            return Err(RequestError::TooLarge);
        }
    }
}

async fn write_response(
    stream: &mut TcpStream,
    r: &Response,
    head_only: bool,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    for (k, v) in &r.headers {
        // Header values come from our own code; strip line breaks anyway.
        head.push_str(&format!("{k}: {}\r\n", v.replace(['\r', '\n'], " ")));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    if !head_only {
        stream.write_all(&r.body).await?;
    }
    stream.shutdown().await
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Compares a presented secret with the expected one in time independent of where they
/// differ: both are hashed first, so lengths leak nothing either.
pub fn secret_matches(presented: &str, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_browser_request() {
        let r = parse_request_head(
            b"GET /api/fleet?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer  s3cret \r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/api/fleet");
        assert_eq!(r.query, "x=1");
        assert_eq!(r.header("HOST"), Some("a"));
        assert_eq!(r.bearer_token(), Some("s3cret"));
    }

    #[test]
    fn refuses_what_it_does_not_serve() {
        assert!(matches!(
            parse_request_head(b"POST / HTTP/1.1\r\n\r\n"),
            Err(RequestError::Method(_))
        ));
        assert!(matches!(
            parse_request_head(b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"),
            Err(RequestError::Malformed(_))
        ));
        assert!(matches!(
            parse_request_head(b"GET http://x/ HTTP/1.1\r\n\r\n"),
            Err(RequestError::Malformed(_))
        ));
        assert!(matches!(
            parse_request_head(b"GET / HTTP/2\r\n\r\n"),
            Err(RequestError::Malformed(_))
        ));
        assert!(matches!(
            parse_request_head(b"GET /  HTTP/1.1\r\n\r\n"),
            Err(RequestError::Malformed(_))
        ));
        let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(
            parse_request_head(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
            Err(RequestError::TooLarge)
        );
        let r = parse_request_head(b"GET / HTTP/1.1\r\nAuthorization: Basic abc\r\n\r\n").unwrap();
        assert_eq!(r.bearer_token(), None);
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(secret_matches("abc", "abc"));
        assert!(!secret_matches("abd", "abc"));
        assert!(!secret_matches("", "abc"));
        assert!(!secret_matches("abcd", "abc"));
    }

    #[tokio::test]
    async fn serves_and_limits_over_tcp() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let handler: Arc<dyn Fn(&Request) -> Response + Send + Sync> =
            Arc::new(|r: &Request| Response::text(200, format!("path {}", r.path)));
        let server = tokio::spawn(serve(listener, handler, stop));
        let get = |req: Vec<u8>| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(&req).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let ok = get(b"GET /metrics HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\npath /metrics"), "{ok}");
        let head = get(b"HEAD /x HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(
            head.contains("Content-Length: 7") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        // Exactly one byte over the limit: the server reads all of it before refusing, so
        // closing leaves nothing unread (which would reset the connection).
        let fill = MAX_REQUEST_HEAD_BYTES + 1 - huge.len();
        huge.extend(std::iter::repeat_n(b'a', fill));
        let big = get(huge).await;
        assert!(big.starts_with("HTTP/1.1 431"), "{big}");
        stop_tx.send(true).unwrap();
        server.await.unwrap();
    }
}
