//! Child declarations: what a supervisor starts, how it restarts it, and what it rebuilds from.
//!
//! A [`ChildSpec`] names a child, gives its [`RestartPolicy`], an optional per-child
//! [`ChildIntensity`], and a factory that (re)spawns the child *linked to the supervisor*. The
//! factory closure owns whatever the child rebuilds its state from (an `Arc` store, a journal
//! handle, the effective options): every restart calls it again.

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, SpawnErr};
use serde::{Deserialize, Serialize};

use super::window::Intensity;

/// When a child is restarted (Erlang/OTP semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartPolicy {
    /// Always restarted, whether it stopped normally or failed.
    Permanent,
    /// Restarted only when it failed (panic or error); a normal stop removes it.
    Transient,
    /// Never restarted; any exit removes it.
    Temporary,
}

/// How a child ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ChildExit {
    /// It stopped by itself or was stopped, with an optional reason.
    Normal {
        /// The stop reason, if any.
        reason: Option<String>,
    },
    /// It panicked or returned an error (the error's display text).
    Failed {
        /// The failure text.
        reason: String,
    },
}

impl ChildExit {
    /// The reason text, `"normal"` when a normal stop gave none.
    pub fn reason(&self) -> &str {
        match self {
            Self::Normal { reason } => reason.as_deref().unwrap_or("normal"),
            Self::Failed { reason } => reason,
        }
    }
}

impl RestartPolicy {
    /// Whether a child with this policy is restarted after `exit`.
    pub fn restarts_after(self, exit: &ChildExit) -> bool {
        match self {
            Self::Permanent => true,
            Self::Transient => matches!(exit, ChildExit::Failed { .. }),
            Self::Temporary => false,
        }
    }
}

/// What happens when a child exceeds its *own* intensity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExceeded {
    /// The supervisor gives up and escalates to its own parent (it fails with an
    /// [`Escalation`](super::Escalation)).
    Escalate,
    /// Only this child is given up: it stays stopped, its handles see `unavailable`, the
    /// supervisor and the siblings carry on (SPEC §13.2: a conversation past its intensity stops
    /// alone).
    StopChild,
}

/// A per-child intensity, checked in addition to the supervisor's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildIntensity {
    /// The window.
    pub intensity: Intensity,
    /// What exceeding it does.
    pub on_exceeded: OnExceeded,
}

/// The future a [`ChildFactory`] returns: the spawned child's cell.
pub type SpawnFuture = BoxFuture<'static, Result<ActorCell, SpawnErr>>;

/// (Re)spawns a child linked to the supervisor cell it is given.
pub type ChildFactory = Arc<dyn Fn(ActorCell) -> SpawnFuture + Send + Sync>;

/// One supervised child: name, restart policy, optional own intensity, and its factory.
#[derive(Clone)]
pub struct ChildSpec {
    /// Unique name within the supervisor and its [`ChildRegistry`](super::ChildRegistry); handles
    /// look the child up by it. It is *not* a ractor registry name (those are process-global).
    pub name: String,
    /// When the child is restarted.
    pub restart: RestartPolicy,
    /// Optional per-child intensity; every restart also counts toward the supervisor's.
    pub intensity: Option<ChildIntensity>,
    pub(crate) factory: ChildFactory,
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("restart", &self.restart)
            .field("intensity", &self.intensity)
            .finish_non_exhaustive()
    }
}

impl ChildSpec {
    /// A child spawned by `factory`, which must link the child to the supervisor cell it is given
    /// (e.g. with `Actor::spawn_linked(None, .., supervisor)`).
    pub fn new<F, Fut>(name: impl Into<String>, restart: RestartPolicy, factory: F) -> Self
    where
        F: Fn(ActorCell) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ActorCell, SpawnErr>> + Send + 'static,
    {
        Self {
            name: name.into(),
            restart,
            intensity: None,
            factory: Arc::new(move |sup| Box::pin(factory(sup))),
        }
    }

    /// A child of actor type `A`: `make` builds the actor value and its start arguments afresh on
    /// every (re)start — capture the state the child rebuilds from in it. The child is spawned
    /// unnamed (no process-global registry entry) and linked to the supervisor.
    pub fn actor<A, F>(name: impl Into<String>, restart: RestartPolicy, make: F) -> Self
    where
        A: Actor,
        F: Fn() -> (A, A::Arguments) + Send + Sync + 'static,
    {
        Self::new(name, restart, move |sup| {
            let (actor, args) = make();
            async move {
                let (r, _join) = Actor::spawn_linked(None, actor, args, sup).await?;
                Ok(r.get_cell())
            }
        })
    }

    /// Adds a per-child intensity.
    pub fn with_intensity(mut self, intensity: Intensity, on_exceeded: OnExceeded) -> Self {
        self.intensity = Some(ChildIntensity {
            intensity,
            on_exceeded,
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policy_table() {
        let normal = ChildExit::Normal { reason: None };
        let failed = ChildExit::Failed {
            reason: "boom".into(),
        };
        let table = [
            (RestartPolicy::Permanent, true, true),
            (RestartPolicy::Transient, false, true),
            (RestartPolicy::Temporary, false, false),
        ];
        for (policy, after_normal, after_failure) in table {
            assert_eq!(policy.restarts_after(&normal), after_normal, "{policy:?}");
            assert_eq!(policy.restarts_after(&failed), after_failure, "{policy:?}");
        }
    }
}
