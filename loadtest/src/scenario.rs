//! The named load scenarios (`--scenario NAME`).

use std::time::Duration;

use crate::driver::Load;
use crate::schedule::Schedule;

/// A named load shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// 100 concurrent requests (closed loop, concurrency 100); prints three summary lines
    /// (see [`crate::seed_lines`]).
    Seed100,
    /// 500 webhooks over 5 minutes, open loop.
    BlackFriday,
    /// 300 webhooks over 10 seconds, open loop.
    BotDrop,
    /// 1000 webhooks over 30 seconds, open loop.
    ExtremeBurst,
    /// `--rate R` for `--duration D` (default 60 s), open loop.
    Sustained,
}

/// Default length of `sustained` and of `--rate` runs without `--duration`.
pub const DEFAULT_SUSTAINED: Duration = Duration::from_secs(60);

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::Seed100,
        Scenario::BlackFriday,
        Scenario::BotDrop,
        Scenario::ExtremeBurst,
        Scenario::Sustained,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Seed100 => "seed-100",
            Scenario::BlackFriday => "black-friday",
            Scenario::BotDrop => "bot-drop",
            Scenario::ExtremeBurst => "extreme-burst",
            Scenario::Sustained => "sustained",
        }
    }

    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|sc| sc.name() == s)
    }

    /// The fixed load of a scenario; `None` for `sustained`, whose load comes from `--rate`.
    pub fn fixed_load(self) -> Option<Load> {
        match self {
            Scenario::Seed100 => Some(Load::Closed { total: 100 }),
            Scenario::BlackFriday => Some(Load::Open(Schedule::new(500, Duration::from_secs(300)))),
            Scenario::BotDrop => Some(Load::Open(Schedule::new(300, Duration::from_secs(10)))),
            Scenario::ExtremeBurst => {
                Some(Load::Open(Schedule::new(1000, Duration::from_secs(30))))
            }
            Scenario::Sustained => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for sc in Scenario::ALL {
            assert_eq!(Scenario::parse(sc.name()), Some(sc));
        }
        assert_eq!(Scenario::parse("nope"), None);
    }

    #[test]
    fn fixed_loads() {
        assert_eq!(
            Scenario::Seed100.fixed_load(),
            Some(Load::Closed { total: 100 })
        );
        let Some(Load::Open(s)) = Scenario::BotDrop.fixed_load() else {
            panic!("bot-drop is open loop");
        };
        assert_eq!((s.total(), s.duration()), (300, Duration::from_secs(10)));
        assert_eq!(Scenario::Sustained.fixed_load(), None);
    }
}
