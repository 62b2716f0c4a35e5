//! Background work on a fixed period that stops at shutdown: the catalog refresh and the lake
//! maintenance of `serve` share it, so both skip missed ticks instead of bursting after a stall.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// A period that first fires one `every` after creation, never bursts to catch up, and ends at
/// shutdown.
pub struct Periodic {
    ticker: tokio::time::Interval,
    shutdown: CancellationToken,
}

impl Periodic {
    /// A period of `every` until `shutdown` is cancelled.
    pub fn new(every: Duration, shutdown: CancellationToken) -> Periodic {
        let start = tokio::time::Instant::now() + every;
        let mut ticker = tokio::time::interval_at(start, every);
        // A refresh or a compaction that overran its period runs again one period later, not
        // at once.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Periodic { ticker, shutdown }
    }

    /// Waits for the next period: `false` once shutdown has been asked for.
    pub async fn next(&mut self) -> bool {
        tokio::select! {
            _ = self.shutdown.cancelled() => false,
            _ = self.ticker.tick() => true,
        }
    }
}
