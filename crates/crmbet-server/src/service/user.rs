//! UserService: a player's segment, search and behaviour.

use std::sync::Arc;

use crmbet_app::{Campaigns, RestrictionFlags};
use crmbet_core::fingerprint::fingerprint;
use crmbet_core::ids::is_player_id_char;
use crmbet_core::money::parse_amount;
use crmbet_core::{ClusterId, Error, ModelId, PageSize, PageToken, PlayerId, Result};
use crmbet_proto::v1::user_service_server::UserService;
use crmbet_proto::v1::{
    BehaviouralFeatures, FinancialFeatures, GetUserBehaviorRequest, GetUserBehaviorResponse,
    GetUserSegmentRequest, GetUserSegmentResponse, PlayerRestrictions, RfmFeatures,
    SearchUsersRequest, SearchUsersResponse, SetPlayerRestrictionsRequest,
    SetPlayerRestrictionsResponse, TemporalFeatures, UserSummary, WatchSegmentChangesRequest,
};
use crmbet_store::{PlayerSearch, Store};
use tonic::{Request, Response, Status};

use crate::auth::{Principal, note_audit_target};
use crate::convert::{campaign_type, game_type, instant, money, timestamp};
use crate::read_cache::ReadCache;
use crate::segment_feed::{SegmentChanges, SegmentFeed};
use crate::service::cluster::split_page;
use crate::status::status_from_error;

/// Serves UserService from the store, segments through the read cache, restrictions
/// through the campaign use cases.
#[derive(Debug, Clone)]
pub struct UserApi {
    store: Store,
    cache: ReadCache,
    campaigns: Campaigns,
    feed: Arc<SegmentFeed>,
}

impl UserApi {
    /// A service reading from `store`, segments through `cache`, setting restrictions
    /// through `campaigns`, following segment changes through `feed`.
    pub fn new(
        store: Store,
        cache: ReadCache,
        campaigns: Campaigns,
        feed: Arc<SegmentFeed>,
    ) -> Self {
        Self {
            store,
            cache,
            campaigns,
            feed,
        }
    }

    async fn set_restrictions(
        &self,
        request: SetPlayerRestrictionsRequest,
        updated_by: Option<String>,
    ) -> Result<SetPlayerRestrictionsResponse> {
        let player_id = PlayerId::parse("user_id", &request.user_id)?;
        let flags = RestrictionFlags {
            self_excluded: request.self_excluded,
            blocked: request.blocked,
            marketing_opt_out: request.marketing_opt_out,
        };
        let row = self
            .campaigns
            .set_restrictions(&player_id, flags, updated_by)
            .await?;
        Ok(SetPlayerRestrictionsResponse {
            restrictions: Some(PlayerRestrictions {
                user_id: row.user_id,
                self_excluded: row.self_excluded,
                blocked: row.blocked,
                marketing_opt_out: row.marketing_opt_out,
                source: row.source,
                updated_at: Some(timestamp(row.updated_at)),
            }),
        })
    }

    /// [`Self::get_user_segment`] through the cache, keyed by the active model and player.
    /// A bad id is refused before the cache is asked.
    async fn cached_user_segment(
        &self,
        request: GetUserSegmentRequest,
    ) -> Result<GetUserSegmentResponse, Status> {
        let player_id = PlayerId::parse("user_id", &request.user_id).map_err(status_from_error)?;
        let active_model = self
            .cache
            .active_model(&self.store)
            .await
            .map_err(status_from_error)?;
        let key = self
            .cache
            .key(active_model, &format!("segment:{player_id}"));
        self.cache
            .read(&key, || async {
                self.get_user_segment(&player_id, active_model)
                    .await
                    .map_err(status_from_error)
            })
            .await
    }

    /// The segment of `player_id` in `active_model`, the model the cache key names.
    async fn get_user_segment(
        &self,
        player_id: &PlayerId,
        active_model: Option<ModelId>,
    ) -> Result<GetUserSegmentResponse> {
        let Some(model_id) = active_model else {
            return Err(no_active_model());
        };
        let segment = self.store.player_segment(model_id, player_id).await?;
        Ok(GetUserSegmentResponse {
            user_id: segment.user_id,
            cluster_id: segment.cluster_id,
            cluster_name: segment.cluster_name,
            model_id: segment.model_id,
            confidence: segment.confidence,
            outlier: segment.outlier,
            suggested_campaign: campaign_type(&segment.suggested_campaign).into(),
            assigned_at: Some(timestamp(segment.assigned_at)),
        })
    }

    async fn search_users(&self, request: SearchUsersRequest) -> Result<SearchUsersResponse> {
        let page_size = PageSize::parse(request.page_size)?;
        let search = validate_search(&request)?;
        let scope = format!("search:{}", fingerprint(&format!("{search:?}")));
        let after = PageToken::decode(&request.page_token, &scope)?;
        let model_id = self.store.active_model_id().await?;
        if search.cluster_id.is_some() && model_id.is_none() {
            return Err(no_active_model());
        }
        let limit = u64::from(page_size.get());
        let rows = self
            .store
            .search_players(model_id, &search, after.as_deref(), limit + 1)
            .await?;
        let (rows, next_page_token) = split_page(rows, limit, |row| {
            PageToken::new(scope.clone(), row.user_id.clone()).encode()
        });
        let users = rows
            .into_iter()
            .map(|row| UserSummary {
                user_id: row.user_id,
                country: row.country.unwrap_or_default(),
                cluster_id: row.cluster_id.unwrap_or_default(),
                cluster_name: row.cluster_name.unwrap_or_default(),
                monetary: row.monetary.and_then(money),
                frequency: row.frequency.unwrap_or_default(),
                first_seen_at: row.first_seen_at.map(timestamp),
                last_active_at: row.last_active_at.map(timestamp),
            })
            .collect();
        Ok(SearchUsersResponse {
            users,
            next_page_token,
        })
    }

    async fn get_user_behavior(
        &self,
        request: GetUserBehaviorRequest,
    ) -> Result<GetUserBehaviorResponse> {
        let player_id = PlayerId::parse("user_id", &request.user_id)?;
        let behavior = self.store.player_behavior(&player_id).await?;
        let features = behavior.features;
        let player = behavior.player;
        Ok(GetUserBehaviorResponse {
            user_id: player.user_id,
            etl_run_id: features.etl_run_id,
            behavioural: Some(BehaviouralFeatures {
                favourite_game: game_type(&features.favourite_game).into(),
                share_crash: features.share_crash,
                share_slots: features.share_slots,
                share_live_casino: features.share_live_casino,
                share_sports: features.share_sports,
                share_table: features.share_table,
                bet_count: features.bet_count,
                bet_std: features.bet_std,
                bet_cv: features.bet_cv,
                sessions: features.sessions,
                bets_per_session: features.bets_per_session,
            }),
            financial: Some(FinancialFeatures {
                average_ticket: money(features.avg_ticket),
                total_staked: money(features.total_staked),
                net_revenue: money(features.ngr),
                deposit_count: features.deposit_count,
                deposit_sum: money(features.deposit_sum),
                average_deposit: money(features.avg_deposit),
                withdrawal_count: features.withdrawal_count,
                withdrawal_sum: money(features.withdrawal_sum),
                withdrawal_ratio: features.withdrawal_ratio,
                bonus_share: features.bonus_share,
                clv_estimate: money(features.clv_estimate),
            }),
            temporal: Some(TemporalFeatures {
                night_share: features.night_share,
                weekend_share: features.weekend_share,
                preferred_hour: features.preferred_hour,
                preferred_weekday: features.preferred_weekday,
                active_days: features.active_days,
                tenure_days: features.tenure_days,
            }),
            rfm: Some(RfmFeatures {
                recency_days: features.recency_days,
                frequency: features.frequency,
                monetary: money(features.monetary),
                recency_score: features.r_score,
                frequency_score: features.f_score,
                monetary_score: features.m_score,
            }),
            first_seen_at: player.first_seen_at.map(timestamp),
            last_active_at: player.last_active_at.map(timestamp),
            country: player.country.unwrap_or_default(),
        })
    }
}

fn no_active_model() -> Error {
    Error::FailedPrecondition(
        "no segmentation model is active yet; run `crmbet train` (or TrainingService.StartTraining) \
         and activate a model"
            .to_owned(),
    )
}

/// Checks every filter of a search in one place.
fn validate_search(request: &SearchUsersRequest) -> Result<PlayerSearch> {
    let cluster_id = match request.cluster_id {
        0 => None,
        raw => Some(ClusterId::parse("cluster_id", raw)?),
    };
    let min_monetary = parse_amount("min_monetary", &request.min_monetary)?;
    let max_monetary = parse_amount("max_monetary", &request.max_monetary)?;
    if let (Some(minimum), Some(maximum)) = (min_monetary, max_monetary)
        && minimum > maximum
    {
        return Err(Error::invalid_argument(
            "min_monetary",
            format!("must not exceed max_monetary ({minimum} > {maximum})"),
        ));
    }
    let last_active_after = request
        .last_active_after
        .as_ref()
        .map(|value| instant("last_active_after", value))
        .transpose()?;
    let last_active_before = request
        .last_active_before
        .as_ref()
        .map(|value| instant("last_active_before", value))
        .transpose()?;
    if let (Some(after), Some(before)) = (last_active_after, last_active_before)
        && after >= before
    {
        return Err(Error::invalid_argument(
            "last_active_after",
            "must be earlier than last_active_before",
        ));
    }
    let country = match request.country.as_str() {
        "" => None,
        code if code.len() == 2 && code.bytes().all(|byte| byte.is_ascii_uppercase()) => {
            Some(code.to_owned())
        }
        other => {
            return Err(Error::invalid_argument(
                "country",
                format!("must be an ISO 3166-1 alpha-2 code such as \"GB\", got {other:?}"),
            ));
        }
    };
    let user_id_prefix = match request.user_id_prefix.as_str() {
        "" => None,
        prefix => {
            // A prefix follows the player id rules, which also keeps LIKE wildcards out.
            PlayerId::parse("user_id_prefix", prefix)?;
            debug_assert!(prefix.chars().all(is_player_id_char));
            Some(prefix.to_owned())
        }
    };
    Ok(PlayerSearch {
        cluster_id,
        min_monetary,
        max_monetary,
        last_active_after,
        last_active_before,
        country,
        user_id_prefix,
    })
}

#[tonic::async_trait]
impl UserService for UserApi {
    async fn get_user_segment(
        &self,
        request: Request<GetUserSegmentRequest>,
    ) -> Result<Response<GetUserSegmentResponse>, Status> {
        self.cached_user_segment(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn search_users(
        &self,
        request: Request<SearchUsersRequest>,
    ) -> Result<Response<SearchUsersResponse>, Status> {
        self.search_users(request.into_inner())
            .await
            .map(Response::new)
            .map_err(status_from_error)
    }

    async fn get_user_behavior(
        &self,
        request: Request<GetUserBehaviorRequest>,
    ) -> Result<Response<GetUserBehaviorResponse>, Status> {
        self.get_user_behavior(request.into_inner())
            .await
            .map(Response::new)
            .map_err(status_from_error)
    }

    type WatchSegmentChangesStream = SegmentChanges;

    async fn watch_segment_changes(
        &self,
        request: Request<WatchSegmentChangesRequest>,
    ) -> Result<Response<Self::WatchSegmentChangesStream>, Status> {
        let cursor = parse_cursor(&request.get_ref().cursor).map_err(status_from_error)?;
        self.feed
            .watch(cursor)
            .await
            .map(Response::new)
            .map_err(status_from_error)
    }

    async fn set_player_restrictions(
        &self,
        request: Request<SetPlayerRestrictionsRequest>,
    ) -> Result<Response<SetPlayerRestrictionsResponse>, Status> {
        note_audit_target(
            request.extensions(),
            format!(
                "player {} restrictions self_excluded={} blocked={} marketing_opt_out={}",
                request.get_ref().user_id,
                request.get_ref().self_excluded,
                request.get_ref().blocked,
                request.get_ref().marketing_opt_out
            ),
        );
        let updated_by = request
            .extensions()
            .get::<Principal>()
            .map(|principal| principal.username.clone());
        self.set_restrictions(request.into_inner(), updated_by)
            .await
            .map(Response::new)
            .map_err(status_from_error)
    }
}

/// A watcher's cursor: empty for "from now on", else a change's cursor (0 for the first).
fn parse_cursor(cursor: &str) -> Result<Option<i64>> {
    let cursor = cursor.trim();
    if cursor.is_empty() {
        return Ok(None);
    }
    match cursor.parse::<i64>() {
        Ok(value) if value >= 0 => Ok(Some(value)),
        _ => Err(Error::invalid_argument(
            "cursor",
            format!(
                "{cursor:?} is not a cursor: send the cursor of the last change received, \
                 0 for every change kept, or nothing for changes from now on"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_filters_are_checked_in_one_place() {
        let cases: Vec<(SearchUsersRequest, Option<&str>)> = vec![
            (SearchUsersRequest::default(), None),
            (
                SearchUsersRequest {
                    cluster_id: -1,
                    ..Default::default()
                },
                Some("cluster_id"),
            ),
            (
                SearchUsersRequest {
                    min_monetary: "ten".into(),
                    ..Default::default()
                },
                Some("min_monetary"),
            ),
            (
                SearchUsersRequest {
                    min_monetary: "10".into(),
                    max_monetary: "5".into(),
                    ..Default::default()
                },
                Some("min_monetary"),
            ),
            (
                SearchUsersRequest {
                    country: "gb".into(),
                    ..Default::default()
                },
                Some("country"),
            ),
            (
                SearchUsersRequest {
                    country: "GB".into(),
                    ..Default::default()
                },
                None,
            ),
            (
                SearchUsersRequest {
                    user_id_prefix: "a%".into(),
                    ..Default::default()
                },
                Some("user_id_prefix"),
            ),
        ];
        for (request, failing_field) in cases {
            let result = validate_search(&request);
            match failing_field {
                None => assert!(result.is_ok(), "{request:?}: {result:?}"),
                Some(field) => {
                    let message = result.unwrap_err().to_string();
                    assert!(message.starts_with(field), "{request:?}: {message}");
                }
            }
        }
    }

    #[test]
    fn cursors_are_empty_or_a_change_id() {
        assert_eq!(super::parse_cursor("").unwrap(), None);
        assert_eq!(super::parse_cursor(" 0 ").unwrap(), Some(0));
        assert_eq!(super::parse_cursor("42").unwrap(), Some(42));
        for bad in ["-1", "abc", "1.5"] {
            let error = super::parse_cursor(bad).unwrap_err();
            assert!(error.to_string().contains("cursor"), "{error}");
        }
    }
}
