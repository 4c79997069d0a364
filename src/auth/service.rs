//! Registration, login, refresh-token rotation with reuse detection, and logout.
//!
//! Refresh tokens are 256 random bits, handed out once and stored only as SHA-256 hashes. Each
//! login starts a family; each refresh replaces the presented token with a successor in the same
//! family. A token that was already replaced and is presented again means it leaked: every
//! refresh token of the user is revoked. Hashing never holds a database connection.

use std::net::IpAddr;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use diesel_async::AsyncConnection;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::repo::{self, NewRefreshToken};
use crate::{
    cache::ratelimit::Bucket,
    domain::text::DomainString,
    error::{AppError, AppResult},
    security::{
        jwt::TokenSubject,
        password,
        rbac::{Actor, Role},
    },
    state::AppState,
    users::{
        model::{Email, NewUserRow, Password, PersonName, UserRow, Username},
        repo as users_repo,
    },
};

/// What a successful login or refresh hands out.
pub struct Session {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: String,
    pub refresh_expires_in: u64,
    pub user: UserRow,
}

pub struct Registration {
    pub email: Email,
    pub username: Username,
    pub password: Password,
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
}

pub async fn register(state: &AppState, input: Registration) -> AppResult<UserRow> {
    let hash = state.passwords.hash(input.password.as_str()).await?;
    let now = Utc::now();
    let mut conn = state.db.conn().await?;
    let user = users_repo::insert(
        &mut conn,
        NewUserRow {
            id: Uuid::now_v7(),
            email: input.email.as_str(),
            username: input.username.as_str(),
            password_hash: &hash,
            first_name: input.first_name.as_ref().map(DomainString::as_str),
            last_name: input.last_name.as_ref().map(DomainString::as_str),
            role: Role::User.as_str(),
            created_at: now,
            updated_at: now,
        },
    )
    .await?;
    tracing::info!(event = "auth.register", user.id = %user.id, "account registered");
    Ok(user)
}

pub async fn login(
    state: &AppState,
    email: &Email,
    password: &str,
    ip: IpAddr,
) -> AppResult<Session> {
    let settings = &state.settings;
    // The attempt counts before the password is checked (N parallel guesses get exactly the
    // limit's worth of checks) and is given back once the password turns out right.
    let limit_key = format!("{ip}:{}", email.as_str().to_lowercase());
    let limited = settings.rate_limit_enabled;
    if limited {
        let decision = state
            .limiter
            .hit(Bucket::Login, &limit_key, settings.rate_limit_login, 1)
            .await;
        if !decision.allowed {
            tracing::warn!(event = "auth.login_throttled", client.address = %ip, "too many failed logins");
            crate::metrics::record_rate_limited(Bucket::Login.name());
            return Err(AppError::RateLimited(decision));
        }
    }

    let user = {
        let mut conn = state.db.conn().await?;
        users_repo::find_by_email(&mut conn, email.as_str()).await?
    };
    let verified = state
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    let Some(user) = user.filter(|_| verified) else {
        tracing::warn!(event = "auth.login_failed", client.address = %ip, "login failed");
        return Err(AppError::InvalidCredentials);
    };
    if limited {
        state
            .limiter
            .release(Bucket::Login, &limit_key, settings.rate_limit_login, 1)
            .await;
    }
    if !user.is_active {
        tracing::warn!(event = "auth.login_disabled", user.id = %user.id, client.address = %ip, "login to a disabled account");
        return Err(AppError::AccountDisabled);
    }
    if password::needs_rehash(&user.password_hash) {
        upgrade_hash(state, user.id, password);
    }
    let mut conn = state.db.conn().await?;
    let (refresh_token, _) = start_family(state, &mut conn, user.id).await?;
    drop(conn);
    tracing::info!(event = "auth.login", user.id = %user.id, client.address = %ip, "logged in");
    session(state, user, refresh_token)
}

/// Re-hashes a password stored with older parameters, after the login has been answered.
fn upgrade_hash(state: &AppState, user_id: Uuid, password: &str) {
    let (state, password) = (state.clone(), password.to_owned());
    tokio::spawn(async move {
        let upgraded = async {
            let hash = state.passwords.hash(&password).await?;
            let mut conn = state.db.conn().await?;
            users_repo::set_password_hash(&mut conn, user_id, &hash).await
        };
        if let Err(err) = upgraded.await {
            tracing::warn!(user.id = %user_id, error = %err, "could not upgrade a password hash");
        }
    });
}

/// What happened to a presented refresh token.
enum Rotation {
    Rotated { user: Box<UserRow>, token: String },
    Reused { user_id: Uuid },
}

pub async fn refresh(state: &AppState, presented: &str, ip: IpAddr) -> AppResult<Session> {
    let hash = hash_token(presented);
    let lifetime = refresh_lifetime(state)?;
    let mut conn = state.db.conn().await?;
    let rotation = conn
        .transaction::<_, AppError, _>(async |conn| {
            let now = Utc::now();
            let Some(row) = repo::find_for_update(conn, &hash).await? else {
                return Err(AppError::InvalidRefreshToken);
            };
            if row.replaced_by.is_some() {
                // Committed, not rolled back: the revocation must stick.
                repo::revoke_all_of_user(conn, row.user_id, now).await?;
                return Ok(Rotation::Reused {
                    user_id: row.user_id,
                });
            }
            if row.revoked_at.is_some() || row.expires_at <= now {
                return Err(AppError::InvalidRefreshToken);
            }
            let user = users_repo::find(conn, row.user_id)
                .await?
                .filter(|u| u.is_active)
                .ok_or(AppError::InvalidRefreshToken)?;
            let (token, successor) = new_token();
            repo::insert(
                conn,
                NewRefreshToken {
                    id: successor,
                    user_id: user.id,
                    family_id: row.family_id,
                    token_hash: &hash_token(&token),
                    expires_at: now + lifetime,
                    created_at: now,
                },
            )
            .await?;
            repo::mark_replaced(conn, row.id, successor).await?;
            Ok(Rotation::Rotated {
                user: Box::new(user),
                token,
            })
        })
        .await?;
    drop(conn);
    match rotation {
        Rotation::Rotated { user, token } => {
            tracing::info!(event = "auth.refresh", user.id = %user.id, client.address = %ip, "refresh token rotated");
            session(state, *user, token)
        }
        Rotation::Reused { user_id } => {
            tracing::warn!(event = "auth.refresh_reuse", user.id = %user_id, client.address = %ip, "refresh token reused: all sessions of the user revoked");
            Err(AppError::RefreshTokenReused)
        }
    }
}

/// Revokes the presented refresh token's family, or every refresh token of the caller when none
/// is presented. Access tokens stay valid until they expire (they are not tracked).
pub async fn logout(
    state: &AppState,
    actor: &Actor,
    presented: Option<&str>,
    ip: IpAddr,
) -> AppResult<()> {
    let now = Utc::now();
    let mut conn = state.db.conn().await?;
    let family = match presented {
        Some(token) => repo::find(&mut conn, &hash_token(token))
            .await?
            .filter(|row| row.user_id == actor.id)
            .map(|row| row.family_id),
        None => None,
    };
    let revoked = match family {
        Some(family) => repo::revoke_family(&mut conn, family, now).await?,
        None => repo::revoke_all_of_user(&mut conn, actor.id, now).await?,
    };
    tracing::info!(event = "auth.logout", user.id = %actor.id, client.address = %ip, revoked, "logged out");
    Ok(())
}

/// Housekeeping: deletes refresh tokens that can never be used again.
pub async fn purge_refresh_tokens(state: &AppState) -> AppResult<usize> {
    let mut conn = state.db.conn().await?;
    repo::purge(&mut conn, Utc::now()).await
}

async fn start_family(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    user_id: Uuid,
) -> AppResult<(String, Uuid)> {
    let now = Utc::now();
    let (token, id) = new_token();
    repo::insert(
        conn,
        NewRefreshToken {
            id,
            user_id,
            family_id: Uuid::now_v7(),
            token_hash: &hash_token(&token),
            expires_at: now + refresh_lifetime(state)?,
            created_at: now,
        },
    )
    .await?;
    Ok((token, id))
}

fn session(state: &AppState, user: UserRow, refresh_token: String) -> AppResult<Session> {
    let access_token = state.jwt.issue(&TokenSubject {
        id: user.id,
        email: &user.email,
        username: &user.username,
        role: user.role,
    })?;
    Ok(Session {
        access_token,
        expires_in: state.jwt.lifetime_secs(),
        refresh_token,
        refresh_expires_in: state.settings.jwt_refresh_expiration.as_secs(),
        user,
    })
}

fn refresh_lifetime(state: &AppState) -> AppResult<chrono::Duration> {
    chrono::Duration::from_std(state.settings.jwt_refresh_expiration)
        .map_err(|_| AppError::internal("JWT_REFRESH_EXPIRATION out of range"))
}

/// A fresh opaque token (256 random bits, base64url) and the id of its row.
fn new_token() -> (String, Uuid) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    (URL_SAFE_NO_PAD.encode(bytes), Uuid::now_v7())
}

fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let (a, _) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_token(&a).len(), 32);
        assert_eq!(hash_token(&a), hash_token(&a));
    }
}
