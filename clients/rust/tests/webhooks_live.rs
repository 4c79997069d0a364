//! Webhooks through the SDK against a live Herald (`HERALD_URL`, optionally `ADMIN_TOKEN`): an
//! ADMIN creates an endpoint pointing at a receiver on 127.0.0.1 (Herald in development allows
//! private targets), asks for a test send, and the delivery verifies with
//! [`herald_client::webhooks::verify`] and the secret shown at creation.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use herald_client::{Client, types, webhooks};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::mpsc,
};

async fn admin_client() -> Client {
    let url = std::env::var("HERALD_URL")
        .expect("HERALD_URL: these tests need a live Herald (scripts/contract starts one)");
    let client = Client::connect(&url).expect("a client");
    let token = match std::env::var("ADMIN_TOKEN") {
        Ok(token) => token,
        Err(_) => {
            client
                .login_user()
                .body_map(|b| b.email("admin@example.com").password("admin123"))
                .send()
                .await
                .expect("admin login")
                .into_inner()
                .access_token
        }
    };
    client.set_token(Some(token));
    client
}

/// One request as received: its headers and raw body.
type Delivery = (http::HeaderMap, Vec<u8>);

/// A minimal HTTP/1.1 receiver answering 204 to everything.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Delivery>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let mut headers = http::HeaderMap::new();
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                for line in head.lines().skip(1) {
                    if let Some((name, value)) = line.split_once(':') {
                        headers.append(
                            http::HeaderName::from_bytes(
                                name.trim().to_ascii_lowercase().as_bytes(),
                            )
                            .unwrap(),
                            value.trim().parse().unwrap(),
                        );
                    }
                }
                let length: usize = headers
                    .get("content-length")
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                    .await;
                let _ = tx.send((headers, buf[head_end..head_end + length].to_vec()));
            });
        }
    });
    (url, rx)
}

#[tokio::test]
#[ignore = "needs a live Herald: scripts/contract runs it"]
async fn a_test_delivery_verifies_with_the_secret_shown_at_creation() {
    let admin = admin_client().await;
    let (url, mut deliveries) = receiver().await;
    let created = admin
        .create_webhook()
        .body_map(|b| {
            b.url(url.clone())
                .event_types(vec![types::EventType::PostCreated])
        })
        .send()
        .await
        .expect("create webhook")
        .into_inner();
    assert!(created.secret.starts_with("whsec_"));

    let accepted = admin
        .test_webhook()
        .id(created.id)
        .send()
        .await
        .expect("test send")
        .into_inner();
    let event_id = accepted.event_id.to_string();
    let (headers, body) = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let delivery = deliveries.recv().await.expect("the receiver runs");
            if delivery.0.get("webhook-id").and_then(|v| v.to_str().ok()) == Some(&event_id) {
                break delivery;
            }
        }
    })
    .await
    .expect("a delivery within 15 s");
    webhooks::verify(&created.secret, &headers, &body).expect("the signature verifies");
    assert_eq!(
        webhooks::verify(&created.secret, &headers, b"{}"),
        Err(webhooks::WebhookError::NoMatchingSignature)
    );
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["type"], "webhook.test");
    assert_eq!(event["id"], event_id.as_str());

    admin
        .delete_webhook()
        .id(created.id)
        .send()
        .await
        .expect("delete webhook");
}
