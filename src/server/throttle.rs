//! Password guessing, slowed down.
//!
//! Failures are counted per client address and per user name (as the client sent it, known or
//! not: the same answer for both, so nothing tells which names exist). Once a key has failed
//! more than its free allowance ([`FREE_PER_ADDRESS`], [`FREE_PER_USER`]: a user's count adds up
//! the failures from every address, so it gets more), each further attempt of that key waits
//! its turn: [`FIRST_DELAY`] after the previous one, doubling with every failure up to
//! [`MAX_DELAY`]. Attempts over parallel connections queue behind each other, so more
//! connections do not guess faster; an attempt whose turn is more than [`MAX_WAIT`] away is
//! answered at once as a failed login without its password being checked, so the queue (and
//! a real user's wait behind a guesser) stays bounded. A success clears the user's count (not
//! the address's: one valid account must not reset the count of an address guessing others).
//! Counts are forgotten [`FORGET_AFTER`] after the last failure.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Failures of one address that cost nothing.
pub const FREE_PER_ADDRESS: u32 = 3;
/// Failures of one user name, from all addresses together, that cost nothing.
pub const FREE_PER_USER: u32 = 10;
/// Delay after the first failure beyond the free ones.
pub const FIRST_DELAY: Duration = Duration::from_millis(250);
/// Longest delay between two attempts of a key.
pub const MAX_DELAY: Duration = Duration::from_secs(4);
/// Longest an attempt waits for its turn; beyond, it is refused unchecked.
pub const MAX_WAIT: Duration = Duration::from_secs(5);
/// How long a key's failures are remembered.
pub const FORGET_AFTER: Duration = Duration::from_secs(600);
/// Keys remembered at most (names are the client's to choose).
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

impl Key {
    fn free(&self) -> u32 {
        match self {
            Key::User(_) => FREE_PER_USER,
            Key::Address(_) => FREE_PER_ADDRESS,
        }
    }
}

#[derive(Debug)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    /// The earliest moment the next attempt of this key may be checked.
    next_turn: Instant,
}

/// Failed logins by user and by address.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    keys: Mutex<HashMap<Key, Entry>>,
}

/// What the throttle decided for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// How long the attempt waits before its password is checked.
    pub delay: Duration,
    /// Failures of the most failed of its keys so far.
    pub failures: u32,
    /// The attempt is refused without its password being checked (its turn is too far).
    pub refused: bool,
}

fn delay_after(failures: u32, free: u32) -> Duration {
    if failures < free {
        return Duration::ZERO;
    }
    let doublings = (failures - free).min(16);
    FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

fn keys(user: &str, address: IpAddr) -> [Key; 2] {
    [Key::User(user.to_lowercase()), Key::Address(address)]
}

impl LoginThrottle {
    /// Takes the attempt's turn: how long it must wait before its password is checked, or
    /// whether it is refused unchecked.
    pub fn admit(&self, user: &str, address: IpAddr) -> Admission {
        let now = Instant::now();
        let mut map = self.keys.lock();
        let keys = keys(user, address);
        let mut turn = now;
        let mut failures = 0;
        for key in &keys {
            let Some(entry) = map.get(key) else { continue };
            if now.duration_since(entry.last_failure) > FORGET_AFTER {
                map.remove(key);
                continue;
            }
            if delay_after(entry.failures, key.free()).is_zero() {
                continue;
            }
            turn = turn.max(entry.next_turn);
            failures = failures.max(entry.failures);
        }
        if turn.duration_since(now) > MAX_WAIT {
            return Admission {
                delay: Duration::ZERO,
                failures,
                refused: true,
            };
        }
        // Take the turn: the next attempt of each throttled key comes one delay later.
        for key in &keys {
            if let Some(entry) = map.get_mut(key) {
                let delay = delay_after(entry.failures, key.free());
                if !delay.is_zero() {
                    entry.next_turn = turn + delay;
                }
            }
        }
        Admission {
            delay: turn.duration_since(now),
            failures,
            refused: false,
        }
    }

    /// Counts a failed attempt.
    pub fn failed(&self, user: &str, address: IpAddr) {
        let now = Instant::now();
        let mut map = self.keys.lock();
        if map.len() >= MAX_KEYS {
            map.retain(|_, e| now.duration_since(e.last_failure) <= FORGET_AFTER);
            if map.len() >= MAX_KEYS {
                // Under a flood of names, keep the addresses and the most failed names.
                map.retain(|k, e| matches!(k, Key::Address(_)) || e.failures >= k.free());
            }
        }
        for key in keys(user, address) {
            let free = key.free();
            let entry = map.entry(key).or_insert(Entry {
                failures: 0,
                last_failure: now,
                next_turn: now,
            });
            entry.failures = entry.failures.saturating_add(1);
            entry.last_failure = now;
            entry.next_turn = entry.next_turn.max(now + delay_after(entry.failures, free));
        }
    }

    /// Clears the user's failures after a successful login.
    pub fn succeeded(&self, user: &str) {
        self.keys.lock().remove(&Key::User(user.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_after_the_free_failures_and_are_capped() {
        let free = FREE_PER_ADDRESS;
        assert_eq!(delay_after(0, free), Duration::ZERO);
        assert_eq!(delay_after(free - 1, free), Duration::ZERO);
        assert_eq!(delay_after(free, free), FIRST_DELAY);
        assert_eq!(delay_after(free + 1, free), FIRST_DELAY * 2);
        assert_eq!(delay_after(free + 30, free), MAX_DELAY);
    }

    #[test]
    fn parallel_attempts_queue_and_success_clears_the_user_only() {
        let throttle = LoginThrottle::default();
        let here: IpAddr = [127, 0, 0, 1].into();
        let there: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..FREE_PER_ADDRESS {
            assert_eq!(throttle.admit("bob", here).delay, Duration::ZERO);
            throttle.failed("bob", here);
        }
        // The next attempts from the address, as from parallel connections, wait one after
        // the other, whatever the name; from elsewhere they do not.
        let first = throttle.admit("Bob", here);
        let second = throttle.admit("alice", here);
        assert!(
            first.delay >= FIRST_DELAY - Duration::from_millis(50),
            "{first:?}"
        );
        assert!(
            second.delay >= first.delay + FIRST_DELAY - Duration::from_millis(50),
            "{second:?}"
        );
        assert_eq!(throttle.admit("alice", there).delay, Duration::ZERO);
        // An address queueing far ahead is refused unchecked, and that takes no turn.
        let mut refused = 0;
        for _ in 0..100 {
            let admission = throttle.admit("bob", here);
            assert!(admission.delay <= MAX_WAIT);
            refused += usize::from(admission.refused);
        }
        assert!(refused > 50, "{refused}");
        // The user's own count: more failures from anywhere before it costs anything.
        for _ in 0..FREE_PER_USER {
            throttle.failed("carol", there);
        }
        let other: IpAddr = [10, 0, 0, 2].into();
        assert!(throttle.admit("carol", other).delay > Duration::ZERO);
        throttle.succeeded("CAROL");
        assert_eq!(throttle.admit("carol", other).delay, Duration::ZERO);
    }
}
