//! Bearer authentication as handler parameters: `Auth` (required: 401 `UNAUTHENTICATED`
//! otherwise) and `MaybeAuth` (anonymous allowed, but a token that is present must be valid).
//! Both register the `BearerAuth` security scheme, so the spec and Swagger UI's Authorize button
//! know about it. The token is decoded once per request (`RequestContext::bearer`).

use std::sync::Arc;

use poem::{Request, RequestBody};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaSecurityScheme, Registry},
};

use super::{
    edge::{Bearer, RequestContext},
    problem::Problem,
};
use crate::{
    error::AppError,
    security::{jwt::Claims, rbac::Actor},
    state::AppState,
};

pub const SECURITY_SCHEME: &str = "BearerAuth";

/// A caller with a valid access token.
pub struct Auth(pub Claims);

impl Auth {
    pub fn actor(&self) -> Actor {
        self.0.actor()
    }
}

/// A caller who may be anonymous.
pub struct MaybeAuth(pub Option<Claims>);

impl MaybeAuth {
    pub fn actor(&self) -> Option<Actor> {
        self.0.as_ref().map(Claims::actor)
    }
}

fn register_scheme(registry: &mut Registry) {
    registry.create_security_scheme(
        SECURITY_SCHEME,
        MetaSecurityScheme {
            ty: "http",
            description: Some("An access token from `POST /v1/auth/login` or `/v1/auth/refresh`."),
            name: None,
            key_in: None,
            scheme: Some("bearer"),
            bearer_format: Some("JWT"),
            flows: None,
            openid_connect_url: None,
        },
    );
}

fn bearer(req: &Request) -> Result<Option<Claims>, Problem> {
    let (Some(ctx), Some(state)) = (req.data::<Arc<RequestContext>>(), req.data::<AppState>())
    else {
        return Err(Problem::from(AppError::internal("request context missing")));
    };
    match ctx.bearer(req.headers(), state) {
        Bearer::Absent => Ok(None),
        Bearer::Invalid => Err(Problem::from(AppError::Unauthenticated)),
        Bearer::Valid(claims) => Ok(Some(claims.clone())),
    }
}

impl<'a> ApiExtractor<'a> for Auth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        register_scheme(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SECURITY_SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _opts: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        match bearer(req)? {
            Some(claims) => Ok(Self(claims)),
            None => Err(Problem::from(AppError::Unauthenticated).into()),
        }
    }
}

impl<'a> ApiExtractor<'a> for MaybeAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        register_scheme(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SECURITY_SCHEME]
    }

    /// Documents `security: [{BearerAuth: []}, {}]`: the token is optional.
    fn has_security_fallback() -> bool {
        true
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _opts: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        Ok(Self(bearer(req)?))
    }
}
