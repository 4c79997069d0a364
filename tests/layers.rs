//! The house's arrows run one way (README, "Architecture", the import table): the HTTP kit
//! knows no resource; models, repositories, services and jobs know neither poem nor the kit
//! and build no URL; `domain/` stands on nothing but the error type; nothing below the
//! composition (`api/`) knows it. Read from the source: a `use` that points the wrong way fails
//! here, naming the file.

// A failed unwrap in a test is a failed test.
#![allow(clippy::unwrap_used)]

use std::{collections::BTreeSet, fs, path::Path};

/// Top-level modules that are resources or the composition: the kit must not import them.
const ABOVE_THE_KIT: &[&str] = &[
    "airports",
    "api",
    "app",
    "auth",
    "events",
    "exports",
    "health",
    "housekeeping",
    "jobs",
    "posts",
    "seed",
    "users",
    "webhooks",
];

/// Every `crate::<module>` a file's non-test code names, grouped imports included.
fn crate_modules(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::b, c, d::{e, f}}`: the names at depth one.
            let mut depth = 1;
            let mut expect = true;
            let mut name = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => expect = true,
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                if depth == 1 && expect {
                    if c.is_alphanumeric() || c == '_' {
                        name.push(c);
                        continue;
                    }
                    if !name.is_empty() {
                        found.insert(std::mem::take(&mut name));
                        expect = false;
                    }
                }
            }
            if !name.is_empty() {
                found.insert(name);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
        &mut files,
    );
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).unwrap();
            let name = path
                .to_string_lossy()
                .split("/src/")
                .last()
                .unwrap_or_default()
                .to_string();
            (name, text)
        })
        .collect()
}

#[test]
fn the_parser_sees_grouped_and_plain_imports() {
    let text = "use crate::{\n    auth::rbac::Actor,\n    http::{a, b},\n    state,\n};\nfn f() { crate::posts::x(); }\n#[cfg(test)]\nmod t { use crate::api; }";
    let found: Vec<String> = crate_modules(text).into_iter().collect();
    assert_eq!(found, ["auth", "http", "posts", "state"]);
}

#[test]
fn the_http_kit_imports_no_resource_and_not_the_composition() {
    let mut wrong = Vec::new();
    for (file, text) in sources() {
        if !file.starts_with("http/") {
            continue;
        }
        for module in crate_modules(&text) {
            if ABOVE_THE_KIT.contains(&module.as_str()) {
                wrong.push(format!("{file} imports crate::{module}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Files whose names say they are below the API layer: the domain's rules and data, queries,
/// and background work.
fn is_below_the_api(file: &str) -> bool {
    let name = file.rsplit('/').next().unwrap_or_default();
    file.starts_with("domain/")
        || matches!(
            name,
            "model.rs" | "repo.rs" | "service.rs" | "runner.rs" | "job.rs" | "jobs.rs"
        )
}

#[test]
fn models_repositories_services_and_jobs_know_no_poem_and_no_http_kit() {
    let mut wrong = Vec::new();
    for (file, text) in sources() {
        if !is_below_the_api(&file) {
            continue;
        }
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for needle in ["poem::", "poem_openapi", "use poem"] {
            if code.contains(needle) {
                wrong.push(format!("{file} uses {needle}"));
            }
        }
        if crate_modules(&text).contains("http") {
            wrong.push(format!("{file} imports crate::http"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Links are the API layer's: a service hands back domain values and the version that was read
/// turns them into its paths.
#[test]
fn below_the_api_nothing_builds_a_url() {
    let mut wrong = Vec::new();
    for (file, text) in sources() {
        if !is_below_the_api(&file) {
            continue;
        }
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            let line = line.trim_start();
            if !line.starts_with("//") && (line.contains("\"/v1") || line.contains("\"/v2")) {
                wrong.push(format!("{file}:{}: {line}", n + 1));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// `domain/` is the floor every layer stands on: it may use the error type and nothing else of
/// the crate.
#[test]
fn the_domain_floor_imports_only_the_error_type() {
    let mut wrong = Vec::new();
    for (file, text) in sources() {
        if !file.starts_with("domain/") {
            continue;
        }
        for module in crate_modules(&text) {
            if module != "error" && module != "domain" {
                wrong.push(format!("{file} imports crate::{module}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn only_the_composition_and_the_wiring_know_the_composition() {
    let mut wrong = Vec::new();
    for (file, text) in sources() {
        if file.starts_with("api/") || file == "app.rs" || file == "main.rs" {
            continue;
        }
        if crate_modules(&text).contains("api") {
            wrong.push(format!("{file} imports crate::api"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
