//! The path templates and methods of the published spec, used to answer `405` with an `Allow`
//! header that lists exactly what the spec allows on that path.

use serde_json::Value;

pub struct AllowedMethods {
    /// (path template split into segments, allowed methods upper-case, comma-separated)
    templates: Vec<(Vec<String>, String)>,
}

impl AllowedMethods {
    pub fn from_spec(spec: &Value) -> Self {
        let mut templates = Vec::new();
        if let Some(paths) = spec.get("paths").and_then(Value::as_object) {
            for (path, item) in paths {
                let Some(item) = item.as_object() else { continue };
                let mut methods: Vec<String> = item
                    .keys()
                    .filter(|m| {
                        matches!(
                            m.as_str(),
                            "get" | "put" | "post" | "delete" | "patch" | "head" | "options"
                        )
                    })
                    .map(|m| m.to_ascii_uppercase())
                    .collect();
                if methods.iter().any(|m| m == "GET") && !methods.iter().any(|m| m == "HEAD") {
                    methods.push("HEAD".into());
                }
                methods.sort();
                templates.push((split(path), methods.join(", ")));
            }
        }
        Self { templates }
    }

    /// The `Allow` value for a concrete request path, if the spec knows the path.
    pub fn for_path(&self, path: &str) -> Option<String> {
        let segments = split(path);
        self.templates
            .iter()
            .find(|(template, _)| {
                template.len() == segments.len()
                    && template.iter().zip(&segments).all(|(t, s)| {
                        (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s
                    })
            })
            .map(|(_, methods)| methods.clone())
    }
}

fn split(path: &str) -> Vec<String> {
    path.trim_end_matches('/')
        .split('/')
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_the_spec_methods_for_a_concrete_path() {
        let spec = serde_json::json!({"paths": {
            "/v1/posts": {"get": {}, "post": {}},
            "/v1/posts/{id}": {"get": {}, "patch": {}, "delete": {}, "parameters": []}
        }});
        let allowed = AllowedMethods::from_spec(&spec);
        assert_eq!(allowed.for_path("/v1/posts").as_deref(), Some("GET, HEAD, POST"));
        assert_eq!(allowed.for_path("/v1/posts/abc").as_deref(), Some("DELETE, GET, HEAD, PATCH"));
        assert_eq!(allowed.for_path("/v1/nothing"), None);
    }
}
