//! The one table that says who may call which RPC, and which calls the audit log records.
//!
//! gRPC, grpc-web and REST all reach the tonic routes through the same
//! [`AccessLayer`](crate::auth::AccessLayer), so this table is the whole policy: REST routes
//! inherit it from the RPC they transcode to. A unit test fails when an RPC of the contracts
//! is missing here.
//!
//! The policy:
//! - `admin` may call everything.
//! - `analyst` reads clusters, players, campaigns and training, and runs the training
//!   workflow (start a run, activate a model): analysts own the segmentation model.
//! - `marketer` reads clusters and players, and creates, launches and cancels campaigns.
//! - `service` (internal services) reads a player's segment at bet time and the clusters,
//!   launches campaigns (the bonus engine triggers them), as DESIGN.md lists, and sets
//!   players' restrictions (self-exclusion, blocks, opt-outs), which only admins may too.
//! - `service` may list a cluster's members (ListClusterUsers), monetary values included,
//!   but may not call SearchUsers. On purpose: DESIGN.md names "cluster members" among what
//!   internal services need (the bonus engine targets a segment and sizes its offers by the
//!   members' RFM values), and that listing is bounded by a cluster the model made. Search
//!   is an ad hoc query over every player by country and spend: a tool for people reading
//!   the data, not for an integration, and with a service token leaked it would be the
//!   cheapest way to pull the whole player base by value. A service that needs more asks
//!   for a cluster, or an operator gives it a role of its own.
//! - AuthService Login, Refresh and Logout are open (they carry their own credentials);
//!   WhoAmI needs any valid access token.
//! - The Smartico webhook authenticates by its own HMAC signature, not by a JWT.
//! - EventService (live transactions) takes `service` tokens, the platform's, and `admin`.
//! - NotificationService (operators' webhooks for segment changes) is for `admin` only: a
//!   webhook sends every player's segment changes to an address its creator chooses.
//! - gRPC health and reflection stay open, like `GET /health`.
//!
//! The rate-limit class of each RPC: AuthService is `auth`, GetUserSegment `segment`,
//! EventService `events`, the Smartico webhook `webhook`, the other `Write` calls `write`,
//! and the rest `read`.
//!
//! The database load of each RPC: `Heavy` reads (searches, member lists, analytics,
//! behaviour, campaign results) may scan many rows; at most `CRMBET_HEAVY_READ_CONCURRENCY`
//! of them run at once, so they never hold every connection of the pool (see
//! [`crate::heavy_reads`]). Everything else is `Light`: cached or single-row reads, logins
//! and writes, which take no turn.

use crmbet_core::rate_limit_classes::RouteClass as Class;

use crmbet_core::Role;
use crmbet_core::Role::{Admin, Analyst, Marketer, Service};

/// Who may call an RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without an access token.
    Public,
    /// Any valid access token, whatever its role.
    AnyRole,
    /// A valid access token with one of these roles.
    Roles(&'static [Role]),
}

/// Whether the audit log records a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Reads only; not audited.
    Read,
    /// Changes state: every call is audited, whatever its outcome.
    Write,
    /// Event intake with its own log (`webhook_events`); not audited row by row.
    Ingest,
}

/// How much database work a call may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// Cached, single-row or write work: runs at once.
    Light,
    /// May scan many rows: waits for one of the heavy-read turns.
    Heavy,
}

/// One row of the table: a gRPC method path, who may call it, what it does, which
/// rate-limit budget it spends and how much database work it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodRule {
    /// `/package.Service/Method`, as on the wire.
    pub path: &'static str,
    pub access: Access,
    pub effect: Effect,
    pub class: Class,
    pub load: Load,
}

const EVERY_ROLE: &[Role] = &[Admin, Analyst, Marketer, Service];
const READERS: &[Role] = &[Admin, Analyst, Marketer];
const TRAINERS: &[Role] = &[Admin, Analyst];
const CAMPAIGNERS: &[Role] = &[Admin, Marketer];
const LAUNCHERS: &[Role] = &[Admin, Marketer, Service];
/// Responsible-gambling flags: the operator's platform (a service) and admins set them; a
/// marketer must never be able to lift a self-exclusion.
const RESTRICTORS: &[Role] = &[Admin, Service];
/// Live transactions: the operator's platform (a service), and admins (replays, tests).
const INGESTERS: &[Role] = &[Admin, Service];
/// Outbound webhooks send player data to an address of the caller's choosing: admins only.
const ADMINS: &[Role] = &[Admin];

const fn rule(path: &'static str, access: Access, effect: Effect, class: Class) -> MethodRule {
    MethodRule {
        path,
        access,
        effect,
        class,
        load: Load::Light,
    }
}

/// `rule` as a heavy read.
const fn heavy(rule: MethodRule) -> MethodRule {
    MethodRule {
        load: Load::Heavy,
        ..rule
    }
}

use Access::{AnyRole, Public, Roles};
use Effect::{Ingest, Read, Write};

/// Every RPC of `proto/crmbet/v1`, with its access, effect and rate-limit class.
pub const METHOD_RULES: &[MethodRule] = &[
    rule(
        "/crmbet.v1.ClusterService/ListClusters",
        Roles(EVERY_ROLE),
        Read,
        Class::Read,
    ),
    rule(
        "/crmbet.v1.ClusterService/GetCluster",
        Roles(EVERY_ROLE),
        Read,
        Class::Read,
    ),
    heavy(rule(
        "/crmbet.v1.ClusterService/ListClusterUsers",
        Roles(EVERY_ROLE),
        Read,
        Class::Read,
    )),
    heavy(rule(
        "/crmbet.v1.ClusterService/GetClusterAnalytics",
        Roles(READERS),
        Read,
        Class::Read,
    )),
    rule(
        "/crmbet.v1.UserService/GetUserSegment",
        Roles(EVERY_ROLE),
        Read,
        Class::Segment,
    ),
    heavy(rule(
        "/crmbet.v1.UserService/SearchUsers",
        Roles(READERS),
        Read,
        Class::Read,
    )),
    heavy(rule(
        "/crmbet.v1.UserService/GetUserBehavior",
        Roles(READERS),
        Read,
        Class::Read,
    )),
    rule(
        "/crmbet.v1.UserService/WatchSegmentChanges",
        Roles(EVERY_ROLE),
        Read,
        Class::Read,
    ),
    rule(
        "/crmbet.v1.UserService/SetPlayerRestrictions",
        Roles(RESTRICTORS),
        Write,
        Class::Write,
    ),
    rule(
        "/crmbet.v1.CampaignService/CreateCampaign",
        Roles(CAMPAIGNERS),
        Write,
        Class::Write,
    ),
    rule(
        "/crmbet.v1.CampaignService/GetCampaign",
        Roles(READERS),
        Read,
        Class::Read,
    ),
    rule(
        "/crmbet.v1.CampaignService/ListCampaigns",
        Roles(READERS),
        Read,
        Class::Read,
    ),
    rule(
        "/crmbet.v1.CampaignService/LaunchCampaign",
        Roles(LAUNCHERS),
        Write,
        Class::Write,
    ),
    heavy(rule(
        "/crmbet.v1.CampaignService/GetCampaignResults",
        Roles(READERS),
        Read,
        Class::Read,
    )),
    rule(
        "/crmbet.v1.CampaignService/CancelCampaign",
        Roles(CAMPAIGNERS),
        Write,
        Class::Write,
    ),
    rule(
        "/crmbet.v1.TrainingService/StartTraining",
        Roles(TRAINERS),
        Write,
        Class::Write,
    ),
    rule(
        "/crmbet.v1.TrainingService/GetTrainingRun",
        Roles(TRAINERS),
        Read,
        Class::Read,
    ),
    rule(
        "/crmbet.v1.TrainingService/WatchTrainingRun",
        Roles(TRAINERS),
        Read,
        Class::Read,
    ),
    rule(
        "/crmbet.v1.TrainingService/ListModels",
        Roles(TRAINERS),
        Read,
        Class::Read,
    ),
    rule(
        "/crmbet.v1.TrainingService/ActivateModel",
        Roles(TRAINERS),
        Write,
        Class::Write,
    ),
    rule("/crmbet.v1.AuthService/Login", Public, Write, Class::Auth),
    rule("/crmbet.v1.AuthService/Refresh", Public, Write, Class::Auth),
    rule("/crmbet.v1.AuthService/Logout", Public, Write, Class::Auth),
    rule("/crmbet.v1.AuthService/WhoAmI", AnyRole, Read, Class::Auth),
    rule(
        "/crmbet.v1.SmarticoWebhookService/ReceiveEvent",
        Public,
        Ingest,
        Class::Webhook,
    ),
    rule(
        "/crmbet.v1.NotificationService/CreateWebhook",
        Roles(ADMINS),
        Write,
        Class::Write,
    ),
    rule(
        "/crmbet.v1.NotificationService/ListWebhooks",
        Roles(ADMINS),
        Read,
        Class::Read,
    ),
    rule(
        "/crmbet.v1.NotificationService/DeleteWebhook",
        Roles(ADMINS),
        Write,
        Class::Write,
    ),
    rule(
        "/crmbet.v1.NotificationService/ListWebhookDeadLetters",
        Roles(ADMINS),
        Read,
        Class::Read,
    ),
    rule(
        "/crmbet.v1.EventService/Ingest",
        Roles(INGESTERS),
        Ingest,
        Class::Events,
    ),
    rule(
        "/crmbet.v1.EventService/IngestBatch",
        Roles(INGESTERS),
        Ingest,
        Class::Events,
    ),
];

/// Services outside the contracts that stay open: gRPC health and reflection.
const OPEN_SERVICE_PREFIXES: &[&str] = &["/grpc.health.v1.Health/", "/grpc.reflection."];

/// The rule for a request path. Health and reflection are public reads (of the `read`
/// class, though the rate limit exempts health); any other path
/// that is not in the table needs a valid token (tonic then answers UNIMPLEMENTED), so a
/// method added to the contracts but forgotten here is closed, not open.
pub fn rule_for(path: &str) -> MethodRule {
    if let Some(rule) = METHOD_RULES.iter().find(|rule| rule.path == path) {
        return *rule;
    }
    if OPEN_SERVICE_PREFIXES
        .iter()
        .any(|prefix| path.starts_with(prefix))
    {
        return rule("", Public, Read, Class::Read);
    }
    rule("", AnyRole, Read, Class::Read)
}

impl Access {
    /// Whether `role` may call an RPC with this access (a token is present and valid).
    pub fn allows(self, role: Role) -> bool {
        match self {
            Public | AnyRole => true,
            Roles(roles) => roles.contains(&role),
        }
    }

    /// The roles allowed, for error messages.
    pub fn allowed_roles(self) -> Vec<Role> {
        Role::ALL
            .into_iter()
            .filter(|role| self.allows(*role))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use prost_reflect::DescriptorPool;

    use super::*;

    fn contract_methods() -> BTreeSet<String> {
        let pool = DescriptorPool::decode(crmbet_proto::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set decodes");
        pool.services()
            .filter(|service| service.package_name() == "crmbet.v1")
            .flat_map(|service| {
                service
                    .methods()
                    .map(|method| format!("/{}/{}", service.full_name(), method.name()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn every_rpc_of_the_contracts_has_exactly_one_rule() {
        let methods = contract_methods();
        assert!(methods.len() >= 20, "{methods:?}");
        let ruled: Vec<&str> = METHOD_RULES.iter().map(|rule| rule.path).collect();
        let missing: Vec<&String> = methods
            .iter()
            .filter(|method| !ruled.contains(&method.as_str()))
            .collect();
        assert!(missing.is_empty(), "RPCs without a rule: {missing:?}");
        let unknown: Vec<&&str> = ruled
            .iter()
            .filter(|path| !methods.contains(**path))
            .collect();
        assert!(unknown.is_empty(), "rules for no RPC: {unknown:?}");
        let distinct: BTreeSet<&&str> = ruled.iter().collect();
        assert_eq!(distinct.len(), ruled.len(), "a path has two rules");
    }

    /// The expected class of a rule, from the policy in the module doc.
    fn expected_class(rule: &MethodRule) -> Class {
        if rule.path.starts_with("/crmbet.v1.AuthService/") {
            return Class::Auth;
        }
        if rule.path == "/crmbet.v1.UserService/GetUserSegment" {
            return Class::Segment;
        }
        if rule.path.starts_with("/crmbet.v1.EventService/") {
            return Class::Events;
        }
        match rule.effect {
            Ingest => Class::Webhook,
            Write => Class::Write,
            Read => Class::Read,
        }
    }

    #[test]
    fn every_rpc_of_the_contracts_has_the_class_of_its_kind() {
        let methods = contract_methods();
        for method in &methods {
            let rule = rule_for(method);
            assert_eq!(rule.path, method, "no rule, so no class, for {method}");
            assert_eq!(rule.class, expected_class(&rule), "{method}");
        }
        for class in Class::ALL {
            assert!(
                METHOD_RULES.iter().any(|rule| rule.class == class),
                "no RPC in class {class}"
            );
        }
        assert_eq!(
            rule_for("/crmbet.v1.ClusterService/DropAll").class,
            Class::Read
        );
    }

    #[test]
    fn admin_may_call_every_rpc_that_needs_a_role() {
        for rule in METHOD_RULES {
            assert!(rule.access.allows(Role::Admin), "{}", rule.path);
        }
    }

    #[test]
    fn health_and_reflection_are_open_and_unknown_paths_are_closed() {
        assert_eq!(rule_for("/grpc.health.v1.Health/Check").access, Public);
        assert_eq!(
            rule_for("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo").access,
            Public
        );
        assert_eq!(
            rule_for("/crmbet.v1.ClusterService/DropAll").access,
            AnyRole
        );
        assert_eq!(rule_for("/").access, AnyRole);
    }

    #[test]
    fn heavy_reads_are_reads_and_cached_reads_are_light() {
        let heavy: Vec<&str> = METHOD_RULES
            .iter()
            .filter(|rule| rule.load == Load::Heavy)
            .map(|rule| rule.path)
            .collect();
        assert_eq!(heavy.len(), 5, "{heavy:?}");
        for rule in METHOD_RULES.iter().filter(|rule| rule.load == Load::Heavy) {
            assert_eq!(rule.effect, Read, "{}", rule.path);
        }
        for cached in [
            "/crmbet.v1.UserService/GetUserSegment",
            "/crmbet.v1.ClusterService/GetCluster",
            "/crmbet.v1.ClusterService/ListClusters",
        ] {
            assert_eq!(rule_for(cached).load, Load::Light, "{cached}");
        }
    }

    #[test]
    fn services_list_cluster_members_but_do_not_search_players() {
        let access = |path: &str| rule_for(path).access;
        assert!(access("/crmbet.v1.ClusterService/ListClusterUsers").allows(Role::Service));
        assert!(!access("/crmbet.v1.UserService/SearchUsers").allows(Role::Service));
    }

    #[test]
    fn services_read_segments_but_not_player_details() {
        let access = |path: &str| rule_for(path).access;
        assert!(access("/crmbet.v1.UserService/GetUserSegment").allows(Role::Service));
        assert!(!access("/crmbet.v1.UserService/GetUserBehavior").allows(Role::Service));
        assert!(!access("/crmbet.v1.TrainingService/StartTraining").allows(Role::Marketer));
        assert!(!access("/crmbet.v1.CampaignService/CreateCampaign").allows(Role::Analyst));
        assert!(!access("/crmbet.v1.UserService/SetPlayerRestrictions").allows(Role::Marketer));
    }
}
