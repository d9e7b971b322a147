//! The baseline: UserService on tonic's own server with no layer, no store and no cache,
//! answering GetUserSegment with a fixed segment of the same shape. Its throughput is the
//! ceiling of this machine for the same client load.

use std::net::SocketAddr;

use anyhow::Context;
use crmbet_proto::v1::user_service_server::{UserService, UserServiceServer};
use crmbet_proto::v1::{
    GetUserBehaviorRequest, GetUserBehaviorResponse, GetUserSegmentRequest, GetUserSegmentResponse,
    SearchUsersRequest, SearchUsersResponse, SetPlayerRestrictionsRequest,
    SetPlayerRestrictionsResponse, WatchSegmentChangesRequest, WatchSegmentChangesResponse,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

struct EmptyUserService;

#[tonic::async_trait]
impl UserService for EmptyUserService {
    async fn get_user_segment(
        &self,
        request: Request<GetUserSegmentRequest>,
    ) -> Result<Response<GetUserSegmentResponse>, Status> {
        Ok(Response::new(GetUserSegmentResponse {
            user_id: request.into_inner().user_id,
            cluster_id: 1,
            cluster_name: "Casual Slots".to_owned(),
            model_id: 1,
            confidence: 0.9,
            outlier: false,
            suggested_campaign: 1,
            assigned_at: Some(prost_types::Timestamp {
                seconds: 1_764_547_200,
                nanos: 0,
            }),
        }))
    }

    async fn search_users(
        &self,
        _request: Request<SearchUsersRequest>,
    ) -> Result<Response<SearchUsersResponse>, Status> {
        Err(Status::unimplemented(
            "the empty handler serves GetUserSegment only",
        ))
    }

    async fn get_user_behavior(
        &self,
        _request: Request<GetUserBehaviorRequest>,
    ) -> Result<Response<GetUserBehaviorResponse>, Status> {
        Err(Status::unimplemented(
            "the empty handler serves GetUserSegment only",
        ))
    }

    type WatchSegmentChangesStream =
        tokio_stream::Empty<Result<WatchSegmentChangesResponse, Status>>;

    async fn watch_segment_changes(
        &self,
        _request: Request<WatchSegmentChangesRequest>,
    ) -> Result<Response<Self::WatchSegmentChangesStream>, Status> {
        Err(Status::unimplemented(
            "the empty handler serves GetUserSegment only",
        ))
    }

    async fn set_player_restrictions(
        &self,
        _request: Request<SetPlayerRestrictionsRequest>,
    ) -> Result<Response<SetPlayerRestrictionsResponse>, Status> {
        Err(Status::unimplemented(
            "the empty handler serves GetUserSegment only",
        ))
    }
}

/// The accepted connections with TCP_NODELAY, as crmbet's own listener sets it (tonic's
/// `tcp_nodelay` setting does not apply to an incoming stream given to it).
fn incoming_without_delay(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    TcpListenerStream::new(listener).map(|accepted| {
        if let Ok(stream) = &accepted
            && let Err(error) = stream.set_nodelay(true)
        {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        accepted
    })
}

/// A running empty server; dropping `stop` (or sending on it) shuts it down.
pub struct EmptyServer {
    pub address: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl EmptyServer {
    /// Serves the empty UserService on a free local port.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the empty handler's port")?;
        let address = listener.local_addr().context("reading its address")?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(UserServiceServer::new(EmptyUserService))
                .serve_with_incoming_shutdown(incoming_without_delay(listener), async {
                    let _ = stopped.await;
                }),
        );
        Ok(Self {
            address,
            stop,
            task,
        })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task
            .await
            .context("the empty handler's task failed")?
            .context("the empty handler failed")
    }
}
