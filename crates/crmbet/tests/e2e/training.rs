//! TrainingService end to end: refusals before anything runs, a run watched over grpc-web
//! (HTTP/1.1, as the dashboard does) through every stage, model versions and activation.

use std::collections::BTreeSet;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use crmbet_proto::v1::training_service_client::TrainingServiceClient;
use crmbet_proto::v1::{
    ActivateModelRequest, Algorithm, GetTrainingRunRequest, ListModelsRequest,
    StartTrainingRequest, TrainingStage, TrainingStatus, WatchTrainingRunRequest,
    WatchTrainingRunResponse,
};
use prost::Message;
use tonic::Code;

use crate::server::{AuthorizedChannel, RunningServer};

async fn training_client(server: &RunningServer) -> TrainingServiceClient<AuthorizedChannel> {
    TrainingServiceClient::new(server.grpc_channel().await)
}

/// A grpc-web body holding one request message.
fn grpc_web_frame(message: &impl Message) -> Bytes {
    let encoded = message.encode_to_vec();
    let mut body = BytesMut::new();
    body.put_u8(0);
    body.put_u32(u32::try_from(encoded.len()).unwrap());
    body.put_slice(&encoded);
    body.freeze()
}

/// The messages and the trailers of a grpc-web response body.
fn grpc_web_messages(mut payload: Bytes) -> (Vec<WatchTrainingRunResponse>, String) {
    let mut messages = Vec::new();
    let mut trailers = String::new();
    while payload.has_remaining() {
        let flags = payload.get_u8();
        let length = usize::try_from(payload.get_u32()).unwrap();
        let frame = payload.split_to(length);
        if flags & 0x80 == 0 {
            messages.push(WatchTrainingRunResponse::decode(frame).unwrap());
        } else {
            trailers = String::from_utf8(frame.to_vec()).unwrap();
        }
    }
    (messages, trailers)
}

#[tokio::test]
async fn training_is_refused_without_features_and_for_k_out_of_range() {
    let directory = tempfile::tempdir().unwrap();
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("empty.db").display()
    );
    let server = RunningServer::serve(&database_url);
    let mut training = training_client(&server).await;

    let no_features = training
        .start_training(StartTrainingRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        no_features.code(),
        Code::FailedPrecondition,
        "{no_features:?}"
    );
    assert!(
        no_features.message().contains("crmbet etl"),
        "{no_features:?}"
    );

    for k in [1, 51, -3] {
        let refused = training
            .start_training(StartTrainingRequest {
                algorithm: Algorithm::Kmeans.into(),
                k,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "k={k}: {refused:?}");
        assert!(
            refused.message().contains("between 2 and 50"),
            "{refused:?}"
        );
    }

    let missing = training
        .get_training_run(GetTrainingRunRequest { run_id: 4242 })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");

    let rest = server
        .rest_client()
        .await
        .post(format!("{}/api/v1/training/runs", server.url()))
        .json(&serde_json::json!({ "algorithm": "ALGORITHM_KMEANS", "k": 60 }))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 400);
    let body: serde_json::Value = rest.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("between 2 and 50"),
        "{body}"
    );
    let models = training
        .list_models(ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(models.models.is_empty(), "refusals train nothing");
}

#[tokio::test]
async fn a_training_run_streams_every_stage_to_a_grpc_web_client() {
    let server = RunningServer::start(300);
    let mut training = training_client(&server).await;
    let before = training
        .list_models(ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .models;
    assert_eq!(before.len(), 1, "the demo trained one model");
    assert!(before[0].active);

    let run_id = training
        .start_training(StartTrainingRequest {
            algorithm: Algorithm::Auto.into(),
            seed: 11,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .run_id;
    let busy = training
        .start_training(StartTrainingRequest::default())
        .await
        .unwrap_err();
    assert_eq!(busy.code(), Code::FailedPrecondition, "{busy:?}");

    let client = reqwest::Client::builder().http1_only().build().unwrap();
    let response = client
        .post(format!(
            "{}/crmbet.v1.TrainingService/WatchTrainingRun",
            server.url()
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .bearer_auth(server.access_token().await)
        .body(grpc_web_frame(&WatchTrainingRunRequest { run_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.status(), 200);
    let (events, trailers) = grpc_web_messages(response.bytes().await.unwrap());
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    let stages: BTreeSet<i32> = events.iter().map(|event| event.stage).collect();
    for stage in [
        TrainingStage::LoadingFeatures,
        TrainingStage::Transforming,
        TrainingStage::Fitting,
        TrainingStage::Evaluating,
        TrainingStage::Naming,
        TrainingStage::Saving,
        TrainingStage::Done,
    ] {
        assert!(
            stages.contains(&(stage as i32)),
            "no {stage:?} event in {events:#?}"
        );
    }
    let last = events.last().unwrap();
    assert_eq!(last.status, TrainingStatus::Succeeded as i32, "{last:?}");
    assert_eq!(last.percent, 100.0);
    assert!(
        events
            .windows(2)
            .all(|pair| pair[0].percent <= pair[1].percent),
        "percent never goes back: {events:#?}"
    );

    let run = training
        .get_training_run(GetTrainingRunRequest { run_id })
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    assert_eq!(run.status, TrainingStatus::Succeeded as i32, "{run:?}");
    assert!(run.model_id > 0);

    let after = training
        .list_models(ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .models;
    assert_eq!(after.len(), 2);
    assert_eq!(after[0].model_id, run.model_id, "newest first");
    assert!(!after[0].active, "the run was not asked to activate");
    assert!(!after[0].selection_reason.is_empty());
    let activated = training
        .activate_model(ActivateModelRequest {
            model_id: run.model_id,
        })
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap();
    assert!(activated.active);
    let rest: serde_json::Value = server
        .rest_client()
        .await
        .get(format!("{}/api/v1/models", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["models"][0]["model_id"], run.model_id);
    assert_eq!(rest["models"][0]["active"], true);
    assert_eq!(rest["models"][1]["active"], false);
}
