//! `herald-healthcheck [URL]`: exits 0 when `GET URL` answers 200 within the timeout, 1
//! otherwise (with one line on stderr saying why).
//!
//! Herald's runtime image has no shell and no curl (distroless), so a compose `healthcheck` (or
//! Docker's `HEALTHCHECK`) needs a program of its own to probe `/health/ready`. Kubernetes does
//! not need it: its probes speak HTTP themselves.
//!
//! The URL defaults to `http://127.0.0.1:$PORT/health/ready` (`PORT` as Herald reads it, 3000
//! when unset); only plain `http://host[:port]/path` is supported, which is all a probe of the
//! same container needs. `HEALTHCHECK_TIMEOUT_MS` bounds the whole exchange (default 2000).

use std::{
    io::{Read, Write},
    net::{TcpStream, ToSocketAddrs},
    process::ExitCode,
    time::{Duration, Instant},
};

fn main() -> ExitCode {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        let port = std::env::var("PORT")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "3000".into());
        format!("http://127.0.0.1:{port}/health/ready")
    });
    let timeout = std::env::var("HEALTHCHECK_TIMEOUT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::from_secs(2), Duration::from_millis);
    match probe(&url, timeout) {
        Ok(200) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("healthcheck: {url} answered {status}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("healthcheck: {url}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `http://host[:port]/path` → (host, port, path).
fn parse_url(url: &str) -> Result<(&str, u16, &str), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse()
                .map_err(|_| format!("bad port {port:?} in {url:?}"))?,
        ),
        None => (authority, 80),
    };
    if host.is_empty() {
        return Err(format!("no host in {url:?}"));
    }
    Ok((host, port, path))
}

/// The status code of `GET url`, read from the status line.
fn probe(url: &str, timeout: Duration) -> Result<u16, String> {
    let started = Instant::now();
    let (host, port, path) = parse_url(url)?;
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("resolving {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    let left = timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    stream
        .set_read_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: herald-healthcheck\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    // The status line fits in the first read of any real server; keep reading until it is whole.
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    parse_status(&head)
}

/// `HTTP/1.1 200 OK` → 200.
fn parse_status(head: &[u8]) -> Result<u16, String> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(status))) if version.starts_with("HTTP/") => Ok(status),
        _ => Err(format!("not an HTTP response: {:?}", line.trim_end())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn urls_split_into_host_port_and_path() {
        assert_eq!(
            parse_url("http://127.0.0.1:3000/health/ready"),
            Ok(("127.0.0.1", 3000, "/health/ready"))
        );
        assert_eq!(parse_url("http://herald"), Ok(("herald", 80, "/")));
        assert!(parse_url("https://herald/health").is_err());
        assert!(parse_url("http://:80/").is_err());
        assert!(parse_url("http://herald:x/").is_err());
    }

    #[test]
    fn the_status_comes_from_the_status_line() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n\r\n"), Ok(200));
        assert_eq!(
            parse_status(b"HTTP/1.1 503 Service Unavailable\r\n"),
            Ok(503)
        );
        assert!(parse_status(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_status(b"").is_err());
    }

    /// A one-shot server answering `status_line`; returns its URL.
    fn serve_once(status_line: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            // Read the whole head (it may come in pieces on a busy machine): closing with unread
            // bytes would reset the connection before the probe reads the answer.
            let mut request = Vec::new();
            let mut chunk = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&chunk[..n]),
                }
            }
            let _ = write!(conn, "{status_line}\r\ncontent-length: 0\r\n\r\n");
            let _ = conn.shutdown(std::net::Shutdown::Write);
        });
        format!("http://127.0.0.1:{port}/health/ready")
    }

    #[test]
    fn a_live_server_is_probed_for_its_status() {
        let timeout = Duration::from_secs(5);
        assert_eq!(probe(&serve_once("HTTP/1.1 200 OK"), timeout), Ok(200));
        assert_eq!(
            probe(&serve_once("HTTP/1.1 503 Service Unavailable"), timeout),
            Ok(503)
        );
    }

    #[test]
    fn nothing_listening_is_an_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(probe(&format!("http://127.0.0.1:{port}/"), Duration::from_secs(2)).is_err());
    }
}
