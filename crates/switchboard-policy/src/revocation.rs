//! Revoked token ids (`jti`): a JWT whose id is on the list is refused until it would have
//! expired anyway.
//!
//! Two lists: [`MemoryRevocations`] for one replica, and [`RedisRevocations`], shared by every
//! replica that points at the same Redis (`switchboard gateway revoke` writes to it). Each
//! entry lives until the token's `exp` (or the time given), so the list never grows without
//! bound. Ids from the config (`security.jwt.revoked`) are checked by the authenticator itself.

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    pin::Pin,
    sync::Mutex,
    time::{Duration, SystemTime},
};

use redis::AsyncCommands;

/// The longest token id accepted; longer ones are refused as malformed before any lookup.
pub const MAX_TOKEN_ID_BYTES: usize = 256;

/// The most ids one in-memory list keeps (expired ones are dropped first).
pub const MAX_MEMORY_ENTRIES: usize = 100_000;

pub type RevocationFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, RevocationError>> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error("the revocation list in Redis cannot be used: {0}")]
    Redis(#[source] redis::RedisError),
    #[error("a token id must have 1 to {MAX_TOKEN_ID_BYTES} bytes")]
    BadId,
    #[error(
        "the in-memory revocation list is full ({MAX_MEMORY_ENTRIES} ids that have not expired)"
    )]
    Full,
}

/// Where revoked token ids are kept.
pub trait Revocations: Send + Sync + fmt::Debug {
    /// Whether `jti` is revoked now.
    fn is_revoked<'a>(&'a self, jti: &'a str) -> RevocationFuture<'a, bool>;
    /// Revoke `jti` until `until` (the token's `exp`; later it is refused as expired anyway).
    fn revoke<'a>(&'a self, jti: &'a str, until: SystemTime) -> RevocationFuture<'a, ()>;
}

fn check_id(jti: &str) -> Result<(), RevocationError> {
    if jti.is_empty() || jti.len() > MAX_TOKEN_ID_BYTES {
        return Err(RevocationError::BadId);
    }
    Ok(())
}

/// One replica's list.
#[derive(Debug, Default)]
pub struct MemoryRevocations {
    revoked: Mutex<HashMap<String, SystemTime>>,
}

impl MemoryRevocations {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Revocations for MemoryRevocations {
    fn is_revoked<'a>(&'a self, jti: &'a str) -> RevocationFuture<'a, bool> {
        Box::pin(async move {
            let revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
            Ok(revoked
                .get(jti)
                .is_some_and(|until| *until > SystemTime::now()))
        })
    }

    fn revoke<'a>(&'a self, jti: &'a str, until: SystemTime) -> RevocationFuture<'a, ()> {
        Box::pin(async move {
            check_id(jti)?;
            let mut revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
            if revoked.len() >= MAX_MEMORY_ENTRIES {
                let now = SystemTime::now();
                revoked.retain(|_, until| *until > now);
                if revoked.len() >= MAX_MEMORY_ENTRIES {
                    return Err(RevocationError::Full);
                }
            }
            let entry = revoked.entry(jti.to_owned()).or_insert(until);
            *entry = (*entry).max(until);
            Ok(())
        })
    }
}

/// The list every replica shares: one Redis key per id, expiring with the token.
pub struct RedisRevocations {
    connection: redis::aio::ConnectionManager,
    prefix: String,
}

impl fmt::Debug for RedisRevocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRevocations")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisRevocations {
    /// Connect to the Redis at `url`; keys are `PREFIX:revoked:JTI`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, RevocationError> {
        let client = redis::Client::open(url).map_err(RevocationError::Redis)?;
        let connection = tokio::time::timeout(
            Duration::from_secs(5),
            redis::aio::ConnectionManager::new(client),
        )
        .await
        .map_err(|_| {
            RevocationError::Redis(redis::RedisError::from((
                redis::ErrorKind::Io,
                "timed out connecting",
            )))
        })?
        .map_err(RevocationError::Redis)?;
        Ok(RedisRevocations {
            connection,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, jti: &str) -> String {
        format!("{}:revoked:{jti}", self.prefix)
    }
}

impl Revocations for RedisRevocations {
    fn is_revoked<'a>(&'a self, jti: &'a str) -> RevocationFuture<'a, bool> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            connection
                .exists(self.key(jti))
                .await
                .map_err(RevocationError::Redis)
        })
    }

    fn revoke<'a>(&'a self, jti: &'a str, until: SystemTime) -> RevocationFuture<'a, ()> {
        Box::pin(async move {
            check_id(jti)?;
            let left = until
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .max(Duration::from_secs(1));
            let millis = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
            let mut connection = self.connection.clone();
            let () = redis::cmd("SET")
                .arg(self.key(jti))
                .arg(1)
                .arg("PX")
                .arg(millis)
                .query_async(&mut connection)
                .await
                .map_err(RevocationError::Redis)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_revocations_expire_with_the_token() {
        let list = MemoryRevocations::new();
        let later = SystemTime::now() + Duration::from_secs(60);
        list.revoke("a", later).await.expect("revoke");
        list.revoke("old", SystemTime::now() - Duration::from_secs(1))
            .await
            .expect("revoke");
        assert!(list.is_revoked("a").await.expect("check"));
        assert!(
            !list.is_revoked("old").await.expect("check"),
            "already expired"
        );
        assert!(!list.is_revoked("b").await.expect("check"));
        assert!(matches!(
            list.revoke("", later).await,
            Err(RevocationError::BadId)
        ));
        assert!(matches!(
            list.revoke(&"x".repeat(300), later).await,
            Err(RevocationError::BadId)
        ));
    }
}
