//! Which progress updates become log lines: the first, then at most one
//! per interval, and the last one (whatever the interval) when the job
//! ends. The clock is a parameter (time since the job started), so the
//! rule is tested without sleeping.

use std::time::Duration;

/// At most one line per `interval`, plus the job's first and last update.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    last_logged: Option<Duration>,
    /// The latest update when it was held back: logged by `finish`.
    pending: Option<String>,
}

impl Throttle {
    /// A throttle letting through one line per `interval`.
    pub fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            last_logged: None,
            pending: None,
        }
    }

    /// The line to log for an update at `now`, or `None` when it is held
    /// back (it is then remembered as the possible last one). `line` is
    /// only built when it is needed.
    pub fn update(&mut self, now: Duration, line: impl FnOnce() -> String) -> Option<String> {
        let due = self
            .last_logged
            .is_none_or(|last| now.saturating_sub(last) >= self.interval);
        if due {
            self.last_logged = Some(now);
            self.pending = None;
            Some(line())
        } else {
            self.pending = Some(line());
            None
        }
    }

    /// The job's last update when it was held back (so the final state is
    /// always in the log); `None` when it was logged already.
    pub fn finish(&mut self) -> Option<String> {
        self.pending.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(throttle: &mut Throttle, seconds: f64, label: &str) -> Option<String> {
        throttle.update(Duration::from_secs_f64(seconds), || label.to_string())
    }

    /// First line at once; then only after the interval; the held-back
    /// last update comes out at the end.
    #[test]
    fn first_then_one_per_interval_then_last() {
        let mut t = Throttle::new(Duration::from_secs(10));
        assert_eq!(at(&mut t, 0.5, "a").as_deref(), Some("a"));
        assert_eq!(at(&mut t, 3.0, "b"), None);
        assert_eq!(at(&mut t, 10.4, "c"), None);
        assert_eq!(at(&mut t, 10.5, "d").as_deref(), Some("d"));
        assert_eq!(at(&mut t, 11.0, "e"), None);
        assert_eq!(at(&mut t, 12.0, "f"), None);
        assert_eq!(t.finish().as_deref(), Some("f"));
        assert_eq!(t.finish(), None);
    }

    /// A last update that was logged is not logged twice; a clock that
    /// goes backwards holds lines back instead of panicking.
    #[test]
    fn logged_last_is_not_repeated() {
        let mut t = Throttle::new(Duration::from_secs(1));
        assert!(at(&mut t, 5.0, "a").is_some());
        assert!(at(&mut t, 2.0, "b").is_none());
        assert!(at(&mut t, 6.0, "c").is_some());
        assert_eq!(t.finish(), None);
    }

    /// Over a long job the count of lines is bounded by its length over
    /// the interval, not by its number of updates.
    #[test]
    fn lines_are_bounded_by_time() {
        let mut t = Throttle::new(Duration::from_secs(10));
        let logged = (0..10_000)
            .filter(|i| at(&mut t, *i as f64 * 0.01, "x").is_some())
            .count();
        // 100 s of updates: t = 0, 10, ..., 90.
        assert_eq!(logged, 10);
        assert!(t.finish().is_some());
    }
}
