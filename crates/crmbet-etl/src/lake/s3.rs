//! A lake in an S3 bucket, or in an S3-compatible store such as MinIO or moto, through
//! aws-sdk-s3 and the standard AWS configuration chain (environment, profile files).
//!
//! Listing is `ListObjectsV2`, paginated, under `<prefix>/<folder>/`; an object's
//! fingerprint is its key relative to the prefix, its size and its ETag. To read an object
//! the ETL downloads it to a scratch file and opens that with the local read path, so
//! DataFusion needs no object store of its own: [`S3Settings`] configure the one S3 client
//! there is.

use std::error::Error as StdError;
use std::path::Path;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use tokio::io::AsyncWriteExt;

use super::{LakeObject, is_hidden};
use crate::error::{Error, Result};

/// The URL scheme of S3 lakes.
pub const S3_SCHEME: &str = "s3://";

/// The region used when neither the settings nor the AWS configuration name one; S3-compatible
/// stores ignore it, and AWS answers a bucket elsewhere with a redirect error naming its region.
const FALLBACK_REGION: &str = "us-east-1";

/// How to reach S3, beyond what the standard AWS configuration chain says. The AWS chain
/// supplies credentials, the region and `AWS_ENDPOINT_URL`; a field set here wins over it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// The endpoint of an S3-compatible store, e.g. `http://127.0.0.1:9000`; `None` means
    /// `AWS_ENDPOINT_URL` (read by the SDK) or AWS itself.
    pub endpoint_url: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`) instead of a bucket host name; `None`
    /// means on exactly when a custom endpoint is configured (MinIO, moto).
    pub force_path_style: Option<bool>,
    /// The AWS region; `None` means the AWS configuration's, else `us-east-1`.
    pub region: Option<String>,
}

/// A lake under `s3://bucket/prefix`.
#[derive(Debug, Clone)]
pub struct S3Lake {
    bucket: String,
    /// The prefix without leading or trailing `/`; empty for the bucket's root.
    prefix: String,
    client: Client,
    /// The endpoint named in messages about an unreachable store.
    endpoint: String,
}

impl S3Lake {
    /// Connects to the lake at `url` (`s3://bucket/prefix`): loads the AWS configuration,
    /// applies `settings` and checks that credentials are available. The bucket itself is
    /// first touched by [`S3Lake::list`].
    pub async fn connect(url: &str, settings: &S3Settings) -> Result<Self> {
        let (bucket, prefix) = parse_url(url)?;
        let sdk_config = load_sdk_config(settings).await;
        check_credentials(&sdk_config).await?;
        let endpoint = match sdk_config.endpoint_url() {
            Some(endpoint) => endpoint.to_owned(),
            None => {
                let region = sdk_config
                    .region()
                    .map_or(FALLBACK_REGION, |region| region.as_ref());
                format!("https://s3.{region}.amazonaws.com")
            }
        };
        let force_path_style = settings
            .force_path_style
            .unwrap_or(sdk_config.endpoint_url().is_some());
        let s3_config = aws_sdk_s3::config::Builder::from(&sdk_config)
            .force_path_style(force_path_style)
            .build();
        Ok(Self {
            bucket,
            prefix,
            client: Client::from_conf(s3_config),
            endpoint,
        })
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The prefix of the lake root in the bucket, without leading or trailing `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Every object under `<prefix>/<folder>/`, sorted by key relative to the prefix.
    pub(super) async fn list(&self, folder: &str) -> Result<Vec<LakeObject>> {
        let listing_prefix = self.full_key(&format!("{folder}/"));
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&listing_prefix)
            .into_paginator()
            .send();
        let mut objects = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| self.listing_error(&listing_prefix, error))?;
            for object in page.contents() {
                let Some(full_key) = object.key() else {
                    continue;
                };
                let Some(key) = self.relative_key(full_key) else {
                    continue;
                };
                if key.ends_with('/') || has_hidden_part(&key) {
                    continue;
                }
                let size = object
                    .size()
                    .and_then(|size| u64::try_from(size).ok())
                    .unwrap_or_default();
                let etag = object.e_tag().unwrap_or_default().trim_matches('"');
                objects.push(LakeObject::new(key, size, etag.to_owned()));
            }
        }
        objects.sort_by(|left, right| left.fingerprint.key.cmp(&right.fingerprint.key));
        Ok(objects)
    }

    /// Downloads the object with `key` (relative to the prefix) to the file `destination`,
    /// streaming; returns the bytes written.
    pub(super) async fn download(&self, key: &str, destination: &Path) -> Result<u64, String> {
        let response = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|error| {
                format!("cannot download {}: {}", self.url(key), sdk_reason(&error))
            })?;
        let write_failure =
            |error: std::io::Error| format!("cannot write {}: {error}", destination.display());
        let mut file = tokio::fs::File::create(destination)
            .await
            .map_err(write_failure)?;
        let mut body = response.body;
        let mut written = 0_u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|error| format!("cannot download {}: {error}", self.url(key)))?
        {
            file.write_all(&chunk).await.map_err(write_failure)?;
            written += chunk.len() as u64;
        }
        file.flush().await.map_err(write_failure)?;
        Ok(written)
    }

    /// The last `length` bytes of the object with `key` (the whole object, if shorter).
    pub(super) async fn read_tail(&self, key: &str, length: u64) -> std::io::Result<Vec<u8>> {
        if length == 0 {
            return Ok(Vec::new());
        }
        let response = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .range(format!("bytes=-{length}"))
            .send()
            .await
            .map_err(|error| std::io::Error::other(sdk_reason(&error)))?;
        let bytes = response
            .body
            .collect()
            .await
            .map_err(std::io::Error::other)?;
        Ok(bytes.to_vec())
    }

    /// The object's URL, `s3://bucket/prefix/key`, for messages.
    pub(super) fn url(&self, key: &str) -> String {
        format!("{S3_SCHEME}{}/{}", self.bucket, self.full_key(key))
    }

    /// The lake's URL, `s3://bucket/prefix`.
    pub(super) fn root_url(&self) -> String {
        if self.prefix.is_empty() {
            return format!("{S3_SCHEME}{}", self.bucket);
        }
        format!("{S3_SCHEME}{}/{}", self.bucket, self.prefix)
    }

    fn full_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            return key.to_owned();
        }
        format!("{}/{key}", self.prefix)
    }

    fn relative_key(&self, full_key: &str) -> Option<String> {
        if self.prefix.is_empty() {
            return Some(full_key.to_owned());
        }
        full_key
            .strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_prefix('/'))
            .map(str::to_owned)
    }

    /// The fatal error for a failed listing page, named so that the user knows what to fix.
    fn listing_error(
        &self,
        listing_prefix: &str,
        error: SdkError<ListObjectsV2Error, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Error {
        match &error {
            SdkError::ServiceError(service) => {
                let service_error = service.err();
                if matches!(service_error, ListObjectsV2Error::NoSuchBucket(_))
                    || service_error.code() == Some("NoSuchBucket")
                {
                    return Error::BucketNotFound {
                        bucket: self.bucket.clone(),
                    };
                }
                if matches!(
                    service_error.code(),
                    Some("InvalidAccessKeyId" | "SignatureDoesNotMatch")
                ) {
                    return Error::Credentials {
                        reason: sdk_reason(&error),
                    };
                }
            }
            SdkError::DispatchFailure(failure) if !failure.is_user() => {
                return Error::S3Unreachable {
                    endpoint: self.endpoint.clone(),
                    reason: innermost_reason(&error),
                };
            }
            SdkError::TimeoutError(_) => {
                return Error::S3Unreachable {
                    endpoint: self.endpoint.clone(),
                    reason: "the request timed out".to_owned(),
                };
            }
            _ => {}
        }
        Error::LakeListing {
            location: format!("{S3_SCHEME}{}/{listing_prefix}", self.bucket),
            reason: sdk_reason(&error),
        }
    }
}

/// Splits `s3://bucket/prefix` into the bucket and the prefix without surrounding `/`.
fn parse_url(url: &str) -> Result<(String, String)> {
    let invalid = |reason: &str| Error::InvalidLakeUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = url
        .strip_prefix(S3_SCHEME)
        .ok_or_else(|| invalid("it does not start with s3://"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(invalid("the bucket name is empty"));
    }
    if bucket.chars().any(|character| character.is_whitespace()) {
        return Err(invalid("the bucket name contains white space"));
    }
    Ok((bucket.to_owned(), prefix.trim_matches('/').to_owned()))
}

/// The AWS configuration chain with `settings` applied over it, on the hyper 1 + rustls
/// (ring) HTTP client.
async fn load_sdk_config(settings: &S3Settings) -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client);
    if let Some(endpoint_url) = &settings.endpoint_url {
        loader = loader.endpoint_url(endpoint_url);
    }
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let sdk_config = loader.load().await;
    if sdk_config.region().is_some() {
        return sdk_config;
    }
    sdk_config
        .into_builder()
        .region(Region::from_static(FALLBACK_REGION))
        .build()
}

/// Resolves the credentials once, so that a run without any stops before it starts.
async fn check_credentials(sdk_config: &SdkConfig) -> Result<()> {
    let Some(provider) = sdk_config.credentials_provider() else {
        return Err(Error::NoCredentials);
    };
    match provider.provide_credentials().await {
        Ok(_) => Ok(()),
        Err(CredentialsError::CredentialsNotLoaded(_)) => Err(Error::NoCredentials),
        Err(error) => Err(Error::Credentials {
            reason: DisplayErrorContext(&error).to_string(),
        }),
    }
}

/// Whether a part of the key below `transactions/` is hidden (`.name`, `_SUCCESS`), as the
/// local lake skips such files and folders.
fn has_hidden_part(key: &str) -> bool {
    key.split('/').skip(1).any(is_hidden)
}

/// An SDK error as one line: the service's code and message, or the whole error chain.
fn sdk_reason<E: StdError + ProvideErrorMetadata + 'static, R: std::fmt::Debug>(
    error: &SdkError<E, R>,
) -> String {
    if let SdkError::ServiceError(service) = error {
        let service_error = service.err();
        if let Some(code) = service_error.code() {
            let message = service_error.message().unwrap_or("no message");
            return format!("{code}: {message}");
        }
    }
    DisplayErrorContext(error).to_string()
}

/// The deepest cause of `error`, e.g. `Connection refused (os error 111)`.
fn innermost_reason(error: &(dyn StdError + 'static)) -> String {
    let mut innermost = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lake_urls_split_into_bucket_and_prefix() {
        let cases = [
            ("s3://bucket/lake", Some(("bucket", "lake"))),
            ("s3://bucket/a/b/", Some(("bucket", "a/b"))),
            ("s3://bucket", Some(("bucket", ""))),
            ("s3://bucket/", Some(("bucket", ""))),
            ("s3:///lake", None),
            ("s3://", None),
            ("s3://my bucket/lake", None),
            ("/local/lake", None),
        ];
        for (url, expected) in cases {
            let parsed = parse_url(url).ok();
            let parsed = parsed
                .as_ref()
                .map(|(bucket, prefix)| (bucket.as_str(), prefix.as_str()));
            assert_eq!(parsed, expected, "{url}");
        }
    }

    #[test]
    fn hidden_parts_below_transactions_are_skipped() {
        let cases = [
            ("transactions/dt=2026-01-01/part-0.csv", false),
            ("transactions/_SUCCESS", true),
            ("transactions/dt=2026-01-01/.part-0.csv.crc", true),
            ("transactions/_temporary/part-0.csv", true),
        ];
        for (key, hidden) in cases {
            assert_eq!(has_hidden_part(key), hidden, "{key}");
        }
    }
}
