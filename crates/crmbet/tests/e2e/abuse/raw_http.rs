//! A bare HTTP/1.1 client over a TCP socket, for requests no polite client sends: headers
//! now and the body later, repeated headers, a spoofed `Host`.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any one read may wait for the server.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP/1.1 response as read off the socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Lowercased names, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }

    /// The JSON body of a REST answer.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Reads one response (`content-length` or chunked body) from `stream`; `None` when the
/// server closed or reset the connection before a whole response arrived.
pub async fn read_response(stream: &mut TcpStream) -> Option<RawResponse> {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(position) = find(&buffer, b"\r\n\r\n") {
            break position;
        }
        if !read_more(stream, &mut buffer).await {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let mut rest = buffer[head_end + 4..].to_vec();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.clone())
    };
    let body = if let Some(length) = header("content-length") {
        let length: usize = length.parse().ok()?;
        while rest.len() < length {
            if !read_more(stream, &mut rest).await {
                return None;
            }
        }
        rest.truncate(length);
        rest
    } else if header("transfer-encoding").is_some_and(|value| value.contains("chunked")) {
        read_chunked(stream, rest).await?
    } else {
        Vec::new()
    };
    Some(RawResponse {
        status,
        headers,
        body,
    })
}

async fn read_chunked(stream: &mut TcpStream, mut buffer: Vec<u8>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(position) = find(&buffer, b"\r\n") {
                break position;
            }
            if !read_more(stream, &mut buffer).await {
                return None;
            }
        };
        let size_text = String::from_utf8_lossy(&buffer[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        buffer.drain(..line_end + 2);
        if size == 0 {
            // Trailers (grpc-web sends none here) end with an empty line.
            while find(&buffer, b"\r\n").is_none() {
                if !read_more(stream, &mut buffer).await {
                    return None;
                }
            }
            return Some(body);
        }
        while buffer.len() < size + 2 {
            if !read_more(stream, &mut buffer).await {
                return None;
            }
        }
        body.extend_from_slice(&buffer[..size]);
        buffer.drain(..size + 2);
    }
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> bool {
    let mut chunk = [0_u8; 8192];
    match tokio::time::timeout(READ_TIMEOUT, stream.read(&mut chunk)).await {
        Ok(Ok(0)) | Ok(Err(_)) => false,
        Ok(Ok(read)) => {
            buffer.extend_from_slice(&chunk[..read]);
            true
        }
        Err(_) => panic!("the server sent nothing for {READ_TIMEOUT:?}"),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Sends `head` (request line and headers, without the blank line) and `body` at once, and
/// reads the answer.
pub async fn exchange(address: &str, head: &str, body: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let mut request = format!("{head}\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).await.unwrap();
    read_response(&mut stream)
        .await
        .expect("the server closed the connection without an answer")
}
