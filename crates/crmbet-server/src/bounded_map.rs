//! The one eviction rule of the in-process maps that must not grow without bound (the read
//! cache's local copy, the verified-token memo).

use std::collections::HashMap;
use std::hash::Hash;

/// Makes room in `map` before an insert once it holds `capacity` entries: drops the entries
/// `is_live` rejects, and everything if the map is still 3/4 full after that, so a map of
/// live entries is not scanned again on every insert.
pub(crate) fn make_room<K: Eq + Hash, V>(
    map: &mut HashMap<K, V>,
    capacity: usize,
    mut is_live: impl FnMut(&V) -> bool,
) {
    if map.len() < capacity {
        return;
    }
    map.retain(|_, value| is_live(value));
    if map.len() >= capacity * 3 / 4 {
        map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_drops_dead_entries_and_starts_over_when_mostly_live() {
        let mut map: HashMap<u32, bool> = (0..4).map(|key| (key, key == 0)).collect();
        make_room(&mut map, 5, |live| *live);
        assert_eq!(map.len(), 4, "below capacity: untouched");
        make_room(&mut map, 4, |live| *live);
        assert_eq!(map.len(), 1, "dead entries dropped");
        let mut live: HashMap<u32, bool> = (0..4).map(|key| (key, true)).collect();
        make_room(&mut live, 4, |live| *live);
        assert!(live.is_empty(), "still 3/4 full: cleared");
    }
}
