//! The tonic services, one module per protobuf service.

mod access;
mod campaign;
mod cluster;
mod event;
mod notification;
mod training;
mod user;
mod webhook;

pub use access::AuthApi;
pub use campaign::CampaignApi;
pub use cluster::ClusterApi;
pub use event::EventApi;
pub use notification::NotificationApi;
pub use training::TrainingApi;
pub use user::UserApi;
pub use webhook::SmarticoWebhookApi;
