//! The path templates and methods of the published spec, used to answer `405` with an `Allow`
//! header that lists exactly what the spec allows on that path.

use serde_json::Value;

pub struct AllowedMethods {
    /// (path template, its segments, allowed methods upper-case and comma-separated)
    templates: Vec<(String, Vec<String>, String)>,
}

impl AllowedMethods {
    pub fn from_spec(spec: &Value) -> Self {
        let mut templates = Vec::new();
        if let Some(paths) = spec.get("paths").and_then(Value::as_object) {
            for (path, item) in paths {
                let Some(item) = item.as_object() else {
                    continue;
                };
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
                templates.push((path.clone(), split(path), methods.join(", ")));
            }
        }
        Self { templates }
    }

    /// The `Allow` value for a concrete request path, if the spec knows the path.
    pub fn for_path(&self, path: &str) -> Option<String> {
        self.matching(path).map(|(_, _, methods)| methods.clone())
    }

    /// The spec's template for a concrete path (`/v1/posts/{id}`): the route label of logs and
    /// metrics.
    pub fn template_for(&self, path: &str) -> Option<&str> {
        self.matching(path)
            .map(|(template, _, _)| template.as_str())
    }

    /// The name of the `index`-th path parameter of the template matching `path`.
    pub fn param_name(&self, path: &str, index: usize) -> Option<&str> {
        let (_, segments, _) = self.matching(path)?;
        segments
            .iter()
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .nth(index)
    }

    fn matching(&self, path: &str) -> Option<&(String, Vec<String>, String)> {
        let segments = split(path);
        // Literal segments beat parameters (`/v1/users/me` over `/v1/users/{id}`).
        self.templates
            .iter()
            .filter(|(_, template, _)| {
                template.len() == segments.len()
                    && template.iter().zip(&segments).all(|(t, s)| {
                        (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s
                    })
            })
            .min_by_key(|(_, template, _)| template.iter().filter(|t| t.starts_with('{')).count())
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
        assert_eq!(
            allowed.for_path("/v1/posts").as_deref(),
            Some("GET, HEAD, POST")
        );
        assert_eq!(
            allowed.for_path("/v1/posts/abc").as_deref(),
            Some("DELETE, GET, HEAD, PATCH")
        );
        assert_eq!(allowed.for_path("/v1/nothing"), None);
        assert_eq!(
            allowed.template_for("/v1/posts/abc"),
            Some("/v1/posts/{id}")
        );
        assert_eq!(allowed.param_name("/v1/posts/abc", 0), Some("id"));
    }
}
