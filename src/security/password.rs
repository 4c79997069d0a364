//! Password hashing: argon2id at one of OWASP's recommended settings (7 MiB, 5 passes, 1 lane:
//! the same defence as 19 MiB × 2 passes, in a third of the memory), always on the blocking pool
//! and never more at once than `PASSWORD_HASH_CONCURRENCY`, so a login flood queues here instead
//! of stalling the async workers that serve everything else.
//!
//! Verifications reuse a working-memory buffer per permit instead of allocating (and
//! page-faulting in) 7 MiB each time. Hashes made with other parameters still verify, and
//! `needs_rehash` tells the login to upgrade them.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHasher as _, Version,
    password_hash::phc::{Output, PasswordHash},
};
use tokio::sync::{OnceCell, Semaphore};

use crate::error::AppError;

/// OWASP's "m=7168 (7 MiB), t=5, p=1" argon2id configuration.
const MEMORY_KIB: u32 = 7 * 1024;
const PASSES: u32 = 5;
const LANES: u32 = 1;

fn params() -> Params {
    // Constant, valid arguments: the builder cannot refuse them.
    Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap_or_default()
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Working memory for verifications, at most one buffer per permit.
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Hash of a random password: unknown emails are verified against it so that a login's
    /// timing does not reveal whether the account exists.
    dummy_hash: Arc<OnceCell<String>>,
    verifications: Arc<AtomicU64>,
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            buffers: Arc::new(Mutex::new(Vec::new())),
            dummy_hash: Arc::new(OnceCell::new()),
            verifications: Arc::new(AtomicU64::new(0)),
        }
    }

    pub async fn hash(&self, password: &str) -> Result<String, AppError> {
        let password = password.to_owned();
        let span = crate::child_span!("argon2.hash");
        tracing::Instrument::instrument(self.blocking(move |_| hash_now(&password)), span).await?
    }

    /// Checks `password` against `hash`, or against the dummy hash when there is no account
    /// (the answer is then always `false`, after the same amount of work).
    pub async fn verify(&self, password: &str, hash: Option<String>) -> Result<bool, AppError> {
        let (hash, real) = match hash {
            Some(hash) => (hash, true),
            None => (self.dummy_hash().await?, false),
        };
        let password = password.to_owned();
        let span = crate::child_span!("argon2.verify");
        let matches = tracing::Instrument::instrument(
            self.blocking(move |memory| verify_now(&password, &hash, memory)),
            span,
        )
        .await?;
        self.verifications.fetch_add(1, Ordering::Relaxed);
        Ok(real && matches)
    }

    /// How many verifications ran (real or dummy): the same count for every failed login is
    /// what keeps unknown emails from answering faster.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    async fn dummy_hash(&self) -> Result<String, AppError> {
        self.dummy_hash
            .get_or_try_init(|| async {
                let random = uuid::Uuid::new_v4().to_string();
                self.blocking(move |_| hash_now(&random)).await?
            })
            .await
            .cloned()
    }

    /// Runs `work` on the blocking pool under a permit, lending it a memory buffer.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| AppError::internal("password hasher closed"))?;
        let mut memory = self
            .buffers
            .lock()
            .ok()
            .and_then(|mut buffers| buffers.pop())
            .unwrap_or_default();
        let (result, memory) = tokio::task::spawn_blocking(move || {
            let result = work(&mut memory);
            (result, memory)
        })
        .await
        .map_err(|e| AppError::internal_from("password hashing task failed", e))?;
        if let Ok(mut buffers) = self.buffers.lock() {
            buffers.push(memory);
        }
        Ok(result)
    }
}

/// Whether `hash` was made with other parameters than today's (then re-hash it on login).
pub fn needs_rehash(hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return true;
    };
    let current = params();
    parsed.algorithm.as_str() != "argon2id"
        || Params::try_from(&parsed).map_or(true, |p| {
            p.m_cost() != current.m_cost()
                || p.t_cost() != current.t_cost()
                || p.p_cost() != current.p_cost()
        })
}

/// Hashes with today's parameters on the calling thread (the service uses `PasswordHasher`).
pub fn hash_now(password: &str) -> Result<String, AppError> {
    argon2()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| AppError::internal(format!("hashing a password: {e}")))
}

/// Recomputes the hash with the parameters and salt stored in `hash`, in `memory`, and compares
/// in constant time.
pub fn verify_now(password: &str, hash: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) = (
        Params::try_from(&parsed),
        Algorithm::try_from(parsed.algorithm.as_str()),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = [0u8; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut *out,
        &mut memory[..blocks],
    );
    computed.is_ok() && Output::new(out).is_ok_and(|out| out == *expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_password() {
        let hasher = PasswordHasher::new(2);
        let hash = hasher.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"));
        assert!(
            hasher
                .verify("correct horse", Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!hasher.verify("wrong horse", Some(hash)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        let hasher = PasswordHasher::new(1);
        assert!(!hasher.verify("anything", None).await.unwrap());
    }

    #[test]
    fn hashes_made_with_other_parameters_verify_and_want_a_rehash() {
        // argon2's defaults (19 MiB, 2 passes): what accounts hashed before this change hold.
        let legacy = Argon2::default()
            .hash_password(b"old password")
            .unwrap()
            .to_string();
        let mut memory = Vec::new();
        assert!(verify_now("old password", &legacy, &mut memory));
        assert!(!verify_now("other", &legacy, &mut memory));
        assert!(needs_rehash(&legacy));
        let current = hash_now("new password").unwrap();
        assert!(!needs_rehash(&current));
        assert!(
            verify_now("new password", &current, &mut memory),
            "a larger buffer is reused"
        );
    }

    #[test]
    fn a_malformed_hash_does_not_verify() {
        assert!(!verify_now("x", "not-a-phc-string", &mut Vec::new()));
        assert!(needs_rehash("not-a-phc-string"));
    }
}
