use adapter_core::{agent_api::InheritanceView, status_policy::PriorityRule};
use leptos::prelude::*;

use crate::{
    agent::{InheritanceSettings, KustomerStatus},
    effects::effect,
    i18n::{use_i18n, Text},
};

/// Admins' settings of status inheritance: on or off, the priority rule, bidirectional mode, and
/// the mapping of every Kustomer status (read from the host) to a contact-center status or to
/// nothing. Part of the settings page, not of the agent widget.
#[component]
pub fn InheritanceSettingsPanel(
    /// What the gateway says of status inheritance, once read.
    #[prop(into)]
    saved: Signal<Option<InheritanceView>>,
    /// Kustomer's routing statuses, read from the host; the error says why they are missing.
    #[prop(into)]
    kustomer_statuses: Signal<Result<Vec<KustomerStatus>, String>>,
    /// Saves the settings; its value is the result (the error is the sentence to show).
    save: Action<InheritanceSettings, Result<(), String>>,
) -> impl IntoView {
    let i18n = use_i18n();
    let draft = RwSignal::new(InheritanceSettings::default());
    let result = save.value();
    // Start from what is saved, whenever it changes.
    effect(move || {
        if let Some(view) = saved.get() {
            draft.set(view.settings);
        }
    });
    let rows = move || {
        let mut statuses = kustomer_statuses.get().unwrap_or_default();
        // Statuses saved earlier but no longer listed stay visible, to be unmapped.
        for saved in draft.with(|d| d.kustomer_statuses.clone()) {
            if !statuses.iter().any(|s| s.id == saved.id) {
                statuses.push(saved);
            }
        }
        statuses
    };
    let targets = move || {
        saved.with(|view| {
            view.as_ref()
                .map(|v| {
                    v.ccai_statuses
                        .iter()
                        .filter(|s| s.selectable)
                        .map(|s| (s.id, s.name.clone()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    };
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let mut settings = draft.get_untracked();
        settings.kustomer_statuses = rows();
        result.set(None);
        save.dispatch_local(settings);
    };
    view! {
        <section class="settings-section inheritance-settings" aria-labelledby="inheritance-title">
            <h2 id="inheritance-title">{i18n.text(Text::InheritanceTitle)}</h2>
            <form on:submit=submit>
                <label class="check">
                    <input
                        type="checkbox"
                        name="enabled"
                        prop:checked=move || draft.with(|d| d.enabled)
                        on:change=move |e| draft.update(|d| d.enabled = event_target_checked(&e))
                    />
                    {i18n.text(Text::InheritanceOn)}
                </label>
                <fieldset>
                    {[(PriorityRule::LatestWins, Text::RuleLatest), (PriorityRule::KustomerOverridesNext, Text::RuleKustomer)]
                        .into_iter()
                        .map(|(rule, label)| {
                            view! {
                                <label class="check">
                                    <input
                                        type="radio"
                                        name="rule"
                                        value=rule.as_str()
                                        prop:checked=move || draft.with(|d| d.rule == rule)
                                        on:change=move |_| draft.update(|d| d.rule = rule)
                                    />
                                    {i18n.text(label)}
                                </label>
                            }
                        })
                        .collect_view()}
                </fieldset>
                <label class="check">
                    <input
                        type="checkbox"
                        name="bidirectional"
                        prop:checked=move || draft.with(|d| d.bidirectional)
                        on:change=move |e| draft.update(|d| d.bidirectional = event_target_checked(&e))
                    />
                    {i18n.text(Text::Bidirectional)}
                </label>
                <p class="form-error" hidden=move || kustomer_statuses.with(Result::is_ok)>
                    {i18n.text(Text::KustomerStatusesUnavailable)}
                    " "
                    {move || kustomer_statuses.get().err()}
                </p>
                <table class="mapping">
                    <thead>
                        <tr>
                            <th scope="col">{i18n.text(Text::KustomerStatusColumn)}</th>
                            <th scope="col">{i18n.text(Text::CcaiStatusColumn)}</th>
                        </tr>
                    </thead>
                    <tbody>
                        {move || {
                            let targets = targets();
                            rows()
                                .into_iter()
                                .map(|status| {
                                    let id = status.id.clone();
                                    let chosen = draft.with(|d| d.mapping.get(&id).copied());
                                    let options = targets
                                        .iter()
                                        .map(|(value, name)| {
                                            view! {
                                                <option value=value.to_string() selected=chosen == Some(*value)>
                                                    {name.clone()}
                                                </option>
                                            }
                                        })
                                        .collect_view();
                                    let key = id.clone();
                                    view! {
                                        <tr data-kustomer-status=id>
                                            <th scope="row">{status.name}</th>
                                            <td>
                                                <select
                                                    aria-label=status.id
                                                    on:change=move |e| {
                                                        let value = event_target_value(&e);
                                                        draft.update(|d| match value.parse::<i64>() {
                                                            Ok(target) => {
                                                                d.mapping.insert(key.clone(), target);
                                                            }
                                                            Err(_) => {
                                                                d.mapping.remove(&key);
                                                            }
                                                        });
                                                    }
                                                >
                                                    <option value="" selected=chosen.is_none()>
                                                        {i18n.text(Text::IgnoredStatus)}
                                                    </option>
                                                    {options}
                                                </select>
                                            </td>
                                        </tr>
                                    }
                                })
                                .collect_view()
                        }}
                    </tbody>
                </table>
                <button type="submit" class="button primary" disabled=move || save.pending().get()>
                    {i18n.text(Text::Save)}
                </button>
                <p class="settings-result" role="status">
                    {move || match result.get() {
                        Some(Ok(())) => Some(i18n.t(Text::Saved).to_owned()),
                        Some(Err(message)) => Some(message),
                        None => None,
                    }}
                </p>
            </form>
        </section>
    }
}
