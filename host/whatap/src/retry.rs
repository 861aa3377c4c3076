//! A sender's delivery plan, as a state machine: handed the time, it says which collector host
//! the next attempt goes to, how long to pause first, and when to give up. The sender owns the
//! socket and the clock and does what the plan says; the plan's rules are tested here on
//! simulated time.
//!
//! The rules, as WhaTap's agents fail over: an attempt that fails moves to the next host in
//! the list; after every host has failed once in a row, the sender pauses, the pause doubling
//! from [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`]; it gives up after `max_attempts` attempts or
//! when the budget (or an outer deadline, whichever is first) is spent.

use std::time::Duration;

/// First pause after every host failed once; doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between two rounds of hosts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The limits of one delivery (all attempts at one batch, or at one confirmation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Collector hosts, tried in order (at least one).
    pub hosts: usize,
    pub max_attempts: u32,
    /// Time for all attempts, from the plan's start.
    pub budget: Duration,
}

/// What the sender does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Pause for `pause` (possibly zero), then attempt on host `host` (an index into the list).
    Attempt { host: usize, pause: Duration },
    /// Stop: the delivery failed after `attempts` attempts in `elapsed`.
    GiveUp { attempts: u32, elapsed: Duration },
}

/// One delivery's plan. Times are the caller's clock, as a `Duration` since any fixed origin.
#[derive(Debug, Clone)]
pub struct Plan {
    policy: Policy,
    started: Duration,
    deadline: Duration,
    host: usize,
    attempts: u32,
    backoff: Duration,
}

impl Plan {
    /// A plan starting `now` at host `host`, ending at the budget or at `outer_deadline`,
    /// whichever is first.
    pub fn new(
        policy: Policy,
        now: Duration,
        host: usize,
        outer_deadline: Option<Duration>,
    ) -> Plan {
        let mut deadline = now.saturating_add(policy.budget);
        if let Some(outer) = outer_deadline {
            deadline = deadline.min(outer);
        }
        Plan {
            policy: Policy {
                hosts: policy.hosts.max(1),
                ..policy
            },
            started: now,
            deadline,
            host: host % policy.hosts.max(1),
            attempts: 0,
            backoff: FIRST_BACKOFF,
        }
    }

    /// The host the next (or current) attempt goes to.
    pub fn host(&self) -> usize {
        self.host
    }

    /// How long an attempt started `now` may take: what is left of the budget.
    pub fn remaining(&self, now: Duration) -> Duration {
        self.deadline.saturating_sub(now)
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// An attempt starts now; what [`failed`](Self::failed) counts.
    pub fn attempting(&mut self) {
        self.attempts = self.attempts.saturating_add(1);
    }

    /// The attempt on [`host`](Self::host) failed at `now`: what to do next.
    pub fn failed(&mut self, now: Duration) -> Next {
        let hosts = self.policy.hosts;
        self.host = (self.host + 1) % hosts;
        if self.attempts >= self.policy.max_attempts || now >= self.deadline {
            return Next::GiveUp {
                attempts: self.attempts,
                elapsed: now.saturating_sub(self.started),
            };
        }
        // After every host has failed once in a row, pause before the next round.
        let pause = if (self.attempts as usize).is_multiple_of(hosts) {
            let pause = self.backoff.min(self.remaining(now));
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            pause
        } else {
            Duration::ZERO
        };
        Next::Attempt {
            host: self.host,
            pause,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn policy(hosts: usize, max_attempts: u32, budget_ms: u64) -> Policy {
        Policy {
            hosts,
            max_attempts,
            budget: MS(budget_ms),
        }
    }

    /// Runs a plan where every attempt fails after `attempt_ms`, recording each attempt's host
    /// and start time, until it gives up.
    fn all_fail(mut plan: Plan, start_ms: u64, attempt_ms: u64) -> (Vec<(usize, u64)>, Next) {
        let mut now = MS(start_ms);
        let mut seen = Vec::new();
        loop {
            seen.push((plan.host(), now.as_millis() as u64));
            plan.attempting();
            now += MS(attempt_ms).min(plan.remaining(now));
            match plan.failed(now) {
                Next::Attempt { pause, .. } => now += pause,
                give_up => return (seen, give_up),
            }
        }
    }

    #[test]
    fn hosts_rotate_and_the_pause_comes_after_each_full_round_doubling_to_its_cap() {
        let plan = Plan::new(policy(2, 12, 60_000), MS(0), 0, None);
        let (seen, end) = all_fail(plan, 0, 10);
        let hosts: Vec<usize> = seen.iter().map(|(h, _)| *h).collect();
        assert_eq!(hosts, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
        // Starts: 10 ms per attempt, pauses of 100, 200, 400, 800, 1600 then 2000 after each round.
        let starts: Vec<u64> = seen.iter().map(|(_, t)| *t).collect();
        assert_eq!(
            starts,
            [0, 10, 120, 130, 340, 350, 760, 770, 1580, 1590, 3200, 3210]
        );
        assert_eq!(
            end,
            Next::GiveUp {
                attempts: 12,
                elapsed: MS(3220)
            }
        );
    }

    #[test]
    fn the_budget_or_an_outer_deadline_ends_it_first() {
        // Each attempt times out at 1 s; a 2.5 s budget allows three (the third cut short).
        let (seen, end) = all_fail(Plan::new(policy(1, 100, 2_500), MS(0), 0, None), 0, 1_000);
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!(
            end,
            Next::GiveUp {
                attempts: 3,
                elapsed: MS(2_500)
            }
        );
        // The invocation's deadline comes before the budget.
        let plan = Plan::new(policy(3, 100, 30_000), MS(5_000), 1, Some(MS(5_300)));
        assert_eq!(plan.remaining(MS(5_000)), MS(300));
        let (seen, end) = all_fail(plan, 5_000, 200);
        assert_eq!(seen, [(1, 5_000), (2, 5_200)]);
        assert!(matches!(end, Next::GiveUp { attempts: 2, .. }), "{end:?}");
    }

    #[test]
    fn a_pause_never_runs_past_the_deadline_and_the_first_host_can_be_any() {
        let mut plan = Plan::new(policy(1, 10, 150), MS(0), 0, None);
        plan.attempting();
        assert_eq!(
            plan.failed(MS(120)),
            Next::Attempt {
                host: 0,
                pause: MS(30)
            }
        );
        let plan = Plan::new(policy(3, 10, 1_000), MS(0), 7, None);
        assert_eq!(plan.host(), 1, "the index wraps into the list");
    }
}
