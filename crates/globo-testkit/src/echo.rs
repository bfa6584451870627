//! Test doubles and probes for the AWS error paths, shared by the suites that need them.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};

use base64::Engine as _;

/// A fake Secrets Manager endpoint on a free loopback port (its URL) for tests that check a
/// service error is scrubbed: it answers `DescribeSecret` with `ResourceNotFoundException` and every other call with a
/// `400 ValidationException` whose message echoes the request's `SecretString`, raw and
/// base64-encoded (as a careless service or proxy might).
pub fn echoing_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let Some((head, body)) = read_http_request(&mut stream) else { return };
                let head = head.to_ascii_lowercase();
                let (code, message) = if head.contains("secretsmanager.describesecret") {
                    ("ResourceNotFoundException", "no such secret".to_owned())
                } else {
                    let input: serde_json::Value = serde_json::from_str(&body).unwrap();
                    let secret = input["SecretString"].as_str().unwrap_or_default().to_owned();
                    let b64 = base64::engine::general_purpose::STANDARD.encode(secret.as_bytes());
                    ("ValidationException", format!("Invalid SecretString {secret} ({b64})"))
                };
                let body = serde_json::json!({"__type": code, "message": message}).to_string();
                let response = format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\n\
                     x-amzn-RequestId: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// Every layer of `error`, its `Display` and its `Debug`: what a test searches for a value
/// that must not be there.
pub fn error_texts(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut texts = vec![format!("{error:?}")];
    let mut layer: Option<&dyn std::error::Error> = Some(error);
    while let Some(current) = layer {
        texts.push(current.to_string());
        texts.push(format!("{current:?}"));
        layer = current.source();
    }
    texts
}

/// Reads one HTTP request from `stream`: its head (request line and headers, as sent) and its
/// body (by `Content-Length`), so a fake endpoint answers only after the client sent it all.
/// `None` when the client closes the connection first.
pub fn read_http_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap_or(0);
        if n == 0 {
            return None;
        }
        request.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&request).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let l = l.to_ascii_lowercase();
                    l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0usize))
                })
                .unwrap_or(0);
            if request.len() >= end + 4 + length {
                return Some((text[..end].to_owned(), text[end + 4..].to_owned()));
            }
        }
    }
}
