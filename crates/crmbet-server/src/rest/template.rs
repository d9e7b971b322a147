//! Path templates of `google.api.http` rules: parsing, and matching request paths.
//!
//! The grammar (from `google/api/http.proto`):
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = IDENT { "." IDENT } ;
//! Verb     = ":" LITERAL ;
//! ```
//! `**` may only be the last segment; `{name}` is short for `{name=*}`.

use std::fmt;

use crate::rest::percent::percent_decode;

/// A parsed path template such as `/api/v1/clusters/{cluster_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathTemplate {
    text: String,
    segments: Vec<Segment>,
    variables: Vec<Variable>,
    verb: Option<String>,
}

/// One `/`-separated piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Matches exactly this text.
    Literal(String),
    /// `*`: matches one non-empty segment.
    Single,
    /// `**`: matches the rest of the path, zero or more segments.
    Rest,
}

/// A `{field.path=...}` variable: the field it sets and the template segments it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Variable {
    field_path: Vec<String>,
    first_segment: usize,
    end_segment: usize,
}

/// Why a path template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path template {template:?}: {reason}")]
pub(crate) struct TemplateError {
    template: String,
    reason: String,
}

impl PathTemplate {
    /// Parses `text`; see the module documentation for the grammar.
    pub(crate) fn parse(text: &str) -> Result<Self, TemplateError> {
        let invalid = |reason: &str| TemplateError {
            template: text.to_owned(),
            reason: reason.to_owned(),
        };
        let Some(without_slash) = text.strip_prefix('/') else {
            return Err(invalid("must start with /"));
        };
        let (path, verb) = split_verb(without_slash);
        let mut segments = Vec::new();
        let mut variables: Vec<Variable> = Vec::new();
        let mut remaining = path;
        loop {
            if let Some(after_brace) = remaining.strip_prefix('{') {
                let Some(close) = after_brace.find('}') else {
                    return Err(invalid("a variable has no closing }"));
                };
                let inside = &after_brace[..close];
                if inside.contains('{') {
                    return Err(invalid("variables cannot nest"));
                }
                let (field_text, pattern) = inside.split_once('=').unwrap_or((inside, "*"));
                let field_path = parse_field_path(field_text).map_err(|reason| invalid(&reason))?;
                if variables
                    .iter()
                    .any(|variable| variable.field_path == field_path)
                {
                    return Err(invalid(&format!("variable {field_text} appears twice")));
                }
                let first_segment = segments.len();
                for piece in pattern.split('/') {
                    segments.push(parse_plain_segment(piece).map_err(|reason| invalid(&reason))?);
                }
                variables.push(Variable {
                    field_path,
                    first_segment,
                    end_segment: segments.len(),
                });
                remaining = &after_brace[close + 1..];
            } else {
                let end = remaining.find('/').unwrap_or(remaining.len());
                let piece = &remaining[..end];
                if piece.contains(['{', '}']) {
                    return Err(invalid("a variable must be a whole segment"));
                }
                segments.push(parse_plain_segment(piece).map_err(|reason| invalid(&reason))?);
                remaining = &remaining[end..];
            }
            if remaining.is_empty() {
                break;
            }
            let Some(after_slash) = remaining.strip_prefix('/') else {
                return Err(invalid("a variable must be followed by / or the end"));
            };
            remaining = after_slash;
            if remaining.is_empty() {
                return Err(invalid("empty segment"));
            }
        }
        let rest_positions = segments
            .iter()
            .enumerate()
            .filter(|(_, segment)| **segment == Segment::Rest)
            .map(|(index, _)| index);
        for position in rest_positions {
            if position + 1 != segments.len() {
                return Err(invalid("** may only be the last segment"));
            }
        }
        Ok(Self {
            text: text.to_owned(),
            segments,
            variables,
            verb: verb.map(str::to_owned),
        })
    }

    /// The template as written in the proto.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The dotted field paths of the variables, in template order.
    pub(crate) fn variable_field_paths(&self) -> impl Iterator<Item = &[String]> {
        self.variables
            .iter()
            .map(|variable| variable.field_path.as_slice())
    }

    /// The first segment when it is a literal, such as `api` for `/api/v1/clusters`.
    pub(crate) fn literal_prefix(&self) -> Option<&str> {
        match self.segments.first() {
            Some(Segment::Literal(literal))
                if self
                    .variables
                    .first()
                    .is_none_or(|variable| variable.first_segment > 0) =>
            {
                Some(literal)
            }
            _ => None,
        }
    }

    /// How specific the template is: more literal segments win, then templates without `**`.
    pub(crate) fn specificity(&self) -> (usize, bool) {
        let literal_count = self
            .segments
            .iter()
            .filter(|segment| matches!(segment, Segment::Literal(_)))
            .count();
        let has_rest = self.segments.last() == Some(&Segment::Rest);
        (literal_count, !has_rest)
    }

    /// Matches a request path (still percent-encoded) and returns the decoded value of every
    /// variable in template order, or `None` when the path does not fit.
    pub(crate) fn match_path(&self, path: &str) -> Option<Vec<String>> {
        let without_slash = path.strip_prefix('/')?;
        let without_verb = match &self.verb {
            Some(verb) => without_slash
                .strip_suffix(verb.as_str())?
                .strip_suffix(':')?,
            None => without_slash,
        };
        let decoded: Vec<String> = without_verb
            .split('/')
            .map(percent_decode)
            .collect::<Option<_>>()?;
        let ends_with_rest = self.segments.last() == Some(&Segment::Rest);
        let fixed_count = if ends_with_rest {
            self.segments.len() - 1
        } else {
            self.segments.len()
        };
        let fits = if ends_with_rest {
            decoded.len() >= fixed_count
        } else {
            decoded.len() == fixed_count
        };
        if !fits {
            return None;
        }
        let fixed_match = self.segments[..fixed_count].iter().zip(&decoded).all(
            |(segment, value)| match segment {
                Segment::Literal(literal) => literal == value,
                Segment::Single => !value.is_empty(),
                Segment::Rest => false,
            },
        );
        if !fixed_match {
            return None;
        }
        let values = self
            .variables
            .iter()
            .map(|variable| {
                let end = if variable.end_segment == self.segments.len() && ends_with_rest {
                    decoded.len()
                } else {
                    variable.end_segment
                };
                decoded[variable.first_segment..end].join("/")
            })
            .collect();
        Some(values)
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

/// Splits a trailing `:verb` off the path (without its leading `/`).
fn split_verb(path: &str) -> (&str, Option<&str>) {
    match path.rsplit_once(':') {
        Some((before, verb)) if !verb.is_empty() && !verb.contains(['/', '{', '}']) => {
            (before, Some(verb))
        }
        _ => (path, None),
    }
}

fn parse_field_path(text: &str) -> Result<Vec<String>, String> {
    let parts: Vec<String> = text.split('.').map(str::to_owned).collect();
    let valid = parts.iter().all(|part| {
        let mut characters = part.chars();
        characters
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
            && characters.all(|character| character.is_ascii_alphanumeric() || character == '_')
    });
    if !valid {
        return Err(format!("{text:?} is not a field path"));
    }
    Ok(parts)
}

fn parse_plain_segment(text: &str) -> Result<Segment, String> {
    match text {
        "" => Err("empty segment".to_owned()),
        "*" => Ok(Segment::Single),
        "**" => Ok(Segment::Rest),
        _ if text.contains(['*', '{', '}', '=']) => Err(format!("{text:?} is not a segment")),
        _ => Ok(Segment::Literal(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_paths_and_extracts_variables() {
        // (template, path, expected variable values or None when it must not match)
        let cases: &[(&str, &str, Option<&[&str]>)] = &[
            ("/api/v1/clusters", "/api/v1/clusters", Some(&[])),
            ("/api/v1/clusters", "/api/v1/clusters/", None),
            ("/api/v1/clusters", "/api/v1/cluster", None),
            (
                "/api/v1/clusters/{cluster_id}",
                "/api/v1/clusters/7",
                Some(&["7"]),
            ),
            ("/api/v1/clusters/{cluster_id}", "/api/v1/clusters/", None),
            (
                "/api/v1/clusters/{cluster_id}",
                "/api/v1/clusters/7/users",
                None,
            ),
            (
                "/api/v1/user/{user_id}/segment",
                "/api/v1/user/p%40x.com/segment",
                Some(&["p@x.com"]),
            ),
            (
                "/api/v1/user/{user_id}/segment",
                "/api/v1/user/a%2Fb/segment",
                Some(&["a/b"]),
            ),
            (
                "/api/v1/user/{user_id}/segment",
                "/api/v1/user/%zz/segment",
                None,
            ),
            (
                "/v1/{name=shelves/*}",
                "/v1/shelves/3",
                Some(&["shelves/3"]),
            ),
            ("/v1/{name=shelves/*}", "/v1/books/3", None),
            (
                "/v1/{name=shelves/*/books/*}",
                "/v1/shelves/3/books/9",
                Some(&["shelves/3/books/9"]),
            ),
            ("/v1/{shelf.id}/books", "/v1/3/books", Some(&["3"])),
            ("/v1/files/{path=**}", "/v1/files/a/b/c", Some(&["a/b/c"])),
            ("/v1/files/{path=**}", "/v1/files", Some(&[""])),
            ("/v1/*/items", "/v1/anything/items", Some(&[])),
            (
                "/v1/{name=runs/*}:cancel",
                "/v1/runs/4:cancel",
                Some(&["runs/4"]),
            ),
            ("/v1/{name=runs/*}:cancel", "/v1/runs/4", None),
            ("/v1/runs:batchGet", "/v1/runs:batchGet", Some(&[])),
            ("/v1/runs:batchGet", "/v1/runs", None),
        ];
        for (template_text, path, expected) in cases {
            let template = PathTemplate::parse(template_text).expect(template_text);
            let expected = expected.map(|values| {
                values
                    .iter()
                    .map(|value| (*value).to_owned())
                    .collect::<Vec<_>>()
            });
            assert_eq!(
                template.match_path(path),
                expected,
                "{template_text} against {path}"
            );
        }
    }

    #[test]
    fn rejects_malformed_templates() {
        let cases = [
            ("api/v1/clusters", "must start with /"),
            ("/api/{cluster_id", "no closing }"),
            ("/api/{a{b}}", "cannot nest"),
            ("/api/x{id}", "whole segment"),
            ("/api/{id}x", "followed by /"),
            ("/api//clusters", "empty segment"),
            ("/api/clusters/", "empty segment"),
            ("/api/{1id}", "not a field path"),
            ("/api/{id}/{id}", "appears twice"),
            ("/api/**/x", "last segment"),
            ("/api/a*b", "not a segment"),
        ];
        for (text, reason) in cases {
            let error = PathTemplate::parse(text).expect_err(text);
            assert!(error.to_string().contains(reason), "{text}: {error}");
        }
    }

    #[test]
    fn reports_variables_prefix_and_specificity() {
        let template = PathTemplate::parse("/api/v1/clusters/{cluster_id}/users").expect("valid");
        let fields: Vec<&[String]> = template.variable_field_paths().collect();
        assert_eq!(fields, vec![["cluster_id".to_owned()].as_slice()]);
        assert_eq!(template.literal_prefix(), Some("api"));
        assert_eq!(template.specificity(), (4, true));
        let variable_first = PathTemplate::parse("/{name=api/*}").expect("valid");
        assert_eq!(variable_first.literal_prefix(), None);
        let rest = PathTemplate::parse("/api/{path=**}").expect("valid");
        assert_eq!(rest.specificity(), (1, false));
    }
}
