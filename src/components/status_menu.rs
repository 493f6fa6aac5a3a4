use adapter_core::agent_events::StatusView;
use leptos::prelude::*;

use crate::{
    agent::Agent,
    components::on_click,
    effects::effect,
    i18n::{use_i18n, Text},
};

/// A CCAI colour name (`light_blue`) as a CSS class; anything else falls back to a neutral chip.
pub fn chip_class(color: &str) -> String {
    let known = [
        "green",
        "red",
        "orange",
        "purple",
        "yellow",
        "light_blue",
        "blue",
        "grey",
        "dark_green",
    ];
    let color = if known.contains(&color) {
        color
    } else {
        "none"
    };
    format!("status-chip chip-{color}")
}

/// The agent's contact-center status: a coloured chip and a menu of the tenant's statuses.
/// System statuses (In-call, Wrap-up…) are shown but cannot be chosen; during a call the choice
/// becomes the next status, shown until it applies.
#[component]
pub fn StatusMenu(agent: Agent) -> impl IntoView {
    let i18n = use_i18n();
    let current = move || agent.state().with(|s| s.status.clone());
    let color_of = move |id: i64| {
        agent.offer().with(|offer| {
            offer
                .statuses
                .iter()
                .find(|s| s.id == id)
                .and_then(|s| s.color.clone())
                .unwrap_or_default()
        })
    };
    let chip = move || chip_class(&current().map(|s| color_of(s.id)).unwrap_or_default());
    let choose = move |event: leptos::ev::Event| {
        let Ok(id) = event_target_value(&event).parse::<i64>() else {
            return;
        };
        let chosen = agent.offer().with_untracked(|offer| {
            offer
                .statuses
                .iter()
                .find(|s| s.id == id && s.selectable)
                .map(|s| StatusView {
                    id: s.id,
                    name: s.name.clone(),
                })
        });
        if let Some(status) = chosen {
            leptos::task::spawn_local(agent.set_status(status));
        }
    };
    let options = move || {
        let selected = current().map(|s| s.id);
        let mut list = agent.offer().with(|offer| offer.statuses.clone());
        // The current status may be one the list does not have (yet): show it anyway.
        if let Some(status) = current().filter(|c| !list.iter().any(|s| s.id == c.id)) {
            list.push(crate::agent::StatusOption {
                id: status.id,
                name: status.name,
                color: None,
                selectable: false,
            });
        }
        list.into_iter()
            .map(|s| {
                // System statuses keep their plain name (the menu is narrow); being disabled
                // says they cannot be chosen, and the tooltip says why.
                let why = (!s.selectable).then(|| i18n.t(Text::StatusSystem));
                view! {
                    <option value=s.id.to_string() disabled=!s.selectable selected=selected == Some(s.id) title=why>
                        {s.name}
                    </option>
                }
            })
            .collect_view()
    };
    let next = move || agent.state().with(|s| s.next_status.clone());
    // The gateway's status wins over what was picked (a choice during a call is only the next
    // status). Set after the options render, whichever of the two changed.
    let select = NodeRef::<leptos::html::Select>::new();
    effect(move || {
        let value = current().map(|s| s.id.to_string()).unwrap_or_default();
        agent.offer().track();
        if let Some(select) = select.get() {
            select.set_value(&value);
        }
    });
    view! {
        <div class="status-menu">
            <span class=chip aria-hidden="true"></span>
            <select
                class="status-select"
                aria-label=i18n.text(Text::StatusMenu)
                disabled=Signal::derive(move || agent.busy().get())
                node_ref=select
                on:change=choose
            >
                <option value="" disabled selected=move || current().is_none()>"…"</option>
                {options}
            </select>
            <span class="next-status" hidden=Signal::derive(move || next().is_none())>
                <span class="next-status-name">
                    {move || next().map(|n| format!("{} {}", i18n.t(Text::NextStatus), n.name))}
                </span>
                <button
                    type="button"
                    class="icon-button cancel-next"
                    aria-label=i18n.text(Text::CancelNextStatus)
                    title=i18n.text(Text::CancelNextStatus)
                    disabled=Signal::derive(move || agent.busy().get())
                    on:click=on_click(move |_| leptos::task::spawn_local(agent.cancel_next_status()))
                >
                    <span aria-hidden="true">"×"</span>
                </button>
            </span>
        </div>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn colours_become_known_classes_only() {
        assert_eq!(
            super::chip_class("light_blue"),
            "status-chip chip-light_blue"
        );
        assert_eq!(super::chip_class("\" onclick=\"x"), "status-chip chip-none");
        assert_eq!(super::chip_class(""), "status-chip chip-none");
    }
}
