use leptos::prelude::*;

/// A notice the agent should read: what is wrong, in plain words, with the technical detail on
/// hover.
#[component]
pub fn Notice(
    /// What the agent is told.
    #[prop(into)]
    text: Signal<String>,
    /// The technical detail, shown as a tooltip.
    #[prop(into)]
    detail: Signal<String>,
) -> impl IntoView {
    view! {
        <p class="notice" role="note" title=move || detail.get()>
            {move || text.get()}
        </p>
    }
}
