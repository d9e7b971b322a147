//! Short, stable fingerprints of text (FNV-1a, 64 bit) for keys that must stay the same
//! across releases and machines: page-token scopes, per-lake folder names. Not for secrets.

/// The FNV-1a hash of `text` as 16 hex digits.
///
/// ```
/// assert_eq!(crmbet_core::fingerprint::fingerprint(""), "cbf29ce484222325");
/// assert_ne!(crmbet_core::fingerprint::fingerprint("a"), crmbet_core::fingerprint::fingerprint("b"));
/// ```
pub fn fingerprint(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}
