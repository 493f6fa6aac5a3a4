use leptos::prelude::*;

use super::shown_while;
use crate::i18n::{use_i18n, Text};

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

/// A [`Notice`] of a fixed text, shown while `when` holds. Every such notice is this one view
/// type, so they share one instance of the rendering code instead of one each.
#[component]
pub fn NoticeWhile(
    /// Whether the notice shows.
    when: Signal<bool>,
    /// Which notice this is, as [`Notice`]'s.
    kind: &'static str,
    /// What the agent is told.
    text: Text,
    /// The technical detail, shown as a tooltip; none by default.
    #[prop(optional)]
    detail: Option<Signal<String>>,
) -> impl IntoView {
    let i18n = use_i18n();
    let detail = detail.unwrap_or_else(|| Signal::derive(String::new));
    shown_while(
        when,
        view! {
            <Notice kind=kind text=Signal::derive(move || i18n.t(text).to_string()) detail=detail />
        },
    )
}
