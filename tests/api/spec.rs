//! The committed spec is what the code generates: reviewers read its diff like code.

use herald::api::spec::{self, Version};

#[test]
fn the_committed_openapi_files_match_the_code() {
    for version in Version::ALL {
        let document = spec::document(version);
        let dir = format!("{}/openapi/{}", env!("CARGO_MANIFEST_DIR"), version.name());
        let json = std::fs::read_to_string(format!("{dir}/openapi.json")).unwrap_or_default();
        let yaml = std::fs::read_to_string(format!("{dir}/openapi.yaml")).unwrap_or_default();
        assert!(
            json == spec::json(&document) && yaml == spec::yaml(&document),
            "{dir} is stale: run `cargo run --bin herald -- openapi` (or scripts/gen) and commit the diff"
        );
    }
}

/// `herald openapi` is what CI and `scripts/gen` run: it must need no database, no Redis and no
/// file of the repository. Run the real binary from an empty directory with both services
/// pointing at addresses nobody listens on: it still prints the committed document.
#[test]
fn the_spec_is_generated_without_a_database_redis_or_repository_files() {
    let empty = std::env::temp_dir().join(format!("herald-spec-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&empty).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["openapi", "--stdout"])
        .current_dir(&empty)
        .env("DATABASE_URL", "postgres://nobody:nothing@127.0.0.1:1/none")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("AUTO_MIGRATE", "true")
        .output()
        .expect("run herald openapi");
    let _ = std::fs::remove_dir_all(&empty);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/openapi/v1/openapi.json"
    ))
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim_end(),
        committed.trim_end()
    );
}
