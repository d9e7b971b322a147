//! Cursor paging: validated page sizes and opaque page tokens.
//!
//! A page token carries the last key of the previous page and the scope of the query that
//! issued it, so a token from one query cannot silently page through another.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Page size when the request leaves it 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest page a caller may ask for.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// A validated page size in `1..=MAX_PAGE_SIZE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    /// Validates the request's `page_size`; 0 means the default.
    ///
    /// ```
    /// use crmbet_core::PageSize;
    /// assert_eq!(PageSize::parse(0).unwrap().get(), 100);
    /// assert!(PageSize::parse(5000).is_err());
    /// ```
    pub fn parse(raw: i32) -> Result<Self, Error> {
        match u32::try_from(raw) {
            Ok(0) => Ok(Self(DEFAULT_PAGE_SIZE)),
            Ok(size) if size <= MAX_PAGE_SIZE => Ok(Self(size)),
            _ => Err(Error::invalid_argument(
                "page_size",
                format!(
                    "must be between 1 and {MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE}), got {raw}"
                ),
            )),
        }
    }

    /// The number of items in a page.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// Where the next page starts: after `last_key` in the query named by `scope`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageToken {
    #[serde(rename = "s")]
    scope: String,
    #[serde(rename = "k")]
    last_key: String,
}

impl PageToken {
    /// A token that continues `scope` after `last_key`.
    pub fn new(scope: impl Into<String>, last_key: impl Into<String>) -> Self {
        Self {
            scope: scope.into(),
            last_key: last_key.into(),
        }
    }

    /// The opaque string handed to callers.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Reads the request's `page_token` for the query `scope`; empty means the first page.
    pub fn decode(raw: &str, scope: &str) -> Result<Option<String>, Error> {
        if raw.is_empty() {
            return Ok(None);
        }
        let invalid = || {
            Error::invalid_argument(
                "page_token",
                "is not a token this server issued; pass the next_page_token of the previous \
                 response unchanged, or leave it empty for the first page",
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let token: PageToken = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if token.scope != scope {
            return Err(Error::invalid_argument(
                "page_token",
                "was issued for a different query; repeat the same filters as the first page, \
                 or leave it empty to start over",
            ));
        }
        Ok(Some(token.last_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_bounds() {
        let cases: &[(i32, Option<u32>)] = &[
            (0, Some(DEFAULT_PAGE_SIZE)),
            (1, Some(1)),
            (1000, Some(1000)),
            (1001, None),
            (5000, None),
            (-1, None),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                PageSize::parse(*raw).ok().map(PageSize::get),
                *expected,
                "{raw}"
            );
        }
    }

    #[test]
    fn token_round_trip_and_scope() {
        let token = PageToken::new("clusters:model=3", "42").encode();
        assert_eq!(
            PageToken::decode(&token, "clusters:model=3").unwrap(),
            Some("42".to_owned())
        );
        assert!(PageToken::decode(&token, "clusters:model=4").is_err());
        assert!(PageToken::decode("not-a-token!", "clusters:model=3").is_err());
        assert_eq!(PageToken::decode("", "anything").unwrap(), None);
    }
}
