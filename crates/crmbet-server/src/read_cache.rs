//! The read cache of GetUserSegment, GetCluster and ListClusters.
//!
//! Answers are kept as encoded protobuf for [`TTL`] under
//! `{prefix}cache:v1:{active model id}:{what}`. The key names the model that serves, so
//! activating a model moves every reader to new keys; the old entries just expire. The id
//! of the serving model is itself kept in process for at most [`ACTIVE_MODEL_MAX_AGE`]
//! (reading it per request would cost a database query on every cached read): an
//! activation through this process is seen by the next read, one through another instance
//! or the command line within that time. With `REDIS_URL` the entries live in Redis on the
//! rate limiter's connection, shared by every instance, and each instance keeps the ones
//! it reads for [`NEAR_TTL`] in process too, so a hot player's segment costs no network
//! round trip; without it, in this process only, for [`TTL`]. While Redis fails (each call
//! waits at most [`crate::rate_limit::REDIS_TIMEOUT`]) reads go to the database and
//! `/health` reports the shared state as degraded.
//!
//! Invariants:
//! - Only successful answers are cached; an error (NOT_FOUND, FAILED_PRECONDITION, a bad
//!   argument) is handed to the requests waiting for the same load and then forgotten.
//! - Concurrent misses for one key load once: the first request loads, the others wait for
//!   its answer (single flight), and a request arriving just after the load looks again
//!   before loading.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crmbet_core::{Error, ModelId};
use crmbet_store::Store;
use fred::prelude::{Client, ClientLike, LuaInterface};
use fred::types::Value;
use prost::Message;
use tokio::sync::OnceCell;
use tonic::Status;

use crate::bounded_map::make_room;
use crate::rate_limit::{call_options, within_timeout};
use crate::status::status_from_error;

/// How long a cached answer is served.
pub const TTL: Duration = Duration::from_secs(60);
/// How long the id of the serving model is trusted before the store is asked again.
pub const ACTIVE_MODEL_MAX_AGE: Duration = Duration::from_secs(1);
/// How long an instance keeps an answer in process when Redis holds the shared copy: short,
/// so instances serve the same answer and memory stays small, yet long enough that a
/// player's repeated lookups at bet time stay in process.
pub const NEAR_TTL: Duration = Duration::from_secs(5);
/// The most answers kept in process (about 100 bytes each); when full the expired entries
/// are dropped, and everything if that was not enough.
const LOCAL_CAPACITY: usize = 100_000;
/// Version of the key layout and value encoding; bump it when either changes.
const KEY_VERSION: &str = "v1";

const GET_SCRIPT: &str = "return redis.call('GET', KEYS[1])";
const SET_SCRIPT: &str = "return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])";
const DELETE_SCRIPT: &str = "return redis.call('DEL', unpack(KEYS))";

/// One load in flight: its encoded answer or the status every waiter gets.
type Flight = OnceCell<Result<Vec<u8>, Status>>;

/// What a look into the cache found.
enum Lookup {
    Hit(Vec<u8>),
    Miss,
    /// Redis failed or did not answer in time.
    Unavailable,
}

/// Cached reads, in Redis when configured, else in process; cheap to clone.
#[derive(Debug, Clone)]
pub struct ReadCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    redis: Option<Client>,
    key_prefix: String,
    /// Key to expiry and encoded answer: the whole cache without Redis, the near copy of
    /// the answers read lately with it.
    local: Mutex<HashMap<String, (Instant, Vec<u8>)>>,
    in_flight: Mutex<HashMap<String, Arc<Flight>>>,
    hits: AtomicU64,
    loads: AtomicU64,
    active_model: Mutex<Option<ActiveModelMemo>>,
    /// One store read at a time refreshes `active_model`; the others wait for it.
    active_model_refresh: tokio::sync::Mutex<()>,
}

/// The serving model's id as last read from the store.
#[derive(Debug, Clone, Copy)]
struct ActiveModelMemo {
    model: Option<ModelId>,
    read_at: Instant,
    /// The store's activation count before that read.
    activations: u64,
}

impl ReadCache {
    /// A cache in Redis through `redis` (the rate limiter's client), or in process when
    /// `None`. Keys start with `key_prefix`.
    pub fn new(redis: Option<Client>, key_prefix: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                redis,
                key_prefix: key_prefix.to_owned(),
                local: Mutex::new(HashMap::new()),
                in_flight: Mutex::new(HashMap::new()),
                hits: AtomicU64::new(0),
                loads: AtomicU64::new(0),
                active_model: Mutex::new(None),
                active_model_refresh: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// How many reads the cache answered since it was made.
    pub fn hits(&self) -> u64 {
        self.inner.hits.load(Ordering::Relaxed)
    }

    /// How many times a miss went to the database since this cache was made.
    pub fn loads(&self) -> u64 {
        self.inner.loads.load(Ordering::Relaxed)
    }

    /// The model that serves, as cache keys name it: kept for [`ACTIVE_MODEL_MAX_AGE`], and
    /// read again at once after `store` (or a clone of it) activated a model. `store` must
    /// be the same database every time.
    pub async fn active_model(&self, store: &Store) -> crmbet_core::Result<Option<ModelId>> {
        if let Some(model) = self.remembered_active_model(store.activations()) {
            return Ok(model);
        }
        // Boxed: the store's query future is large and needed about once a second.
        Box::pin(self.refresh_active_model(store)).await
    }

    async fn refresh_active_model(&self, store: &Store) -> crmbet_core::Result<Option<ModelId>> {
        let _refreshing = self.inner.active_model_refresh.lock().await;
        // Counted before the read: an activation committed meanwhile makes the memo stale.
        let activations = store.activations();
        if let Some(model) = self.remembered_active_model(activations) {
            return Ok(model);
        }
        // Timed from before the query, so the memo is never older than the maximum age.
        let read_at = Instant::now();
        let model = store.active_model_id().await?;
        *lock(&self.inner.active_model) = Some(ActiveModelMemo {
            model,
            read_at,
            activations,
        });
        Ok(model)
    }

    fn remembered_active_model(&self, activations: u64) -> Option<Option<ModelId>> {
        let memo = (*lock(&self.inner.active_model))?;
        let fresh =
            memo.activations == activations && memo.read_at.elapsed() < ACTIVE_MODEL_MAX_AGE;
        fresh.then_some(memo.model)
    }

    /// The key of `what` (such as `segment:{user_id}`) while `active_model` serves.
    pub fn key(&self, active_model: Option<ModelId>, what: &str) -> String {
        let model = active_model.map_or_else(|| "none".to_owned(), |model| model.to_string());
        format!(
            "{}cache:{KEY_VERSION}:{model}:{what}",
            self.inner.key_prefix
        )
    }

    /// The cached answer under `key`, or the answer of `load`, which is cached when it
    /// succeeds.
    pub async fn read<M, Load, Loading>(&self, key: &str, load: Load) -> Result<M, Status>
    where
        M: Message + Default,
        Load: FnOnce() -> Loading,
        Loading: Future<Output = Result<M, Status>>,
    {
        if let Some(bytes) = self.lookup_local(key)
            && let Ok(message) = M::decode(bytes.as_slice())
        {
            self.inner.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(message);
        }
        // Redis and the store in a future of their own: their state runs to kilobytes,
        // which every call's future would otherwise carry (and copy when boxed), hit or not.
        Box::pin(self.read_beyond_local(key, load)).await
    }

    /// [`Self::read`] past the near copy: Redis, then the store.
    async fn read_beyond_local<M, Load, Loading>(&self, key: &str, load: Load) -> Result<M, Status>
    where
        M: Message + Default,
        Load: FnOnce() -> Loading,
        Loading: Future<Output = Result<M, Status>>,
    {
        let first_lookup = self.lookup(key).await;
        if let Lookup::Hit(bytes) = &first_lookup
            && let Ok(message) = M::decode(bytes.as_slice())
        {
            self.inner.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(message);
        }
        // While Redis fails, one failed call per read is enough: no second look, no store.
        let look_again = matches!(first_lookup, Lookup::Miss);
        let keep = !matches!(first_lookup, Lookup::Unavailable);
        let flight = self.join_flight(key);
        let outcome = flight
            .get_or_init(|| async {
                // A load that finished between the lookup above and joining the flight.
                if look_again && let Lookup::Hit(bytes) = self.lookup(key).await {
                    return Ok(bytes);
                }
                self.inner.loads.fetch_add(1, Ordering::Relaxed);
                let bytes = load().await?.encode_to_vec();
                if keep {
                    self.store(key, &bytes).await;
                }
                Ok(bytes)
            })
            .await
            .clone();
        self.leave_flight(key, &flight);
        let bytes = outcome?;
        M::decode(bytes.as_slice()).map_err(|error| {
            status_from_error(Error::Internal(format!(
                "cached answer under {key} does not decode: {error}"
            )))
        })
    }

    /// Drops the answers under `keys` (in process and in Redis), so the next read loads
    /// them again: a live event changed what they say. Other instances' near copies follow
    /// within [`NEAR_TTL`].
    pub async fn forget(&self, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        {
            let mut local = lock(&self.inner.local);
            for key in &keys {
                local.remove(key);
            }
        }
        let Some(redis) = &self.inner.redis else {
            return;
        };
        // A cluster refuses one call over keys of several slots.
        let groups: Vec<Vec<String>> = if redis.is_clustered() {
            let mut by_slot: std::collections::BTreeMap<u16, Vec<String>> = Default::default();
            for key in keys {
                by_slot
                    .entry(fred::util::redis_keyslot(key.as_bytes()))
                    .or_default()
                    .push(key);
            }
            by_slot.into_values().collect()
        } else {
            vec![keys]
        };
        let client = redis.with_options(&call_options());
        for group in groups {
            let call = client.eval::<Value, _, _, _>(DELETE_SCRIPT, group, Vec::<Value>::new());
            if let Err(reason) = within_timeout(call).await {
                tracing::debug!(%reason, "cache invalidation failed; entries expire by TTL");
            }
        }
    }

    fn join_flight(&self, key: &str) -> Arc<Flight> {
        let mut in_flight = lock(&self.inner.in_flight);
        Arc::clone(in_flight.entry(key.to_owned()).or_default())
    }

    /// Forgets the finished flight, unless a newer one already took its place.
    fn leave_flight(&self, key: &str, flight: &Arc<Flight>) {
        let mut in_flight = lock(&self.inner.in_flight);
        if in_flight
            .get(key)
            .is_some_and(|current| Arc::ptr_eq(current, flight))
        {
            in_flight.remove(key);
        }
    }

    /// The cached bytes under `key`: in process, else in Redis (kept in process then).
    async fn lookup(&self, key: &str) -> Lookup {
        if let Some(bytes) = self.lookup_local(key) {
            return Lookup::Hit(bytes);
        }
        let Some(redis) = &self.inner.redis else {
            return Lookup::Miss;
        };
        let client = redis.with_options(&call_options());
        let call = client.eval::<Value, _, _, _>(GET_SCRIPT, key, Vec::<Value>::new());
        match within_timeout(call).await {
            Ok(value) => match value.as_bytes() {
                Some(bytes) => {
                    self.store_local(key, bytes, NEAR_TTL);
                    Lookup::Hit(bytes.to_vec())
                }
                None => Lookup::Miss,
            },
            Err(reason) => {
                tracing::debug!(key, %reason, "cache lookup failed: reading the database");
                Lookup::Unavailable
            }
        }
    }

    fn lookup_local(&self, key: &str) -> Option<Vec<u8>> {
        let local = lock(&self.inner.local);
        local
            .get(key)
            .filter(|(expires_at, _)| *expires_at > Instant::now())
            .map(|(_, bytes)| bytes.clone())
    }

    fn store_local(&self, key: &str, bytes: &[u8], ttl: Duration) {
        let mut local = lock(&self.inner.local);
        let now = Instant::now();
        make_room(&mut local, LOCAL_CAPACITY, |(expires_at, _)| {
            *expires_at > now
        });
        local.insert(key.to_owned(), (now + ttl, bytes.to_vec()));
    }

    /// Keeps `bytes` under `key` for [`TTL`] (in Redis, and in process for [`NEAR_TTL`]),
    /// or in process for [`TTL`] without Redis; a failing Redis only costs the next read.
    async fn store(&self, key: &str, bytes: &[u8]) {
        let Some(redis) = &self.inner.redis else {
            self.store_local(key, bytes, TTL);
            return;
        };
        self.store_local(key, bytes, NEAR_TTL);
        let ttl_ms = i64::try_from(TTL.as_millis()).unwrap_or(i64::MAX);
        let arguments = vec![Value::Bytes(bytes.to_vec().into()), Value::Integer(ttl_ms)];
        let client = redis.with_options(&call_options());
        let call = client.eval::<Value, _, _, _>(SET_SCRIPT, key, arguments);
        if let Err(reason) = within_timeout(call).await {
            tracing::debug!(key, %reason, "cache store failed");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves a valid map behind.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crmbet_proto::v1::GetClusterRequest;

    #[tokio::test]
    async fn concurrent_misses_load_once_and_errors_are_not_cached() {
        let cache = ReadCache::new(None, "test:");
        let key = cache.key(Some(ModelId(7)), "cluster:1");
        assert_eq!(key, "test:cache:v1:7:cluster:1");
        let reads = (0..20).map(|_| {
            cache.read(&key, || async {
                tokio::task::yield_now().await;
                Ok(GetClusterRequest { cluster_id: 1 })
            })
        });
        let answers = futures::future::join_all(reads).await;
        assert!(
            answers
                .iter()
                .all(|answer| answer.as_ref().unwrap().cluster_id == 1)
        );
        assert_eq!(cache.loads(), 1);

        let missing = cache.key(None, "cluster:2");
        for _ in 0..2 {
            let answer = cache
                .read::<GetClusterRequest, _, _>(&missing, || async {
                    Err(Status::not_found("cluster 2 not found"))
                })
                .await;
            assert_eq!(answer.unwrap_err().code(), tonic::Code::NotFound);
        }
        assert_eq!(cache.loads(), 3, "a failed load is not cached");
    }
}
