//! The widget's effects, as one type. `Effect::new` is generic in its closure, and each closure
//! type gets a copy of reactive_graph's effect code (the task that re-runs it, the cell that
//! keeps its value); given a boxed closure, every effect is the same type, so that code is in
//! the wasm once. The effects themselves behave as `Effect::new`'s.

use leptos::prelude::*;

/// `Effect::new(f)`, with `f` boxed.
pub fn effect(f: impl FnMut() + 'static) -> Effect<LocalStorage> {
    Effect::new(Box::new(f) as Box<dyn FnMut()>)
}

/// `Effect::new(f)` for an effect that is given the value it returned the previous time it ran
/// (`None` the first time), with `f` boxed.
pub fn effect_with<T: 'static>(
    mut f: impl FnMut(Option<T>) -> T + 'static,
) -> Effect<LocalStorage> {
    let mut previous = None;
    effect(move || previous = Some(f(previous.take())))
}
