//! Plain HTTP/1.1 requests to pipe's API from the tests, and reading its answers.

use super::*;
use std::io::Write;
use std::net::TcpStream;

/// Sends one whole HTTP/1.1 `request` to 127.0.0.1:`port` and reads the answer
/// until the server closes: the status code and the body, or None when nothing
/// answered within `timeout`.
fn exchange(port: u16, request: &str, timeout: Duration) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // Chunked bodies: the JSON/text is still in there; tests search it.
    Some((status, body))
}

/// `GET path` on 127.0.0.1:`port`: the status code and the body.
pub fn get(port: u16, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n");
    exchange(port, &request, Duration::from_secs(10))
}

/// `POST path` with `body` of `content_type`: the status code and the body.
pub fn post(port: u16, path: &str, content_type: &str, body: &str) -> Option<(u16, String)> {
    post_as(port, path, content_type, body, None)
}

/// [`post`] with a bearer token.
pub fn post_as(port: u16, path: &str, content_type: &str, body: &str, token: Option<&str>) -> Option<(u16, String)> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    exchange(port, &request, Duration::from_secs(60))
}

pub fn json(port: u16, path: &str) -> serde_json::Value {
    let (status, body) = get(port, path, None).unwrap_or_else(|| panic!("GET {path} failed"));
    assert_eq!(status, 200, "{path}: {body}");
    let start = body.find('{').unwrap_or(0);
    let end = body.rfind('}').map_or(body.len(), |e| e + 1);
    serde_json::from_str(&body[start..end]).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// The value of the sample `name{…labels…}` whose labels contain every `label`.
pub fn sample(exposition: &str, name: &str, labels: &[&str]) -> Option<f64> {
    exposition
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|x| l.contains(x)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

pub fn wait_api(port: u16, log: &Path) {
    assert!(
        wait_for(30, || get(port, "/health/live", None).is_some_and(|(s, _)| s == 200)),
        "the API did not come up: {}",
        fs::read_to_string(log).unwrap_or_default()
    );
}

/// `POST path` with a JSON `body`: the status code and the body.
pub fn post_json(port: u16, path: &str, body: &serde_json::Value) -> Option<(u16, String)> {
    post(port, path, "application/json", &body.to_string())
}
