//! The version-independent runtime under every generated client: the builder, the attempt
//! loop ([`Runtime::execute`]), retries, the token session, pagination, TLS and results.

mod auth;
mod exec;
mod paginate;
mod results;
mod retry;
mod tls;

use std::{fmt, marker::PhantomData, sync::Arc, time::Duration};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

pub use auth::{Session, TokenHook, Tokens};
pub use exec::Runtime;
pub use paginate::{PageResult, Paginated, next_cursor};
pub use results::{Conditional, StatusResults, etag, problem};
pub use retry::{Outcome, RetryPolicy, Safety, backoff, next_delay, parse_retry_after, retryable};

use exec::Config;

/// `herald-sdk-rust/<version> (reqwest/0.13; <os>)`.
pub fn telemetry() -> String {
    format!(
        "herald-sdk-rust/{} (reqwest/0.13; {})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS
    )
}

/// What the runtime needs from a generated client of one API version.
pub trait VersionClient: Sized {
    /// Operations (by id) that honour an `Idempotency-Key`.
    const IDEMPOTENCY_KEY_OPERATIONS: &'static [&'static str];
    /// The path of the token refresh.
    const REFRESH_PATH: &'static str;
    fn from_parts(base_url: &str, http: reqwest::Client, runtime: Runtime) -> Self;
}

/// Why a client could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// A header name or value given to [`Builder::header`] is invalid.
    Header(String),
    /// The TLS set-up failed (e.g. an invalid root certificate).
    Tls(String),
    /// reqwest refused the configuration.
    Http(reqwest::Error),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(h) => write!(f, "invalid header: {h}"),
            Self::Tls(e) => write!(f, "TLS set-up failed: {e}"),
            Self::Http(e) => write!(f, "HTTP client set-up failed: {e}"),
        }
    }
}

impl std::error::Error for BuildError {}

/// Configures a client: `Client::builder(url).timeout(..).retry(..).tokens(..).build()?`.
pub struct Builder<C> {
    base_url: String,
    timeout: Duration,
    connect_timeout: Duration,
    headers: HeaderMap,
    header_error: Option<String>,
    retry: RetryPolicy,
    telemetry: bool,
    tokens: Option<Tokens>,
    hook: Option<TokenHook>,
    refresh_before: Duration,
    session: Option<Session>,
    roots: Vec<Vec<u8>>,
    client: PhantomData<fn() -> C>,
}

impl<C: VersionClient> Builder<C> {
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            headers: HeaderMap::new(),
            header_error: None,
            retry: RetryPolicy::default(),
            telemetry: true,
            tokens: None,
            hook: None,
            refresh_before: Duration::from_secs(30),
            session: None,
            roots: Vec::new(),
            client: PhantomData,
        }
    }

    /// The timeout of one attempt (default 10 s); [`RetryPolicy::max_elapsed`] bounds a call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest wait for a connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// A header sent with every request. An invalid one fails [`Builder::build`].
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(value)) => {
                self.headers.insert(name, value);
            }
            _ => self.header_error = Some(name.to_string()),
        }
        self
    }

    /// How calls are retried (default: [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Whether to send `X-Telemetry` (default yes): SDK version, HTTP stack and OS only.
    pub fn telemetry(mut self, on: bool) -> Self {
        self.telemetry = on;
        self
    }

    /// Tokens to start with (e.g. from a store); a login through the client sets them too.
    pub fn tokens(mut self, tokens: Tokens) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Called whenever the tokens change (login, refresh), with `None` when a refresh was
    /// refused: persist them here.
    pub fn on_tokens(mut self, hook: impl Fn(Option<&Tokens>) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Refresh this long before the access token expires (default 30 s).
    pub fn refresh_before(mut self, ahead: Duration) -> Self {
        self.refresh_before = ahead;
        self
    }

    /// Share the tokens of another client (e.g. one of another API version).
    pub fn session(mut self, session: Session) -> Self {
        self.session = Some(session);
        self
    }

    /// Also trust this root certificate (DER), e.g. a private CA's.
    pub fn add_root_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.roots.push(der.into());
        self
    }

    pub fn build(self) -> Result<C, BuildError> {
        if let Some(name) = self.header_error {
            return Err(BuildError::Header(name));
        }
        let builder = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .default_headers(self.headers)
            .user_agent(concat!("herald-client-rust/", env!("CARGO_PKG_VERSION")));
        let http = tls::configure(builder, &self.roots)?
            .build()
            .map_err(BuildError::Http)?;
        let session = self
            .session
            .unwrap_or_else(|| Session::new(self.tokens, self.hook, self.refresh_before));
        let config = Config {
            timeout: self.timeout,
            retry: self.retry,
            telemetry: self
                .telemetry
                .then(|| HeaderValue::try_from(telemetry()).ok())
                .flatten(),
            keyed: C::IDEMPOTENCY_KEY_OPERATIONS,
            refresh_path: C::REFRESH_PATH,
        };
        let runtime = Runtime {
            session,
            config: Arc::new(config),
        };
        Ok(C::from_parts(&self.base_url, http, runtime))
    }
}

impl Runtime {
    /// The same settings with another per-attempt timeout.
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        self.with(|c| c.timeout = timeout)
    }

    /// The same settings with another retry policy.
    pub fn with_retry(&self, retry: RetryPolicy) -> Self {
        self.with(|c| c.retry = retry)
    }

    fn with(&self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = (*self.config).clone();
        change(&mut config);
        Self {
            session: self.session.clone(),
            config: Arc::new(config),
        }
    }
}
