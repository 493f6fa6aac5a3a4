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
            <ol class="diagnostics-entries">
                <For each=move || log.entries() key=|entry| entry.seq let:entry>
                    <li class:warn=entry.level == Level::Warn>{entry.text}</li>
                </For>
            </ol>
        </details>
    }
}
