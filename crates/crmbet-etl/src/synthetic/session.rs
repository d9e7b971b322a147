//! Sessions of all players, planned before any row is made: which day, what time, how
//! many rows, which game and channel. Rows are then made one day at a time from the plan.
//!
//! A session takes 16 bytes, so the plan of a 10M-row lake (about 1.5M sessions) stays
//! small next to the rows it stands for.

use super::calendar::{Calendar, HISTORY_DAYS};
use super::market::{CHANNELS, PREFERRED_CHANNEL_SHARE};
use super::player::Player;
use super::sampler::Sampler;

/// Seconds in an hour.
const SECONDS_PER_HOUR: f64 = 3_600.0;

/// Standard deviation, in hours, of daytime session starts around the player's peak hour.
const START_HOUR_SIGMA: f64 = 2.5;

/// One planned session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PlannedSession {
    /// Index of the player in the player list.
    pub(super) player: u32,
    /// Rows the session holds (bonuses included).
    pub(super) rows: u32,
    /// Seconds after 00:00 UTC of its day when it starts.
    pub(super) start_second: u32,
    /// Day of the history it starts on.
    pub(super) day: u16,
    /// The game type most of its play is on.
    pub(super) primary_game: u8,
    /// Index into `CHANNELS`.
    pub(super) channel: u8,
}

/// Every session of the history, ordered by start; a session's id is its position.
pub(super) struct SessionPlan {
    sessions: Vec<PlannedSession>,
    day_bounds: Vec<usize>,
}

impl SessionPlan {
    /// Plans the sessions of `players` over the days of `calendar`.
    pub(super) fn new(sampler: &mut Sampler, players: &[Player], calendar: &Calendar) -> Self {
        let total: u64 = players.iter().map(|player| player.sessions).sum();
        let mut sessions = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        let mut sizes: Vec<u64> = Vec::new();
        for (index, player) in players.iter().enumerate() {
            if player.sessions == 0 {
                continue;
            }
            // One row each, then every further row to a session at random.
            sizes.clear();
            sizes.resize(usize::try_from(player.sessions).unwrap_or(1), 1);
            for _ in 0..player.rows - player.sessions {
                let slot = sampler.below(sizes.len() as u64) as usize;
                sizes[slot] += 1;
            }
            let count = sizes.len();
            for (ordinal, &size) in sizes.iter().enumerate() {
                let day = session_day(sampler, player, calendar, ordinal, count);
                let start_second = start_second(sampler, player);
                let primary_game = sampler.pick(&player.game_cumulative) as u8;
                let channel = if sampler.chance(PREFERRED_CHANNEL_SHARE) {
                    player.channel
                } else {
                    sampler.below(CHANNELS.len() as u64) as u8
                };
                sessions.push(PlannedSession {
                    player: index as u32,
                    rows: u32::try_from(size).unwrap_or(u32::MAX),
                    start_second,
                    day: day as u16,
                    primary_game,
                    channel,
                });
            }
        }
        // Stable, so sessions starting at the same second keep the players' order.
        sessions.sort_by_key(|session| (session.day, session.start_second));
        let day_bounds = (0..=HISTORY_DAYS)
            .map(|day| sessions.partition_point(|session| usize::from(session.day) < day))
            .collect();
        Self {
            sessions,
            day_bounds,
        }
    }

    /// The sessions starting on `day`, with the id of the first one.
    pub(super) fn of_day(&self, day: usize) -> (u64, &[PlannedSession]) {
        let first = self.day_bounds[day];
        let end = self.day_bounds[day + 1];
        (first as u64, &self.sessions[first..end])
    }
}

/// The day of a player's session `ordinal` of `count`: the first opens the player's
/// tenure, the last sets its recency, the others fall in between; then the player's
/// weekend habit moves it within its week.
fn session_day(
    sampler: &mut Sampler,
    player: &Player,
    calendar: &Calendar,
    ordinal: usize,
    count: usize,
) -> usize {
    let span = (player.last_day - player.first_day + 1) as u64;
    let day = if ordinal == 0 {
        player.first_day
    } else if ordinal + 1 == count {
        player.last_day
    } else {
        player.first_day + sampler.below(span) as usize
    };
    let weekday = calendar.weekday(day) as i64;
    let first = player.first_day as i64;
    let last = player.last_day as i64;
    let day_number = day as i64;
    let moved = if sampler.chance(player.weekend_propensity) {
        if weekday >= 5 {
            return day;
        }
        let saturday = day_number + 5 - weekday;
        let candidate = saturday + sampler.below(2) as i64;
        if candidate > last {
            candidate - 7
        } else {
            candidate
        }
    } else {
        if weekday < 5 {
            return day;
        }
        let monday = day_number - weekday;
        let candidate = monday + sampler.below(5) as i64;
        if candidate < first {
            candidate + 7
        } else {
            candidate
        }
    };
    if (first..=last).contains(&moved) {
        moved as usize
    } else {
        day
    }
}

/// When a session starts, in seconds after midnight UTC: at night with the player's night
/// propensity, otherwise around its peak hour, kept within 06:00–24:00.
fn start_second(sampler: &mut Sampler, player: &Player) -> u32 {
    if sampler.chance(player.night_propensity) {
        return sampler.below(6 * 3_600) as u32;
    }
    let mut hour = player.peak_hour + START_HOUR_SIGMA * sampler.normal();
    if hour < 6.0 {
        hour = 12.0 - hour;
    }
    if hour >= 24.0 {
        hour = 48.0 - hour;
    }
    let latest = 24.0 - 1.0 / SECONDS_PER_HOUR;
    (hour.clamp(6.0, latest) * SECONDS_PER_HOUR) as u32
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::synthetic::player::plan_players;

    #[test]
    fn sessions_hold_every_row_in_start_order() {
        let mut sampler = Sampler::new(21);
        let players = plan_players(&mut sampler, 500, 20_000, 0);
        let calendar = Calendar::ending(NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()).unwrap();
        let plan = SessionPlan::new(&mut sampler, &players, &calendar);
        let mut rows = 0;
        let mut previous = (0, 0);
        for day in 0..HISTORY_DAYS {
            let (_, sessions) = plan.of_day(day);
            for session in sessions {
                assert_eq!(usize::from(session.day), day);
                assert!(session.start_second < 86_400);
                assert!((session.day, session.start_second) >= previous);
                previous = (session.day, session.start_second);
                let player = &players[session.player as usize];
                assert!((player.first_day..=player.last_day).contains(&day));
                rows += u64::from(session.rows);
            }
        }
        assert_eq!(rows, 20_000);
    }
}
