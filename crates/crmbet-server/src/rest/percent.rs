//! Percent-decoding of URL paths and query strings.

/// Decodes `%XX` escapes; `None` when an escape is malformed or the result is not UTF-8.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] != b'%' {
            decoded.push(bytes[index]);
            index += 1;
            continue;
        }
        let high = hex_value(*bytes.get(index + 1)?)?;
        let low = hex_value(*bytes.get(index + 2)?)?;
        decoded.push((high << 4) | low);
        index += 3;
    }
    String::from_utf8(decoded).ok()
}

/// Decodes a query-string component: `+` is a space, then `%XX` escapes.
pub(crate) fn form_decode(text: &str) -> Option<String> {
    percent_decode(&text.replace('+', " "))
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_strictly() {
        let cases = [
            ("plain", Some("plain")),
            ("a%20b", Some("a b")),
            ("p%40x.com", Some("p@x.com")),
            ("%E2%82%AC", Some("€")),
            ("a+b", Some("a+b")),
            ("%", None),
            ("%2", None),
            ("%zz", None),
            ("%FF", None),
        ];
        for (text, expected) in cases {
            assert_eq!(percent_decode(text).as_deref(), expected, "{text}");
        }
    }

    #[test]
    fn form_decoding_turns_plus_into_space() {
        assert_eq!(form_decode("a+b%2Bc").as_deref(), Some("a b+c"));
    }
}
