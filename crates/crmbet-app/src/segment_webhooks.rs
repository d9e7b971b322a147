//! Operators' webhooks for segment changes: registering one (its signing secret is made
//! here and shown once), listing them with their delivery state, removing one, and reading
//! the batches it refused too often. Delivery itself runs in `crmbet-integrations`.

use crmbet_core::{Error, Result};
use crmbet_store::entity::{webhook_dead_letters, webhook_endpoints};
use crmbet_store::{NewWebhookEndpoint, Store};
use rand::Rng;
use rand::distr::Alphanumeric;

/// Longest accepted webhook URL.
pub const MAX_URL_CHARS: usize = 2048;
/// Longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 200;
/// Characters of a generated signing secret (alphanumeric: about 190 bits).
const SECRET_CHARS: usize = 32;

/// A registered webhook and its secret, which is not shown again.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredWebhook {
    pub endpoint: webhook_endpoints::Model,
    pub secret: String,
}

/// The webhook use cases; cheap to clone.
#[derive(Debug, Clone)]
pub struct SegmentWebhooks {
    store: Store,
}

impl SegmentWebhooks {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Registers `url`, which receives every segment change recorded from now on.
    pub async fn register(
        &self,
        url: &str,
        description: &str,
        created_by: Option<String>,
    ) -> Result<RegisteredWebhook> {
        let url = check_url(url)?;
        let description = description.trim();
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(Error::invalid_argument(
                "description",
                format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        let secret: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(SECRET_CHARS)
            .map(char::from)
            .collect();
        let endpoint = self
            .store
            .create_webhook_endpoint(NewWebhookEndpoint {
                url,
                description: description.to_owned(),
                secret: format!("whsec_{secret}"),
                created_by,
            })
            .await?;
        Ok(RegisteredWebhook {
            secret: endpoint.secret.clone(),
            endpoint,
        })
    }

    /// Every webhook, oldest first, with how many dead letters it has.
    pub async fn list(&self) -> Result<Vec<(webhook_endpoints::Model, i64)>> {
        let endpoints = self.store.webhook_endpoints().await?;
        let counts = self.store.webhook_dead_letter_counts().await?;
        Ok(endpoints
            .into_iter()
            .map(|endpoint| {
                let dead_letters = counts.get(&endpoint.id).copied().unwrap_or(0);
                (endpoint, dead_letters)
            })
            .collect())
    }

    /// Removes a webhook and its dead letters.
    pub async fn remove(&self, webhook_id: i64) -> Result<()> {
        self.store.delete_webhook_endpoint(webhook_id).await
    }

    /// The batches a webhook refused too often, oldest first.
    pub async fn dead_letters(&self, webhook_id: i64) -> Result<Vec<webhook_dead_letters::Model>> {
        self.store.webhook_dead_letters(webhook_id).await
    }
}

/// An absolute `http://` or `https://` URL with a host, as given (trimmed).
fn check_url(url: &str) -> Result<String> {
    let url = url.trim();
    let refuse = |reason: &str| Err(Error::invalid_argument("url", reason.to_owned()));
    if url.is_empty() {
        return refuse("is required: the address that receives the segment changes");
    }
    if url.chars().count() > MAX_URL_CHARS {
        return refuse(&format!("must be at most {MAX_URL_CHARS} characters"));
    }
    if url
        .chars()
        .any(|character| character.is_whitespace() || character.is_control())
    {
        return refuse("must not contain spaces or control characters");
    }
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => rest,
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        _ => return refuse("must start with https:// (or http://)"),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return refuse("must not carry credentials: authenticate by the signature instead");
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, after)) => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return refuse("has text after its [IPv6] host that is not a :port"),
            },
            None => return refuse("opens an [IPv6] host without closing it"),
        },
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return refuse("must name a host, e.g. https://hooks.example.com/crmbet");
    }
    if port.is_some_and(|port| !matches!(port.parse::<u16>(), Ok(1..))) {
        return refuse("has a port that is not a number from 1 to 65535");
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_urls_with_a_host_and_refuses_the_rest() {
        for good in [
            "https://hooks.example.com/crmbet",
            "http://127.0.0.1:8080/hook?x=1",
            "  HTTPS://example.com  ",
            "https://[::1]:9000/",
        ] {
            assert!(check_url(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "example.com/hook",
            "ftp://example.com/",
            "https:///path",
            "https://:80/",
            "https://user:pass@example.com/",
            "https://exa mple.com/",
            "https://example.com:99999/",
            "https://example.com:abc/",
            "https://example.com:/",
            "https://[::1/",
        ] {
            let error = check_url(bad).expect_err(bad);
            assert!(
                matches!(error, Error::InvalidArgument { .. }),
                "{bad}: {error:?}"
            );
        }
        assert!(check_url(&format!("https://e.com/{}", "a".repeat(MAX_URL_CHARS))).is_err());
    }
}
