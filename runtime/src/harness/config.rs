//! [`HarnessConfig`]: what the load harness starts and for how long, with the reference
//! profile of the issue (`--projects 5 --conversations 8 --events 4 --concurrency 24`) as
//! [`HarnessConfig::reference`], and [`Workload`], the sub-benchmark selection (`--only`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{HarnessError, HarnessResult};

/// One sub-benchmark of the harness, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// Every sub-benchmark, in the order of [`Workload::ALL`].
    All,
    /// `run_tool` of the harness's no-op provider tool, `concurrency` callers for `duration`.
    Noop,
    /// `run_tool` of `fs.read` on a 1 KiB file, `concurrency` callers for `duration`.
    FsRead,
    /// `events` scripted user messages per round to every conversation (each with a tool call),
    /// for `duration`.
    Conversations,
    /// `churn_projects` projects started, then stopped.
    Projects,
    /// `idle_conversations` conversations started in one project; memory per conversation.
    IdleMemory,
    /// `crash_samples` conversations crashed once each; crash → answered again.
    CrashRecovery,
}

impl Workload {
    /// The single workloads in the order `All` runs them. Idle memory comes first so that its
    /// RSS delta is not absorbed by memory freed by earlier phases.
    pub const ALL: [Workload; 6] = [
        Workload::IdleMemory,
        Workload::CrashRecovery,
        Workload::Projects,
        Workload::Noop,
        Workload::FsRead,
        Workload::Conversations,
    ];

    /// The snake_case name (`--only` value).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Noop => "noop",
            Self::FsRead => "fs_read",
            Self::Conversations => "conversations",
            Self::Projects => "projects",
            Self::IdleMemory => "idle_memory",
            Self::CrashRecovery => "crash_recovery",
        }
    }

    /// The single workloads this selection runs, in order.
    pub fn expand(self) -> Vec<Workload> {
        match self {
            Self::All => Self::ALL.to_vec(),
            one => vec![one],
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Workload {
    type Err = HarnessError;

    fn from_str(s: &str) -> HarnessResult<Self> {
        let lower = s.trim().to_ascii_lowercase();
        std::iter::once(Workload::All)
            .chain(Workload::ALL)
            .find(|w| w.as_str() == lower || w.as_str().replace('_', "-") == lower)
            .ok_or_else(|| HarnessError::InvalidConfig {
                field: "workload",
                reason: format!(
                    "`{s}` is not one of all, noop, fs_read, conversations, projects, idle_memory, crash_recovery"
                ),
            })
    }
}

/// What the harness starts and drives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HarnessConfig {
    /// Projects hosted during the steady workloads (`noop`, `fs_read`, `conversations`); each
    /// is a fresh temporary directory. 1..=1000.
    pub projects: usize,
    /// Conversations per project in the `conversations` workload. 1..=10 000.
    pub conversations: usize,
    /// User messages each conversation receives per round. 1..=1000.
    pub events: usize,
    /// Concurrent callers of the timed workloads (and parallel starters of the lifecycle
    /// ones). 1..=4096.
    pub concurrency: usize,
    /// How long each timed workload runs. 100 ms..=1 h.
    #[serde(with = "duration_ms")]
    pub duration: Duration,
    /// Which sub-benchmarks run.
    pub workload: Workload,
    /// Projects started and stopped by the `projects` workload. 1..=10 000.
    pub churn_projects: usize,
    /// Conversations started by the `idle_memory` workload (one project). 1..=100 000.
    pub idle_conversations: usize,
    /// Conversations crashed by the `crash_recovery` workload (one crash each). 1..=1000.
    pub crash_samples: usize,
}

impl HarnessConfig {
    /// The reference profile: 5 projects, 8 conversations each, 4 events per round, 24
    /// concurrent callers, 5 s per timed workload, every workload; 1,000 projects churned,
    /// 10,000 idle conversations, 20 crash samples (the figures of the issue).
    pub fn reference() -> Self {
        Self {
            projects: 5,
            conversations: 8,
            events: 4,
            concurrency: 24,
            duration: Duration::from_secs(5),
            workload: Workload::All,
            churn_projects: 1000,
            idle_conversations: 10_000,
            crash_samples: 20,
        }
    }

    /// Checks every field against its bounds.
    pub fn validate(&self) -> HarnessResult<()> {
        let range = |field: &'static str, value: usize, min: usize, max: usize| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(HarnessError::InvalidConfig {
                    field,
                    reason: format!("must be in {min}..={max}, got {value}"),
                })
            }
        };
        range("projects", self.projects, 1, 1000)?;
        range("conversations", self.conversations, 1, 10_000)?;
        range("events", self.events, 1, 1000)?;
        range("concurrency", self.concurrency, 1, 4096)?;
        range("churn_projects", self.churn_projects, 1, 10_000)?;
        range("idle_conversations", self.idle_conversations, 1, 100_000)?;
        range("crash_samples", self.crash_samples, 1, 1000)?;
        if self.duration < Duration::from_millis(100) || self.duration > Duration::from_secs(3600) {
            return Err(HarnessError::InvalidConfig {
                field: "duration",
                reason: format!("must be in 100 ms..=1 h, got {:?}", self.duration),
            });
        }
        Ok(())
    }
}

impl Default for HarnessConfig {
    fn default() -> Self {
        Self::reference()
    }
}

/// Serializes a `Duration` as whole milliseconds.
mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_profile_is_the_issue_s() {
        let r = HarnessConfig::reference();
        assert_eq!(
            (r.projects, r.conversations, r.events, r.concurrency),
            (5, 8, 4, 24)
        );
        assert_eq!(r.workload, Workload::All);
        r.validate().unwrap();
    }

    #[test]
    fn out_of_bounds_fields_are_named() {
        let mut c = HarnessConfig::reference();
        c.concurrency = 0;
        let e = c.validate().unwrap_err();
        assert_eq!(e.code(), "invalid_harness_config");
        assert_eq!(e.details()["field"], "concurrency");
        let mut c = HarnessConfig::reference();
        c.duration = Duration::from_millis(5);
        assert_eq!(c.validate().unwrap_err().details()["field"], "duration");
    }

    #[test]
    fn workloads_parse_by_name_and_expand_in_order() {
        assert_eq!("fs_read".parse::<Workload>().unwrap(), Workload::FsRead);
        assert_eq!(
            "Crash-Recovery".parse::<Workload>().unwrap(),
            Workload::CrashRecovery
        );
        assert_eq!("all".parse::<Workload>().unwrap().expand(), Workload::ALL);
        assert_eq!(Workload::Noop.expand(), [Workload::Noop]);
        let e = "nope".parse::<Workload>().unwrap_err();
        assert_eq!(e.details()["field"], "workload");
        for w in Workload::ALL {
            assert_eq!(w.as_str().parse::<Workload>().unwrap(), w);
        }
    }

    #[test]
    fn config_round_trips_through_json() {
        let c = HarnessConfig::reference();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["duration"], 5000);
        assert_eq!(v["workload"], "all");
        assert_eq!(serde_json::from_value::<HarnessConfig>(v).unwrap(), c);
    }
}
