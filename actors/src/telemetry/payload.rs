//! Event payloads, eager and lazy. A caller emits either JSON ([`EventPayload::Json`], redacted
//! by the store when it records the event) or a typed source ([`EventPayload::Lazy`], e.g. the
//! runtime's per-call record shared by the three events of one tool call) that renders its JSON
//! only when something needs it: the decisions ring on snapshot, an observer such as the journal
//! writer, an alert, a ring entry of an event that carries `reason` / `error`.
//!
//! Redaction (SPEC §5.9) is never skipped: a recorded [`Payload`] is either JSON that went
//! through the store's [`Redactor`] or a lazy source bundled with that redactor, and the only way
//! to read it is to render it through that redactor. A [`LazyPayload`] implementation decides
//! which of its values can skip the redactor; only values it generated itself (ids it made,
//! numbers, fixed words) may.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::event::EventName;
use super::store::Redactor;

/// A typed payload that renders its JSON on demand.
///
/// One source may back several events (it is told which one it renders), so the events of one
/// tool call can share one allocation.
pub trait LazyPayload: Send + Sync + fmt::Debug {
    /// The payload of `event` as JSON, with exactly the shape the eager form would have after
    /// redaction. Every value that could hold a secret — anything a caller, a tool, a config
    /// file or the OS supplied, including keys — goes through `redact`; only values the source
    /// generated itself may skip it.
    fn render(&self, event: EventName, redact: &Redactor) -> Value;

    /// Whether the payload of `event` has a `reason` or an `error` key (the fields a ring entry
    /// shows and the error rule of §8.3 reads). When `false` the store keeps the ring entry
    /// without rendering; when `true` it renders at record time.
    fn has_ring_fields(&self, event: EventName) -> bool;
}

/// What a caller emits.
#[derive(Clone)]
pub enum EventPayload {
    /// JSON, redacted by the store when the event is recorded.
    Json(Value),
    /// A typed source, rendered (and redacted) when something needs the JSON.
    Lazy(Arc<dyn LazyPayload>),
}

impl fmt::Debug for EventPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(v) => f.debug_tuple("Json").field(v).finish(),
            Self::Lazy(src) => f.debug_tuple("Lazy").field(src).finish(),
        }
    }
}

impl PartialEq for EventPayload {
    /// JSON by value; lazy sources by identity (they are unredacted, so never compared by
    /// rendering them).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Json(a), Self::Json(b)) => a == b,
            (Self::Lazy(a), Self::Lazy(b)) => std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b)),
            _ => false,
        }
    }
}

impl From<Value> for EventPayload {
    fn from(v: Value) -> Self {
        Self::Json(v)
    }
}

/// A recorded payload: redacted JSON, or a lazy source with the redactor that renders it.
/// Derefs to the (redacted) JSON, rendering it on first use; `Display` is the compact JSON.
#[derive(Clone)]
pub struct Payload(Repr);

#[derive(Clone)]
enum Repr {
    Json(Value),
    Lazy {
        source: Arc<dyn LazyPayload>,
        event: EventName,
        redact: Redactor,
        rendered: OnceLock<Value>,
    },
}

impl Payload {
    /// A lazy payload of `event`, rendered through `redact` (only the store builds these, so a
    /// lazy payload never travels without its redactor).
    pub(crate) fn lazy(source: Arc<dyn LazyPayload>, event: EventName, redact: Redactor) -> Self {
        Self(Repr::Lazy {
            source,
            event,
            redact,
            rendered: OnceLock::new(),
        })
    }

    /// The redacted JSON (rendered now if it is lazy and was not rendered yet).
    pub fn json(&self) -> &Value {
        match &self.0 {
            Repr::Json(v) => v,
            Repr::Lazy {
                source,
                event,
                redact,
                rendered,
            } => rendered.get_or_init(|| source.render(*event, redact)),
        }
    }

    /// The redacted JSON, owned.
    pub fn into_value(self) -> Value {
        match self.0 {
            Repr::Json(v) => v,
            Repr::Lazy { .. } => self.json().clone(),
        }
    }

    /// Sets `key` of an object payload (a lazy payload is rendered and becomes plain JSON).
    pub fn insert(&mut self, key: &str, value: Value) {
        let mut v = std::mem::take(self).into_value();
        if let Some(o) = v.as_object_mut() {
            o.insert(key.to_owned(), value);
        }
        *self = Self::from(v);
    }

    /// Whether this is a lazy payload that has not been rendered yet.
    pub fn is_unrendered(&self) -> bool {
        matches!(&self.0, Repr::Lazy { rendered, .. } if rendered.get().is_none())
    }

    /// Whether the payload has `key`, without rendering a lazy payload that promised to have
    /// neither `reason` nor `error` when `key` is one of those.
    pub(crate) fn has_ring_key(&self, key: &str) -> bool {
        debug_assert!(key == "reason" || key == "error", "not a ring key: {key}");
        if let Repr::Lazy { source, event, .. } = &self.0
            && !source.has_ring_fields(*event)
        {
            return false;
        }
        self.json().get(key).is_some()
    }

    /// `payload[key]`, without rendering when the lazy source promised no ring fields (see
    /// [`LazyPayload::has_ring_fields`]).
    pub(crate) fn ring_field(&self, key: &str) -> Option<&Value> {
        if !self.has_ring_key(key) {
            return None;
        }
        self.json().get(key)
    }
}

impl Deref for Payload {
    type Target = Value;
    fn deref(&self) -> &Value {
        self.json()
    }
}

impl From<Value> for Payload {
    /// Already-redacted JSON (e.g. read back from the journal).
    fn from(v: Value) -> Self {
        Self(Repr::Json(v))
    }
}

impl Default for Payload {
    fn default() -> Self {
        Self(Repr::Json(Value::Null))
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.json(), f)
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.json(), f)
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl PartialEq<Value> for Payload {
    fn eq(&self, other: &Value) -> bool {
        self.json() == other
    }
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;

    #[derive(Debug, Default)]
    struct Counting {
        renders: AtomicUsize,
    }

    impl LazyPayload for Counting {
        fn render(&self, event: EventName, redact: &Redactor) -> Value {
            self.renders.fetch_add(1, Ordering::SeqCst);
            redact(&json!({ "event": event.as_str(), "secret": "CANARY" }))
        }
        fn has_ring_fields(&self, _: EventName) -> bool {
            false
        }
    }

    #[test]
    fn lazy_payload_renders_once_through_its_redactor() {
        let src = Arc::new(Counting::default());
        let redact: Redactor = Arc::new(|v: &Value| {
            serde_json::from_str(&v.to_string().replace("CANARY", "[REDACTED]")).unwrap()
        });
        let p = Payload::lazy(src.clone(), EventName::ToolStarted, redact);
        assert!(p.is_unrendered());
        assert!(
            !p.has_ring_key("error"),
            "no render for a promised-absent key"
        );
        assert_eq!(src.renders.load(Ordering::SeqCst), 0);
        assert_eq!(
            p.to_string(),
            r#"{"event":"conversation.tool.started","secret":"[REDACTED]"}"#
        );
        assert_eq!(p["secret"], "[REDACTED]");
        assert_eq!(src.renders.load(Ordering::SeqCst), 1);
        let mut q = p.clone();
        q.insert("extra", json!(1));
        assert_eq!(q["extra"], 1);
        assert_eq!(p.get("extra"), None);
        let back: Payload = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }
}
