//! Generates the client from the committed spec (`openapi/openapi.json`) with progenitor, into
//! `OUT_DIR`: the SDK cannot drift from the spec it ships with.
//!
//! progenitor reads only JSON media types and one success type per operation, so the document is
//! adapted first, without changing what goes over the wire:
//! - `application/problem+json` → `application/json`: errors come back typed as `Problem`;
//! - `application/merge-patch+json` → `application/json`: `hooks::before_request` puts the real
//!   media type back on every PATCH;
//! - a 204 or 304 beside a success with a body, and the health checks' own 503 report, are
//!   dropped: `lib.rs` maps those statuses (they arrive as "unexpected responses").
//!
//! Bodies that need an explicit `null` (user and airport patches) use the hand-written types in
//! `src/patch.rs`.

use std::{env, fs, path::Path};

use progenitor::{GenerationSettings, Generator, InterfaceStyle, TagStyle, TypeImpl};
use serde_json::Value;

fn main() {
    let spec_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi/openapi.json");
    println!("cargo:rerun-if-changed={}", spec_path.display());
    let text = fs::read_to_string(&spec_path).expect("read openapi/openapi.json");
    let mut document: Value = serde_json::from_str(&text).expect("openapi.json is JSON");
    adapt(&mut document);
    let spec: openapiv3::OpenAPI =
        serde_json::from_value(document).expect("a valid OpenAPI 3.0 document");

    let mut settings = GenerationSettings::default();
    settings
        .with_interface(InterfaceStyle::Builder)
        .with_tag(TagStyle::Merged)
        .with_inner_type(quote::quote!(crate::Session))
        .with_pre_hook(quote::quote!(crate::hooks::before_request))
        .with_replacement(
            "UserPatchRequest",
            "crate::patch::UserPatchRequest",
            [TypeImpl::Default].into_iter(),
        )
        .with_replacement(
            "AirportPatchRequest",
            "crate::patch::AirportPatchRequest",
            [TypeImpl::Default].into_iter(),
        );
    let mut generator = Generator::new(&settings);
    let tokens = generator
        .generate_tokens(&spec)
        .expect("progenitor generates the client");
    let file: syn::File = syn::parse2(tokens).expect("generated code parses");
    let out = Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("codegen.rs");
    fs::write(out, prettyplease::unparse(&file)).expect("write codegen.rs");
}

fn adapt(document: &mut Value) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut() {
            if let Some(content) = operation.pointer_mut("/requestBody/content") {
                rename_media(content);
            }
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            let has_body_success = responses
                .iter()
                .any(|(status, r)| status.starts_with('2') && r.get("content").is_some());
            responses.retain(|status, _| {
                let bodiless_beside_body = has_body_success && (status == "204" || status == "304");
                let health_report = path.starts_with("/health") && status == "503";
                !bodiless_beside_body && !health_report
            });
            for response in responses.values_mut() {
                if let Some(content) = response.get_mut("content") {
                    rename_media(content);
                }
            }
        }
    }
}

fn rename_media(content: &mut Value) {
    let Some(map) = content.as_object_mut() else {
        return;
    };
    for media in ["application/problem+json", "application/merge-patch+json"] {
        if let Some(schema) = map.remove(media) {
            map.insert("application/json".into(), schema);
        }
    }
}
