//! The composition, at the top of the house: which endpoint structs form the v1 and v2
//! documents, and the routes that serve them, their documents and the docs pages. Everything
//! below (resources, the HTTP kit) knows nothing of this module.
//!
//! Operations that are the same in every version (auth, users, airports) are generic over
//! `http::version::ApiVersion` and mounted once per version; posts have one view per version
//! (`posts::v1`, `posts::v2`) over one service. Health is not versioned: it is served once and
//! described in both documents.

pub mod deprecation;
pub mod described;
pub mod docs;
pub mod spec;

use std::sync::Arc;

use bytes::Bytes;
use poem::{
    Endpoint, EndpointExt, IntoEndpoint, Response, Route, endpoint::make_sync, http::header,
};

use crate::{
    airports::api::AirportsApi,
    auth::api::AuthApi,
    domain::representation::Representation,
    error::AppResult,
    events::api::EventsApi,
    events::{model::Event, service::EventView},
    exports::api::ExportsApi,
    health::api::HealthApi,
    http::{
        edge::PathHeaders,
        rate_limit::RateLimit,
        routes::RouteTable,
        version::{V1, V2},
    },
    metrics,
    posts::{model::Post, service::PostView, v1::ViewV1, v2::ViewV2},
    posts::{v1::PostsApi, v2::PostsV2Api},
    state::AppState,
    state::Renderers,
    users::api::UsersApi,
    webhooks::api::WebhooksApi,
};
use docs::DocumentLink;
use spec::Version;

/// The operations of each version's routes (health is routed once, separately).
type V1Operations = (
    AuthApi<V1>,
    UsersApi<V1>,
    PostsApi,
    AirportsApi<V1>,
    EventsApi<V1>,
    WebhooksApi<V1>,
    ExportsApi<V1>,
);
type V2Operations = (
    AuthApi<V2>,
    UsersApi<V2>,
    PostsV2Api,
    AirportsApi<V2>,
    EventsApi<V2>,
    WebhooksApi<V2>,
    ExportsApi<V2>,
);
/// What each version's document describes.
pub type V1Apis = (V1Operations, HealthApi);
pub type V2Apis = (V2Operations, HealthApi);

fn v1_operations() -> V1Operations {
    (
        AuthApi::default(),
        UsersApi::default(),
        PostsApi,
        AirportsApi::default(),
        EventsApi::default(),
        WebhooksApi::default(),
        ExportsApi::default(),
    )
}

fn v2_operations() -> V2Operations {
    (
        AuthApi::default(),
        UsersApi::default(),
        PostsV2Api,
        AirportsApi::default(),
        EventsApi::default(),
        WebhooksApi::default(),
        ExportsApi::default(),
    )
}

/// The representations background work writes in (`state::Renderers`): each version's views.
pub fn renderers() -> Renderers {
    fn event(event: &Event, representation: Representation) -> AppResult<Bytes> {
        match representation {
            Representation::V1 => <V1 as EventView>::render_event(event),
            Representation::V2 => <V2 as EventView>::render_event(event),
        }
    }
    fn post(post: &Post, representation: Representation) -> AppResult<Bytes> {
        match representation {
            Representation::V1 => ViewV1::render_post(post),
            Representation::V2 => ViewV2::render_post(post),
        }
    }
    Renderers { event, post }
}

pub fn v1_apis() -> V1Apis {
    (v1_operations(), HealthApi)
}

pub fn v2_apis() -> V2Apis {
    (v2_operations(), HealthApi)
}

/// The endpoint that routes `apis` (their document is built elsewhere: `spec`).
fn service<T: poem_openapi::OpenApi + 'static>(apis: T) -> impl Endpoint<Output = Response> {
    poem_openapi::OpenApiService::new(apis, "Herald API", "routing").into_endpoint()
}

/// The documents the docs pages offer, the newest first.
const DOCUMENTS: &[DocumentLink] = &[
    DocumentLink {
        name: "v2",
        url: "/v2/openapi.json",
    },
    DocumentLink {
        name: "v1",
        url: "/v1/openapi.json",
    },
];

/// What the edge middleware (`app::routes`) wraps: the API, the documents, the docs pages and
/// `/metrics`; the route table of both documents (`Allow`, route labels); and the headers some
/// paths carry (v1 posts' deprecation).
pub struct Routes {
    pub route: Route,
    pub table: RouteTable,
    pub path_headers: PathHeaders,
}

pub fn routes(state: &AppState) -> Routes {
    let v1 = spec::document(Version::V1);
    let v2 = spec::document(Version::V2);
    let table = RouteTable::from_specs(&[&v1, &v2]);
    let v1_json = Bytes::from(spec::json(&v1));
    let v1_yaml = Bytes::from(spec::yaml(&v1));
    let v2_json = Bytes::from(spec::json(&v2));
    let v2_yaml = Bytes::from(spec::yaml(&v2));
    let finished = Arc::new([spec::json(&v1), spec::json(&v2)]);

    let route = Route::new()
        // `/openapi.*` stays the v1 document, as released.
        .at(
            "/openapi.json",
            document(v1_json.clone(), "application/json"),
        )
        .at(
            "/openapi.yaml",
            document(v1_yaml.clone(), "application/yaml"),
        )
        .at("/v1/openapi.json", document(v1_json, "application/json"))
        .at("/v1/openapi.yaml", document(v1_yaml, "application/yaml"))
        .at("/v2/openapi.json", document(v2_json, "application/json"))
        .at("/v2/openapi.yaml", document(v2_yaml, "application/yaml"))
        .at(
            "/docs",
            make_sync(|_| {
                html(docs::swagger_page(
                    &spec::service_v2().swagger_ui_html(),
                    DOCUMENTS,
                ))
            }),
        )
        .at("/redoc", reader_page(finished.clone(), docs::Reader::Redoc))
        .at("/scalar", reader_page(finished, docs::Reader::Scalar))
        .at(
            "/metrics",
            poem::endpoint::make(|req: poem::Request| async move {
                let body = req
                    .data::<AppState>()
                    .map(metrics::render)
                    .unwrap_or_default();
                Response::builder()
                    .content_type("text/plain; version=0.0.4")
                    .body(body)
            }),
        )
        .nest_no_strip("/v1", service(v1_operations()).with(RateLimit))
        .nest_no_strip("/v2", service(v2_operations()).with(RateLimit))
        .nest_no_strip("/health", service(HealthApi));
    Routes {
        route,
        table,
        path_headers: deprecation::headers(&state.settings).into_iter().collect(),
    }
}

fn document(body: Bytes, content_type: &'static str) -> impl Endpoint<Output = Response> {
    make_sync(move |_| {
        Response::builder()
            .header(header::CONTENT_TYPE, content_type)
            .body(body.clone())
    })
}

fn html(page: String) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(page)
}

/// ReDoc or Scalar over `?version=v1|v2` (v2 by default), built when asked for.
fn reader_page(
    finished: Arc<[String; 2]>,
    reader: docs::Reader,
) -> impl Endpoint<Output = Response> {
    make_sync(move |req| {
        let version = match req.uri().query().unwrap_or_default() {
            q if q.split('&').any(|p| p == "version=v1") => Version::V1,
            _ => Version::V2,
        };
        let page = match (version, reader) {
            (Version::V1, docs::Reader::Redoc) => docs::with_finished(
                spec::service_v1().redoc_html(),
                &spec::service_v1().spec(),
                &finished[0],
            ),
            (Version::V1, docs::Reader::Scalar) => docs::with_finished(
                spec::service_v1().scalar_html(),
                &spec::service_v1().spec(),
                &finished[0],
            ),
            (Version::V2, docs::Reader::Redoc) => docs::with_finished(
                spec::service_v2().redoc_html(),
                &spec::service_v2().spec(),
                &finished[1],
            ),
            (Version::V2, docs::Reader::Scalar) => docs::with_finished(
                spec::service_v2().scalar_html(),
                &spec::service_v2().spec(),
                &finished[1],
            ),
        };
        html(docs::with_version_links(page, version.name(), DOCUMENTS))
    })
}
