//! Base64 (standard alphabet) for `grpc-status-details-bin` and for error details whose
//! type the descriptor pool does not know.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes with padding.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut encoded = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let first = chunk[0];
        let second = chunk.get(1).copied().unwrap_or(0);
        let third = chunk.get(2).copied().unwrap_or(0);
        let group = (u32::from(first) << 16) | (u32::from(second) << 8) | u32::from(third);
        let characters = [
            ALPHABET[((group >> 18) & 63) as usize],
            ALPHABET[((group >> 12) & 63) as usize],
            ALPHABET[((group >> 6) & 63) as usize],
            ALPHABET[(group & 63) as usize],
        ];
        let kept = chunk.len() + 1;
        for (position, character) in characters.into_iter().enumerate() {
            encoded.push(if position < kept {
                char::from(character)
            } else {
                '='
            });
        }
    }
    encoded
}

/// Decodes with or without padding; `None` for any character outside the alphabet or an
/// impossible length.
pub(crate) fn decode(text: &[u8]) -> Option<Vec<u8>> {
    let unpadded = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    if unpadded.len() % 4 == 1 {
        return None;
    }
    let mut decoded = Vec::with_capacity(unpadded.len() * 3 / 4);
    for chunk in unpadded.chunks(4) {
        let mut group: u32 = 0;
        for (position, character) in chunk.iter().enumerate() {
            let value = sextet(*character)?;
            group |= u32::from(value) << (18 - 6 * position);
        }
        let bytes = group.to_be_bytes();
        decoded.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(decoded)
}

fn sextet(character: u8) -> Option<u8> {
    match character {
        b'A'..=b'Z' => Some(character - b'A'),
        b'a'..=b'z' => Some(character - b'a' + 26),
        b'0'..=b'9' => Some(character - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(encode(plain.as_bytes()), encoded);
            assert_eq!(
                decode(encoded.as_bytes()).as_deref(),
                Some(plain.as_bytes())
            );
            let unpadded = encoded.trim_end_matches('=');
            assert_eq!(
                decode(unpadded.as_bytes()).as_deref(),
                Some(plain.as_bytes())
            );
        }
    }

    #[test]
    fn refuses_invalid_input() {
        assert_eq!(decode(b"Zm9v!"), None);
        assert_eq!(decode(b"Z"), None);
    }
}
