//! The documentation pages: Swagger UI at `/docs` set up for a newcomer (tags in the order a
//! user needs them, operations in CRUD order, the bearer token kept across reloads, a first
//! screen that says how to get a token, and a switch between the API versions), and ReDoc /
//! Scalar for reading.
//!
//! The Swagger UI bundle (script and style) is the one poem-openapi embeds; only the page around
//! it is Herald's. Pages are built when asked for: each embeds ~1.5 MiB of JavaScript, and
//! keeping them in memory would cost several MiB for pages read now and then.

/// One API version the docs offer: its name and the URL of its document.
#[derive(Debug, Clone, Copy)]
pub struct DocumentLink {
    pub name: &'static str,
    pub url: &'static str,
}

/// Tags in the order a newcomer needs them; others follow alphabetically.
const TAG_ORDER: &[&str] = &[
    "Auth", "Posts", "Users", "Airports", "Events", "Webhooks", "Exports", "Health",
];

/// Operations in the order a newcomer meets them; others follow by method (create, read,
/// update, delete) and then by path (a collection before its items).
const OPERATION_ORDER: &[&str] = &[
    "register_user",
    "login_user",
    "refresh_session",
    "logout_user",
];

const INTRO: &str = r#"<div class="herald-intro">
  <strong>First time here?</strong> Get a token, then click <em>Authorize</em>:
  <ol>
    <li>Open <code>POST /v{n}/auth/login</code> below, click <em>Try it out</em>, and log in with
      the seeded account <code>user1@example.com</code> / <code>user123</code>
      (or <code>admin@example.com</code> / <code>admin123</code> for admin-only operations).</li>
    <li>Copy <code>accessToken</code> from the response.</li>
    <li>Click <em>Authorize</em>, paste the token (without <code>Bearer</code>), and close the
      dialog. The token is kept in this browser across reloads until you log out there.</li>
  </ol>
</div>"#;

/// Swagger UI over `documents` (the first one shown first), with a version switch when there are
/// several. `bundle_html` is a page poem-openapi generated: its script and style are reused.
pub fn swagger_page(bundle_html: &str, documents: &[DocumentLink]) -> String {
    let style = between(bundle_html, "<style charset=\"UTF-8\">", "</style>");
    let script = between(bundle_html, "<script charset=\"UTF-8\">", "</script>");
    let options: String = documents
        .iter()
        .map(|d| format!("<option value=\"{}\">{}</option>", d.url, d.name))
        .collect();
    let switch = if documents.len() > 1 {
        format!(
            "<label class=\"herald-version\">API version <select id=\"version\">{options}</select></label>"
        )
    } else {
        String::new()
    };
    let first = documents.first().map_or("/openapi.json", |d| d.url);
    let tag_order = serde_json::to_string(TAG_ORDER).unwrap_or_default();
    let operation_order = serde_json::to_string(OPERATION_ORDER).unwrap_or_default();
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Herald API docs</title>
<style>{style}</style>
<style>
  .herald-top {{ max-width: 1460px; margin: 0 auto; padding: 16px 20px 0; font-family: sans-serif; }}
  .herald-intro {{ background: #eef6ff; border: 1px solid #b6d4fe; border-radius: 4px; padding: 10px 16px; }}
  .herald-version {{ float: right; font-weight: bold; }}
</style>
<script>{script}</script>
</head>
<body>
<div class="herald-top">{switch}{INTRO}</div>
<div id="ui"></div>
<script>
  const tagOrder = {tag_order};
  const operationOrder = {operation_order};
  const methodRank = {{ post: 0, get: 1, put: 2, patch: 3, delete: 4 }};
  const rank = (list, value) => {{
    const i = list.indexOf(value);
    return i < 0 ? list.length : i;
  }};
  function show(url) {{
    window.ui = SwaggerUIBundle({{
      dom_id: "#ui",
      url: url,
      deepLinking: true,
      persistAuthorization: true,
      tagsSorter: (a, b) => rank(tagOrder, a) - rank(tagOrder, b) || a.localeCompare(b),
      operationsSorter: (a, b) => {{
        const id = (op) => op.get("operation").get("operationId") || "";
        return rank(operationOrder, id(a)) - rank(operationOrder, id(b))
          || rank(Object.keys(methodRank), a.get("method")) - rank(Object.keys(methodRank), b.get("method"))
          || a.get("path").length - b.get("path").length
          || a.get("path").localeCompare(b.get("path"));
      }},
    }});
  }}
  const select = document.getElementById("version");
  const wanted = new URLSearchParams(location.search).get("version");
  if (select) {{
    for (const option of select.options) if (option.text === wanted) select.value = option.value;
    select.addEventListener("change", () => {{
      const name = select.options[select.selectedIndex].text;
      history.replaceState(null, "", "?version=" + name);
      show(select.value);
    }});
    show(select.value);
  }} else {{
    show({first:?});
  }}
</script>
</body>
</html>
"##
    )
}

/// The two reading UIs besides Swagger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    Redoc,
    Scalar,
}

/// A page poem-openapi generated, showing the finished document instead of its raw one.
pub fn with_finished(page: String, raw: &str, finished: &str) -> String {
    page.replacen(raw, finished, 1)
}

/// Adds a version switch (links to `?version=<name>`) at the top of a reading page.
pub fn with_version_links(page: String, current: &str, documents: &[DocumentLink]) -> String {
    let links: Vec<String> = documents
        .iter()
        .map(|d| {
            if d.name == current {
                format!("<strong>{}</strong>", d.name)
            } else {
                format!("<a href=\"?version={0}\">{0}</a>", d.name)
            }
        })
        .collect();
    let bar = format!(
        "<div style=\"font-family:sans-serif;padding:8px 16px;border-bottom:1px solid #ddd\">API version: {}</div>",
        links.join(" · ")
    );
    match page.find("<body>") {
        Some(at) => {
            let mut page = page;
            page.insert_str(at + "<body>".len(), &bar);
            page
        }
        None => page,
    }
}

/// The text between the first `start` marker and the next `end` marker.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    text.split_once(start)
        .and_then(|(_, rest)| rest.split_once(end))
        .map_or("", |(inside, _)| inside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_reuses_the_bundle_and_offers_every_version() {
        let bundle = r#"<head><style charset="UTF-8">.css{}</style><script charset="UTF-8">var SwaggerUIBundle;</script></head>"#;
        let page = swagger_page(
            bundle,
            &[
                DocumentLink {
                    name: "v2",
                    url: "/v2/openapi.json",
                },
                DocumentLink {
                    name: "v1",
                    url: "/v1/openapi.json",
                },
            ],
        );
        assert!(page.contains(".css{}") && page.contains("var SwaggerUIBundle;"));
        assert!(page.contains("persistAuthorization: true"));
        let v2 = page.find("/v2/openapi.json").unwrap();
        let v1 = page.find("/v1/openapi.json").unwrap();
        assert!(v2 < v1, "v2 first");
    }
}
