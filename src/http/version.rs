//! API versions: each is served under its own path prefix (`/v1`, `/v2`) by the same binary, on
//! the same data. Operations that are the same in every version are written once, generic over
//! `ApiVersion`, and mounted once per version.

/// One API version: its name and path prefix.
pub trait ApiVersion: Send + Sync + 'static {
    /// `v1`, `v2`.
    const NAME: &'static str;
    /// `/v1`, `/v2`.
    const PREFIX: &'static str;
}

/// The released version.
pub struct V1;

/// The version under development.
pub struct V2;

impl ApiVersion for V1 {
    const NAME: &'static str = "v1";
    const PREFIX: &'static str = "/v1";
}

impl ApiVersion for V2 {
    const NAME: &'static str = "v2";
    const PREFIX: &'static str = "/v2";
}

/// Every version's name, oldest first.
pub const VERSIONS: &[&str] = &[V1::NAME, V2::NAME];

/// The version a request path belongs to (`/v2/posts` → `v2`), if any.
pub fn version_of(path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix('/')?;
    let name = rest.split('/').next()?;
    VERSIONS.iter().copied().find(|v| *v == name)
}

/// Whether the path is a version's `/auth/...` (register, login, refresh, logout).
pub fn is_auth_path(path: &str) -> bool {
    version_of(path).is_some_and(|v| path[1 + v.len()..].starts_with("/auth/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_version() {
        assert_eq!(version_of("/v1/posts"), Some("v1"));
        assert_eq!(version_of("/v2/auth/login"), Some("v2"));
        assert_eq!(version_of("/v2"), Some("v2"));
        assert_eq!(version_of("/v3/posts"), None);
        assert_eq!(version_of("/health"), None);
        assert_eq!(version_of("/v1x/posts"), None);
        assert!(is_auth_path("/v2/auth/login") && is_auth_path("/v1/auth/refresh"));
        assert!(!is_auth_path("/v1/posts") && !is_auth_path("/auth/login"));
    }
}
