//! `HERALD_URL=http://localhost:3000 cargo run -p herald-client --example quickstart`
//!
//! Logs in as the seeded user1 (the client keeps and refreshes the tokens), publishes a post,
//! edits it with `If-Match`, and reads the newest posts as a stream.

use futures_util::{StreamExt, TryStreamExt};
use herald_client::{Client, Paginated, ProblemCode, etag, problem};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base_url = std::env::var("HERALD_URL").unwrap_or_else(|_| "http://localhost:3000".into());
    let client = Client::builder(&base_url)
        .timeout(std::time::Duration::from_secs(5))
        .on_tokens(|tokens| println!("tokens changed (signed in: {})", tokens.is_some()))
        .build()?;

    let session = client
        .login_user()
        .body_map(|b| b.email("user1@example.com").password("user123"))
        .send()
        .await?
        .into_inner();
    println!(
        "logged in as {} ({:?})",
        session.user.username, session.user.role
    );

    // A retried POST carries the same Idempotency-Key: it creates one post at most.
    let post = client
        .create_post()
        .body_map(|b| {
            b.title("Hello from Rust")
                .content("Written with the generated SDK.")
                .published(true)
        })
        .send()
        .await?;
    let version = etag(&post).unwrap_or_default();
    println!("created {} with ETag {version}", post.id);

    let title = "Hello again from Rust".parse()?;
    match client
        .update_post()
        .id(post.id)
        .if_match(version)
        .body_map(|b| b.title(Some(title)))
        .send()
        .await
    {
        Ok(updated) => println!("renamed to {:?}", updated.title),
        Err(error) => match problem(&error) {
            Some(p) if p.code == ProblemCode::PreconditionFailed => {
                println!("someone else changed it first")
            }
            Some(p) => println!(
                "refused: {} ({}), request {}",
                p.code, p.detail, p.request_id
            ),
            None => return Err(error.into()),
        },
    }

    let newest: Vec<_> = client
        .list_posts()
        .limit(20u32)
        .stream()
        .take(5)
        .try_collect()
        .await?;
    for post in &newest {
        println!("- {} by {}", post.title, post.author.username);
    }
    Ok(())
}
