//! AuthService: accounts and tokens arrive with the access-control capability; until then
//! every call answers UNIMPLEMENTED and names what is missing.

use crmbet_proto::v1::auth_service_server::AuthService;
use crmbet_proto::v1::{
    LoginRequest, LoginResponse, LogoutRequest, LogoutResponse, RefreshRequest, RefreshResponse,
    WhoAmIRequest, WhoAmIResponse,
};
use tonic::{Request, Response, Status};

use crate::service::not_available;

const CAPABILITY: &str = "authentication (accounts, JWT access tokens, refresh tokens)";

/// Serves AuthService.
#[derive(Debug, Clone, Default)]
pub struct AuthApi;

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn login(
        &self,
        _request: Request<LoginRequest>,
    ) -> Result<Response<LoginResponse>, Status> {
        Err(not_available(CAPABILITY))
    }

    async fn refresh(
        &self,
        _request: Request<RefreshRequest>,
    ) -> Result<Response<RefreshResponse>, Status> {
        Err(not_available(CAPABILITY))
    }

    async fn logout(
        &self,
        _request: Request<LogoutRequest>,
    ) -> Result<Response<LogoutResponse>, Status> {
        Err(not_available(CAPABILITY))
    }

    async fn who_am_i(
        &self,
        _request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        Err(not_available(CAPABILITY))
    }
}
