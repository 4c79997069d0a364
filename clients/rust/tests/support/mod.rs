//! A fault-injecting HTTP proxy in front of Herald, started by the tests (optionally behind TLS
//! with a self-signed certificate): for requests that match a rule it drops the connection
//! before forwarding (Herald never sees the request), drops it after Herald answered (the client
//! never sees the answer), answers 503 with `Retry-After` itself, or delays. It logs every
//! request it receives, for the tests to count.

#![allow(dead_code, clippy::unwrap_used)] // test code: a panic is a failed test

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    DropBefore,
    DropAfter,
    Unavailable { retry_after_secs: u64 },
    Delay(Duration),
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub fault: Option<Fault>,
    pub idempotency_key: Option<String>,
}

struct Rule {
    method: String,
    path: String,
    faults: Vec<Fault>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
}

#[derive(Clone)]
pub struct FaultProxy {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    tls: bool,
}

impl FaultProxy {
    /// Starts a proxy to `target` (Herald's base URL), over TLS with `tls` if given.
    pub async fn start(target: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            state: Arc::default(),
            tls: tls.is_some(),
        };
        // The proxy's own plain reqwest client: with the SDK's `rustls-no-provider` feature of
        // reqwest, a client not built by the SDK needs a process-wide provider.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let upstream = reqwest::Client::builder().no_proxy().build().unwrap();
        let target = target.trim_end_matches('/').to_string();
        let state = proxy.state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, upstream, target, tls) =
                    (state.clone(), upstream.clone(), target.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        handle(req, state.clone(), upstream.clone(), target.clone())
                    });
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        proxy
    }

    pub fn url(&self) -> String {
        match self.tls {
            true => format!("https://localhost:{}", self.addr.port()),
            false => format!("http://{}", self.addr),
        }
    }

    /// The next requests matching `method` and exactly `path` get these faults, one each.
    pub fn inject(&self, method: &str, path: &str, faults: &[Fault]) {
        self.state.lock().unwrap().rules.push(Rule {
            method: method.into(),
            path: path.into(),
            faults: faults.to_vec(),
        });
    }

    pub fn seen(&self, method: &str, path: &str) -> Vec<Seen> {
        let state = self.state.lock().unwrap();
        let seen = state.seen.iter();
        seen.filter(|s| s.method == method && s.path == path)
            .cloned()
            .collect()
    }

    pub fn count(&self, method: &str, path: &str) -> usize {
        self.seen(method, path).len()
    }
}

type Reply = Result<Response<Full<Bytes>>, std::io::Error>;

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    upstream: reqwest::Client,
    target: String,
) -> Reply {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let fault = {
        let mut state = state.lock().unwrap();
        let fault = state
            .rules
            .iter_mut()
            .find(|r| r.method == method.as_str() && r.path == path && !r.faults.is_empty())
            .map(|r| r.faults.remove(0));
        let idempotency_key = req
            .headers()
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        state.seen.push(Seen {
            method: method.to_string(),
            path: path.clone(),
            fault,
            idempotency_key,
        });
        fault
    };
    let dropped = || std::io::Error::other("connection dropped by the fault proxy");
    match fault {
        Some(Fault::DropBefore) => return Err(dropped()),
        Some(Fault::Unavailable { retry_after_secs }) => {
            let body = r#"{"status":503,"code":"SERVICE_UNAVAILABLE","detail":"injected"}"#;
            return Ok(Response::builder()
                .status(503)
                .header("content-type", "application/problem+json")
                .header("x-error-code", "SERVICE_UNAVAILABLE")
                .header("retry-after", retry_after_secs.to_string())
                .body(Full::new(Bytes::from_static(body.as_bytes())))
                .unwrap());
        }
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        _ => {}
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let url = format!(
        "{target}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut forward = upstream.request(parts.method, url).body(body);
    for (name, value) in &parts.headers {
        if !matches!(name.as_str(), "host" | "connection" | "content-length") {
            forward = forward.header(name, value);
        }
    }
    let answer = forward.send().await.map_err(std::io::Error::other)?;
    if fault == Some(Fault::DropAfter) {
        return Err(dropped()); // Herald acted; the client never hears of it
    }
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !matches!(
            name.as_str(),
            "connection" | "content-length" | "transfer-encoding"
        ) {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.map_err(std::io::Error::other)?;
    Ok(response.body(Full::new(bytes)).unwrap())
}

/// A TLS acceptor for `localhost` with a fresh self-signed certificate, and that certificate
/// (DER) for the client to trust.
pub fn self_signed_tls() -> (tokio_rustls::TlsAcceptor, Vec<u8>) {
    use tokio_rustls::rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    };
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = certified.cert.der().to_vec();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![CertificateDer::from(cert.clone())], key)
    .unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), cert)
}

pub fn herald_url() -> String {
    std::env::var("HERALD_URL")
        .expect("HERALD_URL: these tests need a live Herald (scripts/contract starts one)")
}
