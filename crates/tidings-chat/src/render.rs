//! Renderings of one fan-out event, shared by every member's connection that delivers it.
//!
//! A room message going to N members is the same octets for every member whose front-end and
//! options match: IRC renders it once per listener and tag-capability set, the WebSocket API once.
//! The renderings travel with the event (inside the one `Arc` every outbox holds), so a member's
//! connection that runs far behind still finds them, and they are freed with the event.

use std::any::Any;
use std::fmt;
use std::sync::Mutex;

/// Distinct renderings kept per event; a further variant is rendered each time it is asked for.
pub const RENDERS_MAX: usize = 8;

/// Which rendering: the front-end instance that makes it and the variant of its options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderKey {
    /// An address unique to the renderer for as long as it serves (e.g. its shared state's).
    pub frontend: usize,
    /// The options the octets depend on (e.g. IRC tag capabilities as bits).
    pub variant: u32,
}

type Slot = (RenderKey, Box<dyn Any + Send + Sync>);

/// The renderings of one event (at most [`RENDERS_MAX`]). Cloning an event copies none of them.
#[derive(Default)]
pub struct Renders {
    slots: Mutex<Vec<Slot>>,
}

impl Renders {
    /// The rendering under `key`, made by `render` on first use and kept (the lock is not held
    /// while rendering; two members racing may both render, and the first kept wins). A key whose
    /// kept value is of another type than `T` is rendered afresh and not kept.
    pub fn get_or_render<T: Clone + Send + Sync + 'static>(&self, key: RenderKey, render: impl FnOnce() -> T) -> T {
        if let Some(value) = self.lookup::<T>(key) {
            return value;
        }
        let value = render();
        let mut slots = self.slots.lock().expect("renders lock");
        if slots.len() < RENDERS_MAX && !slots.iter().any(|(k, _)| *k == key) {
            slots.push((key, Box::new(value.clone())));
        }
        value
    }

    fn lookup<T: Clone + 'static>(&self, key: RenderKey) -> Option<T> {
        let slots = self.slots.lock().expect("renders lock");
        slots.iter().find(|(k, _)| *k == key).and_then(|(_, value)| value.downcast_ref::<T>().cloned())
    }

    /// Renderings kept.
    pub fn len(&self) -> usize {
        self.slots.lock().expect("renders lock").len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Clone for Renders {
    fn clone(&self) -> Self {
        Renders::default()
    }
}

impl fmt::Debug for Renders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Renders({})", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const A: RenderKey = RenderKey { frontend: 1, variant: 0 };
    const B: RenderKey = RenderKey { frontend: 1, variant: 3 };

    #[test]
    fn each_key_is_rendered_once_and_kept_apart() {
        let renders = Renders::default();
        let mut calls = 0;
        let mut get = |key, text: &str| {
            renders.get_or_render(key, || {
                calls += 1;
                Arc::<[u8]>::from(text.as_bytes())
            })
        };
        assert_eq!(&*get(A, "a"), b"a");
        assert_eq!(&*get(A, "other"), b"a", "a kept rendering is reused");
        assert_eq!(&*get(B, "b"), b"b", "another variant has its own");
        assert_eq!(calls, 2);
    }

    #[test]
    fn bounded_and_type_checked() {
        let renders = Renders::default();
        for variant in 0..RENDERS_MAX as u32 + 4 {
            renders.get_or_render(RenderKey { frontend: 9, variant }, || variant);
        }
        assert_eq!(renders.len(), RENDERS_MAX);
        // Past the bound: rendered each time, never kept.
        let late = RenderKey { frontend: 9, variant: 100 };
        assert_eq!(renders.get_or_render(late, || 1u32), 1);
        assert_eq!(renders.get_or_render(late, || 2u32), 2);
        // A kept value asked for as another type is rendered afresh.
        assert_eq!(renders.get_or_render(RenderKey { frontend: 9, variant: 0 }, || "x".to_string()), "x");
        assert_eq!(renders.clone().len(), 0, "a clone keeps none");
    }
}
