//! `HERALD_URL=http://localhost:3000 cargo run -p herald-client --example quickstart`
//!
//! Logs in as the seeded user1, publishes a post, edits it with `If-Match`, and lists posts.

use herald_client::{Client, etag, problem};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base_url = std::env::var("HERALD_URL").unwrap_or_else(|_| "http://localhost:3000".into());
    let client = Client::connect(&base_url);

    let session = client
        .login_user()
        .body_map(|b| b.email("user1@example.com").password("user123"))
        .send()
        .await?
        .into_inner();
    client.set_token(Some(session.access_token));
    println!(
        "logged in as {} ({:?})",
        session.user.username, session.user.role
    );

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

    match client
        .update_post()
        .id(post.id)
        .if_match(version)
        .body_map(|b| {
            b.title(Some(
                "Hello again from Rust".parse().expect("a valid title"),
            ))
        })
        .send()
        .await
    {
        Ok(updated) => println!("renamed to {:?}", updated.title),
        Err(error) => match problem(&error) {
            Some(problem) => println!(
                "refused: {} ({}), request {}",
                problem.code, problem.detail, problem.request_id
            ),
            None => return Err(error.into()),
        },
    }

    let page = client.list_posts().limit(5u32).send().await?.into_inner();
    for post in &page.data {
        println!("- {} by {}", post.title, post.author.username);
    }
    Ok(())
}
