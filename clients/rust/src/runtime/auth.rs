//! The session: the access token every request carries, refreshed before it expires and after a
//! 401, one refresh at a time. Refresh tokens rotate and the server takes a second concurrent
//! refresh with the same token for theft (it revokes every session of the user), so every task
//! that finds the token stale waits for the one refresh in flight instead of starting its own.
//!
//! The Rust SDK runs on servers: it keeps the refresh token and sends it in the body
//! (`{ "refreshToken": ... }`). Browsers use the TypeScript SDK's cookie mode.

use std::{
    fmt,
    future::Future,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use serde::Deserialize;

/// The tokens of a signed-in session.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    pub access_token: String,
    /// Without one, the session cannot refresh.
    pub refresh_token: Option<String>,
    /// When the access token expires (from `expiresIn`), if known.
    pub expires_at: Option<Instant>,
}

impl fmt::Debug for Tokens {
    /// Never prints the tokens themselves.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Tokens {
    /// An access token alone: sent, never refreshed.
    pub fn access(token: impl Into<String>) -> Self {
        Self {
            access_token: token.into(),
            refresh_token: None,
            expires_at: None,
        }
    }
}

/// The fields of a login or refresh response the session reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenResponse {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
}

impl From<TokenResponse> for Tokens {
    fn from(response: TokenResponse) -> Self {
        Self {
            access_token: response.access_token,
            refresh_token: response.refresh_token,
            expires_at: response
                .expires_in
                .map(|s| Instant::now() + Duration::from_secs(s)),
        }
    }
}

/// Called with the new tokens after a login or refresh, or `None` once a refresh was refused.
pub type TokenHook = Arc<dyn Fn(Option<&Tokens>) + Send + Sync>;

/// The shared token state of one or more clients (clones share it).
#[derive(Clone, Default)]
pub struct Session(Arc<Inner>);

#[derive(Default)]
struct Inner {
    state: RwLock<State>,
    refreshing: tokio::sync::Mutex<()>,
    hook: Option<TokenHook>,
    refresh_before: Duration,
}

#[derive(Default)]
struct State {
    tokens: Option<Tokens>,
    generation: u64,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("tokens", &self.tokens())
            .finish()
    }
}

/// What a refresh attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refreshed {
    /// New tokens are there (this task's refresh, or another's).
    Yes,
    /// The server refused the refresh token: signed out.
    Refused,
    /// No refresh token, or the refresh request failed.
    No,
}

impl Session {
    /// A session starting with `tokens`, calling `hook` when they change and refreshing
    /// `refresh_before` ahead of expiry.
    pub fn new(tokens: Option<Tokens>, hook: Option<TokenHook>, refresh_before: Duration) -> Self {
        Self(Arc::new(Inner {
            state: RwLock::new(State {
                tokens,
                generation: 0,
            }),
            refreshing: tokio::sync::Mutex::new(()),
            hook,
            refresh_before,
        }))
    }

    /// The current tokens, if signed in.
    pub fn tokens(&self) -> Option<Tokens> {
        self.0.state.read().ok().and_then(|s| s.tokens.clone())
    }

    /// Replaces the tokens (`None` signs out) and calls the hook.
    pub fn set(&self, tokens: Option<Tokens>) {
        if let Ok(mut state) = self.0.state.write() {
            state.tokens = tokens.clone();
            state.generation += 1;
        }
        if let Some(hook) = &self.0.hook {
            hook(tokens.as_ref());
        }
    }

    fn snapshot(&self) -> (Option<Tokens>, u64) {
        self.0
            .state
            .read()
            .map(|s| (s.tokens.clone(), s.generation))
            .unwrap_or_default()
    }

    /// The token to send now, refreshed first (through `refresh`) when it is about to expire.
    pub(crate) async fn access_token<F, Fut>(&self, refresh: F) -> Option<String>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<Option<Tokens>, ()>>,
    {
        let (tokens, _) = self.snapshot();
        let tokens = tokens?;
        let expiring = tokens
            .expires_at
            .is_some_and(|at| Instant::now() + self.0.refresh_before >= at);
        if expiring && tokens.refresh_token.is_some() {
            self.refresh(&tokens.access_token, refresh).await;
        }
        self.tokens().map(|t| t.access_token)
    }

    /// Refreshes unless the token the caller found stale was replaced meanwhile; waits for the
    /// refresh in flight if there is one. `refresh` sends the refresh token and returns the new
    /// tokens, `Ok(None)` when the server refused it, `Err` when the request failed.
    pub(crate) async fn refresh<F, Fut>(&self, stale: &str, refresh: F) -> Refreshed
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<Option<Tokens>, ()>>,
    {
        let _one_at_a_time = self.0.refreshing.lock().await;
        let (tokens, generation) = self.snapshot();
        let Some(tokens) = tokens else {
            return Refreshed::Refused;
        };
        if tokens.access_token != stale {
            return Refreshed::Yes; // refreshed by another task while this one waited
        }
        let Some(refresh_token) = tokens.refresh_token else {
            return Refreshed::No;
        };
        match refresh(refresh_token).await {
            Ok(Some(new)) => {
                if self.snapshot().1 == generation {
                    self.set(Some(new));
                }
                Refreshed::Yes
            }
            Ok(None) => {
                if self.snapshot().1 == generation {
                    self.set(None);
                }
                Refreshed::Refused
            }
            Err(()) => Refreshed::No,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn tokens(access: &str, refresh: &str, expires_in: Option<Duration>) -> Tokens {
        Tokens {
            access_token: access.into(),
            refresh_token: Some(refresh.into()),
            expires_at: expires_in.map(|d| Instant::now() + d),
        }
    }

    #[tokio::test]
    async fn twenty_concurrent_refreshes_of_one_stale_token_make_one_request() {
        let changes = Arc::new(AtomicUsize::new(0));
        let seen = changes.clone();
        let hook: TokenHook = Arc::new(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        let session = Session::new(Some(tokens("old", "r1", None)), Some(hook), Duration::ZERO);
        let requests = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let session = session.clone();
                let requests = requests.clone();
                tokio::spawn(async move {
                    session
                        .refresh("old", |refresh_token| async move {
                            assert_eq!(refresh_token, "r1");
                            requests.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok(Some(tokens("new", "r2", None)))
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Refreshed::Yes);
        }
        assert_eq!(requests.load(Ordering::SeqCst), 1);
        assert_eq!(changes.load(Ordering::SeqCst), 1);
        assert_eq!(
            session.tokens().unwrap().refresh_token.as_deref(),
            Some("r2")
        );
    }

    #[tokio::test]
    async fn refreshes_before_expiry_once_for_many_callers() {
        let session = Session::new(
            Some(tokens("old", "r1", Some(Duration::from_secs(10)))),
            None,
            Duration::from_secs(30),
        );
        let requests = Arc::new(AtomicUsize::new(0));
        let calls = (0..20).map(|_| {
            let requests = requests.clone();
            let session = session.clone();
            async move {
                session
                    .access_token(|_| async move {
                        requests.fetch_add(1, Ordering::SeqCst);
                        Ok(Some(tokens("new", "r2", Some(Duration::from_secs(900)))))
                    })
                    .await
            }
        });
        let got = futures_util::future::join_all(calls).await;
        assert!(got.iter().all(|t| t.as_deref() == Some("new")));
        assert_eq!(requests.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refused_refresh_signs_out_and_a_missing_refresh_token_does_not_try() {
        let signed_out = Arc::new(AtomicUsize::new(0));
        let seen = signed_out.clone();
        let hook: TokenHook = Arc::new(move |t| {
            if t.is_none() {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        });
        let session = Session::new(Some(tokens("old", "r1", None)), Some(hook), Duration::ZERO);
        let refused = session.refresh("old", |_| async { Ok(None) }).await;
        assert_eq!(refused, Refreshed::Refused);
        assert!(session.tokens().is_none());
        assert_eq!(signed_out.load(Ordering::SeqCst), 1);

        let session = Session::new(Some(Tokens::access("old")), None, Duration::ZERO);
        let tried = session
            .refresh("old", |_| async { panic!("no refresh token: no request") })
            .await;
        assert_eq!(tried, Refreshed::No);
    }

    #[test]
    fn debug_output_never_shows_tokens() {
        let shown = format!(
            "{:?}",
            Session::new(
                Some(tokens("secret-a", "secret-r", None)),
                None,
                Duration::ZERO
            )
        );
        assert!(!shown.contains("secret"), "{shown}");
    }
}
