use leptos::prelude::*;

/// A notice the agent should read: what is wrong, in plain words, with the technical detail on
/// hover.
#[component]
pub fn Notice(
    /// Which notice this is, as a class (`notice-{kind}`), for styling and tests.
    kind: &'static str,
    /// What the agent is told.
    #[prop(into)]
    text: Signal<String>,
    /// The technical detail, shown as a tooltip.
    #[prop(into)]
    detail: Signal<String>,
) -> impl IntoView {
    view! {
        <p class=format!("notice notice-{kind}") role="note" title=detail>
            {text}
        </p>
    }
}
