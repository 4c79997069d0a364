//! Password hashing: argon2id at OWASP's recommended parameters (19 MiB, 2 passes, 1 lane),
//! always on the blocking pool and never more at once than `PASSWORD_HASH_CONCURRENCY`, so a
//! login flood queues here instead of stalling the async workers that serve everything else.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::{OnceCell, Semaphore};

use crate::error::AppError;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Hash of a random password: unknown emails are verified against it so that a login's
    /// timing does not reveal whether the account exists.
    dummy_hash: Arc<OnceCell<String>>,
    verifications: Arc<AtomicU64>,
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: Arc::new(OnceCell::new()),
            verifications: Arc::new(AtomicU64::new(0)),
        }
    }

    pub async fn hash(&self, password: &str) -> Result<String, AppError> {
        let password = password.to_owned();
        self.blocking(move || hash_now(&password)).await?
    }

    /// Checks `password` against `hash`, or against the dummy hash when there is no account
    /// (the answer is then always `false`, after the same amount of work).
    pub async fn verify(&self, password: &str, hash: Option<String>) -> Result<bool, AppError> {
        let (hash, real) = match hash {
            Some(hash) => (hash, true),
            None => (self.dummy_hash().await?, false),
        };
        let password = password.to_owned();
        let matches = self.blocking(move || verify_now(&password, &hash)).await?;
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
                self.blocking(move || hash_now(&random)).await?
            })
            .await
            .cloned()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| AppError::internal("password hasher closed"))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AppError::internal(format!("password hashing task failed: {e}")))
    }
}

/// argon2id with the crate defaults, which are OWASP's first recommendation.
fn hash_now(password: &str) -> Result<String, AppError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| AppError::internal(format!("hashing a password: {e}")))
}

fn verify_now(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_password() {
        let hasher = PasswordHasher::new(2);
        let hash = hasher.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
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
    fn a_malformed_hash_does_not_verify() {
        assert!(!verify_now("x", "not-a-phc-string"));
    }
}
