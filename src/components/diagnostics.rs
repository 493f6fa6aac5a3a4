use leptos::prelude::*;

use crate::{
    debug_log::{DebugLog, Level},
    i18n::{use_i18n, Text},
};

/// The debug log, folded away under "Diagnostics": what the adapter refused or could not do.
#[component]
pub fn Diagnostics(
    /// The log to show.
    log: DebugLog,
) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <details class="diagnostics">
            <summary>{i18n.text(Text::Diagnostics)}</summary>
            // A plain list rendered again at each entry, not a keyed <For>: the rows hold no
            // reactive parts, the log is short (debug_log::CAPACITY), and the keyed diff's code
            // (hashing the keys) costs more in the wasm than rewriting a hundred rows does at run
            // time.
            <ol class="diagnostics-entries">
                {move || {
                    log.entries()
                        .into_iter()
                        .map(|entry| view! { <li class:warn=entry.level == Level::Warn>{entry.text}</li> })
                        .collect_view()
                }}
            </ol>
        </details>
    }
}
