//! The path templates and methods of the published spec: the route label of logs and metrics
//! (`/v1/posts/{id}`, never a raw path), the names of path parameters, and the `Allow` header of
//! a 405. Matching allocates nothing: it runs on every request.

use std::{collections::HashMap, sync::RwLock};

use serde_json::Value;

enum Segment {
    Literal(String),
    Param(String),
}

struct Template {
    /// Leaked once at start-up (a few dozen bytes per operation) so labels are `&'static str`.
    path: &'static str,
    segments: Vec<Segment>,
    allow: String,
}

pub struct RouteTable {
    templates: Vec<Template>,
    /// poem's pattern of a matched route (`/v1/posts/:param0`) → the spec's template: one hash
    /// lookup per request instead of a scan. Bounded by the number of routes.
    by_pattern: RwLock<HashMap<String, Option<&'static str>>>,
}

impl RouteTable {
    /// The route table of every path in `specs` (a path described twice is listed once).
    pub fn from_specs(specs: &[&Value]) -> Self {
        let mut templates: Vec<Template> = Vec::new();
        let paths = specs
            .iter()
            .filter_map(|spec| spec.get("paths").and_then(Value::as_object))
            .flatten();
        {
            for (path, item) in paths {
                if templates.iter().any(|t| t.path == path) {
                    continue;
                }
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
                let segments = segments(path)
                    .map(
                        |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                            Some(name) => Segment::Param(name.to_string()),
                            None => Segment::Literal(s.to_string()),
                        },
                    )
                    .collect();
                templates.push(Template {
                    path: Box::leak(path.clone().into_boxed_str()),
                    segments,
                    allow: methods.join(", "),
                });
            }
        }
        // Literal segments beat parameters (`/v1/users/me` before `/v1/users/{id}`).
        templates.sort_by_key(|t| {
            t.segments
                .iter()
                .filter(|s| matches!(s, Segment::Param(_)))
                .count()
        });
        Self {
            templates,
            by_pattern: RwLock::default(),
        }
    }

    /// `template_for(path)`, remembered by the route's poem pattern.
    pub fn template_for_route(&self, pattern: &str, path: &str) -> Option<&'static str> {
        if let Some(found) = self
            .by_pattern
            .read()
            .ok()
            .and_then(|m| m.get(pattern).copied())
        {
            return found;
        }
        let found = self.template_for(path);
        if let Ok(mut map) = self.by_pattern.write() {
            map.insert(pattern.to_string(), found);
        }
        found
    }

    /// The `Allow` value for a concrete request path, if the spec knows the path.
    pub fn for_path(&self, path: &str) -> Option<String> {
        self.matching(path).map(|t| t.allow.clone())
    }

    /// Whether the spec has an operation for `method` on this path.
    pub fn allows(&self, path: &str, method: &str) -> bool {
        self.matching(path)
            .is_some_and(|t| t.allow.split(", ").any(|m| m == method))
    }

    /// The spec's template for a concrete path.
    pub fn template_for(&self, path: &str) -> Option<&'static str> {
        self.matching(path).map(|t| t.path)
    }

    /// The name of the `index`-th path parameter of the template matching `path`.
    pub fn param_name(&self, path: &str, index: usize) -> Option<&str> {
        self.matching(path)?
            .segments
            .iter()
            .filter_map(|s| match s {
                Segment::Param(name) => Some(name.as_str()),
                Segment::Literal(_) => None,
            })
            .nth(index)
    }

    fn matching(&self, path: &str) -> Option<&Template> {
        let count = segments(path).count();
        self.templates.iter().find(|template| {
            template.segments.len() == count
                && template
                    .segments
                    .iter()
                    .zip(segments(path))
                    .all(|(t, s)| match t {
                        Segment::Literal(literal) => literal == s,
                        Segment::Param(_) => !s.is_empty(),
                    })
        })
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.trim_end_matches('/').split('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_the_spec_methods_for_a_concrete_path() {
        let spec = serde_json::json!({"paths": {
            "/v1/posts": {"get": {}, "post": {}},
            "/v1/posts/{id}": {"get": {}, "patch": {}, "delete": {}, "parameters": []},
            "/v1/users/{id}": {"get": {}},
            "/v1/users/me": {"get": {}}
        }});
        let allowed = RouteTable::from_specs(&[&spec]);
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
        assert_eq!(allowed.template_for("/v1/users/me"), Some("/v1/users/me"));
        assert_eq!(allowed.template_for("/v1/users/42"), Some("/v1/users/{id}"));
        assert_eq!(allowed.param_name("/v1/posts/abc", 0), Some("id"));
        assert_eq!(allowed.template_for("/v1/posts/"), Some("/v1/posts"));
    }
}
